"""The de-identification guard: free text that looks like a direct identifier (HIPAA Safe
Harbor: e-mail addresses, telephone numbers, social security numbers, medical record numbers,
dates of birth) is refused with 422 naming the field. The patterns are deliberately narrow:
clinical text is full of numbers ("13.35x10^6/kg", "2024-04", "7 x 10-4", "46,XY,t(4;11)") that
must not trip them.

Text is NFKC-normalised first, so full-width or compatibility forms ("＠", "１２３") are checked
as their plain equivalents. Every repetition in the patterns is bounded, so matching costs a
constant amount of work per character: a 1 MiB body is checked in linear time (the unbounded
e-mail pattern it replaces was quadratic on long letter runs)."""

import re
import unicodedata
from typing import Any

from service.errors import RuleViolation

PATTERNS = {
    "an e-mail address": re.compile(
        r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    ),
    "a telephone number": re.compile(
        r"(\+[0-9]{1,3}[\s.-]?\(?[0-9]{1,4}\)?(?:[\s.-]?[0-9]{2,4}){2,4}\b)|(\([0-9]{3}\)\s?[0-9]{3}[\s.-][0-9]{4}\b)|(\b[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}\b)"
    ),
    "a social security number": re.compile(
        r"\b(SSN\b.{0,5}[0-9]|[0-9]{3}-[0-9]{2}-[0-9]{4}\b)", re.IGNORECASE
    ),
    "a medical record number": re.compile(
        r"\b(M\.?\s{0,2}R\.?\s{0,2}N\.?|medical record (number|no\.?)|hospital (number|no\.?)|patient (number|no\.?))"
        r"\s{0,3}[:#]?\s{0,3}[A-Z0-9-]{0,20}[0-9][A-Z0-9-]{2,20}",
        re.IGNORECASE,
    ),
    "a date of birth": re.compile(r"\b(DOB|D\.O\.B\.|date of birth|born on)\b", re.IGNORECASE),
}


_DIGIT = re.compile(r"[0-9]")
_NEEDS_DIGIT = {"a telephone number", "a social security number", "a medical record number"}
_DOB_WORDS = ("dob", "d.o.b.", "date of birth", "born on")


def identifier_in(text: str) -> str | None:
    """What kind of direct identifier `text` seems to hold, or None. Cheap tests first decide
    which patterns can match at all (an e-mail needs an @, a number a digit, a date of birth
    its words), so ordinary text is scanned once or twice, not once per pattern."""
    plain = unicodedata.normalize("NFKC", text)
    has_digit = _DIGIT.search(plain) is not None
    lowered = plain.lower()
    for what, pattern in PATTERNS.items():
        if what == "an e-mail address" and "@" not in plain:
            continue
        if what in _NEEDS_DIGIT and not has_digit:
            continue
        if what == "a date of birth" and not any(word in lowered for word in _DOB_WORDS):
            continue
        if pattern.search(plain):
            return what
    return None


# Above this much text the check runs in a worker thread, so that one large body cannot hold
# up the event loop (and with it every other request) for the few hundred ms it may take.
OFF_LOOP_CHARS = 65_536


def text_size(value: Any) -> int:
    """Characters of text in a JSON-like value, at any depth."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(str(k)) + text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    return 0


async def check_free_text_async(values: dict[str, Any]) -> None:
    """`check_free_text`, in a worker thread when the text is large."""
    if text_size(values) > OFF_LOOP_CHARS:
        import anyio.to_thread

        await anyio.to_thread.run_sync(check_free_text, values)
    else:
        check_free_text(values)


def check_free_text(values: dict[str, Any], prefix: str = "") -> None:
    """Raise 422 for the first string (at any depth) that looks like a direct identifier."""
    for key, value in values.items():
        field = f"{prefix}{key}"
        if isinstance(value, str):
            what = identifier_in(value)
            if what is not None:
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
