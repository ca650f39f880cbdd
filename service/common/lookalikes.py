"""Names that cannot impersonate other names.

An agent named `daratumumаb` (a Cyrillic а) or `dara\u200btumumab` (a zero-width space) beside
`daratumumab`, or subject codes `P1` and `Ｐ1` (full-width) in one study, look the same to a
reader and split one thing into two for every count. So:
- zero-width, bidirectional-control and other invisible format characters (Unicode category Cf)
  and control characters are refused in names and codes;
- two names are the same when their skeletons are: NFKC (which folds full-width and other
  compatibility forms), then every non-ASCII character that Unicode's confusables data (TR39,
  as packaged by confusable_homoglyphs) lists with an ASCII look-alike replaced by it. Only
  non-ASCII characters are mapped, so `P1` and `Pl` stay different codes."""

import unicodedata
from functools import cache

from confusable_homoglyphs.confusables import confusables_data  # type: ignore[import-untyped]

from service.errors import RuleViolation


@cache
def _ascii_lookalikes() -> dict[str, str]:
    table: dict[str, str] = {}
    for character, entries in confusables_data.items():
        if character.isascii():
            continue
        for entry in entries:
            lookalike = entry.get("c", "")
            if lookalike and lookalike.isascii() and lookalike.isprintable():
                table[character] = lookalike
                break
    return table


def skeleton(text: str) -> str:
    """What `text` looks like: equal skeletons mean names a reader cannot tell apart."""
    folded = unicodedata.normalize("NFKC", text)
    table = _ascii_lookalikes()
    return unicodedata.normalize("NFKC", "".join(table.get(c, c) for c in folded))


def check_visible(text: str, field: str) -> None:
    """Refuse invisible format characters (zero-width, bidi controls) and control characters."""
    for c in text:
        if unicodedata.category(c) in ("Cf", "Cc"):
            raise RuleViolation(
                f"`{field}` holds an invisible or control character (U+{ord(c):04X}): names must look like what they are",
                field=field,
            )
