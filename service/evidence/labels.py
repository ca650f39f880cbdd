"""A study's label on a forest plot, as journals print it: "First author et al., year" when the
publication's citation starts with its authors (Vancouver style: "Surname AB, Surname C, …"),
else the study's title, whole."""

import re
from typing import Any

# "Voruz S, Blum S, …" / "Lei Y, Zhao X, Huang H, et al." / "van der Berg JH, …"
_AUTHOR = re.compile(r"^((?:[a-z]+ )*[A-Z][\w'\-]+(?: [A-Z][\w'\-]+)?) [A-Z]{1,3}(?=[,.])")


def study_label(study: Any) -> str:
    publication = study.publication or {}
    citation = (publication.get("citation") or "").strip()
    match = _AUTHOR.match(citation)
    if match is None:
        return str(study.title)
    # several authors when another "Surname Initials" follows the first one's comma
    several = bool(re.match(r"^[^,]+, ?[^,]*[A-Z][\w'\-]+ [A-Z]{1,3}[,.]", citation))
    year = publication.get("year")
    return f"{match.group(1)}{' et al.' if several else ''}" + (f", {year}" if year else "")
