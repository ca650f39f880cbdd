"""The de-identification guard: free text that looks like a direct identifier (HIPAA Safe
Harbor: e-mail addresses, telephone numbers, medical record numbers, dates of birth) is
refused with 422 naming the field. The patterns are deliberately narrow: clinical text is full
of numbers ("13.35x10^6/kg", "2024-04", "7 x 10-4") that must not trip them."""

import re
from typing import Any

from service.errors import RuleViolation

PATTERNS = {
    "an e-mail address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "a telephone number": re.compile(
        r"(\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}\b)|(\(\d{3}\)\s?\d{3}[\s.-]\d{4}\b)|(\b\d{3}[.-]\d{3}[.-]\d{4}\b)"
    ),
    "a medical record number": re.compile(
        r"\b(MRN|medical record (number|no\.?)|hospital (number|no\.?)|patient (number|no\.?))\s*[:#]?\s*[A-Z0-9-]*\d[A-Z0-9-]{2,}",
        re.IGNORECASE,
    ),
    "a date of birth": re.compile(r"\b(DOB|D\.O\.B\.|date of birth|born on)\b", re.IGNORECASE),
}


def check_free_text(values: dict[str, Any], prefix: str = "") -> None:
    """Raise 422 for the first string (at any depth) that looks like a direct identifier."""
    for key, value in values.items():
        field = f"{prefix}{key}"
        if isinstance(value, str):
            for what, pattern in PATTERNS.items():
                if pattern.search(value):
                    raise RuleViolation(
                        f"`{field}` looks like it holds {what}; patient data must stay de-identified",
                        field=field,
                    )
        elif isinstance(value, dict):
            check_free_text(value, f"{field}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    check_free_text(item, f"{field}[{i}].")
                elif isinstance(item, str):
                    check_free_text({f"[{i}]": item}, field)
