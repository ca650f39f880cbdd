"""Where a provenance quote comes from in its source document, checked word for word.

One normalisation is applied to both the source text and the quote before comparing:
1. markup is removed: HTML tags (`<sup>9</sup>` -> `9`), Markdown emphasis (`**`), LaTeX math
   (`$`, braces, `^`, `\\text{...}` -> its text, `\\times` -> `×`, `\\mu` -> `μ`);
2. a hyphen or slash that ends a line in the source joins the two lines: `experi-⏎enced`
   matches both `experienced` and `experi-enced` (a real hyphen that falls at a line end, as in
   `CAR-⏎T`, still matches `CAR-T`), and `500/⏎μl` matches `500/μl`;
3. every run of whitespace (line breaks, tabs, non-breaking spaces) becomes one space.
Nothing else is changed: letter case, dashes and punctuation must be as printed.

A quote must occur exactly once in its source, so that it locates one place. A value read from
a table cell is located by `cell` (table, row label or number, column) instead: the quote
must be printed in that cell, and only the cell is quoted."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOFT = "\ue000"  # a hyphen that ended a line (private use: not whitespace, in no source)
_TAGS = re.compile(r"</?[a-zA-Z][^>]*>")
_LATEX = [
    (re.compile(r"\\text\{([^}]*)\}"), r"\1"),
    (re.compile(r"\\times"), "×"),
    (re.compile(r"\\mu"), "μ"),
]
_LATEX_CHARS = str.maketrans("", "", "${}^")
_SPACE = re.compile(r"\s+")


def _strip_markup(text: str) -> str:
    text = _TAGS.sub("", text).replace("**", "")
    for pattern, replacement in _LATEX:
        text = pattern.sub(replacement, text)
    return text.translate(_LATEX_CHARS)


def normalise_source(text: str) -> str:
    text = _strip_markup(text)
    text = re.sub(r"-[ \t]*\n[ \t]*", SOFT, text)
    text = re.sub(r"/[ \t]*\n[ \t]*", "/", text)
    return _SPACE.sub(" ", text).strip()


def normalise_quote(text: str) -> str:
    return _SPACE.sub(" ", _strip_markup(text)).strip()


def _pattern(quote: str) -> re.Pattern[str]:
    """The quote as a regex over normalised source: a line-end hyphen may stand anywhere."""
    parts = []
    for char in quote:
        if char == "-":
            parts.append(f"(?:-|{SOFT})")
        elif char == " ":
            parts.append(f"{SOFT}? ?")
        else:
            parts.append(re.escape(char) + f"{SOFT}?")
    return re.compile("".join(parts))


def occurrences(source: str, quote: str) -> int:
    """How many times `quote` occurs in the normalised `source` (overlaps counted)."""
    pattern = _pattern(normalise_quote(quote))
    count, start = 0, 0
    while (match := pattern.search(source, start)) is not None:
        count += 1
        start = match.start() + 1
    return count


@dataclass(frozen=True)
class Table:
    caption: str
    lines: list[str]  # raw lines of the table, continuation pages included


def _tables(raw: str) -> dict[str, Table]:
    """Tables by name ("Table 2"): lines from each caption to the next section or table."""
    tables: dict[str, Table] = {}
    current: str | None = None
    caption = re.compile(r"^\s*(?:\*\*)?(Table \d+)(?:\*\*)?\b")
    for line in raw.splitlines():
        found = caption.match(line)
        if found:
            current = found.group(1)
            tables.setdefault(current, Table(line.strip(), []))
            tables[current].lines.append(line)  # continuation captions mark a header below
            continue
        if current is None:
            continue
        if line.startswith("#") or line.startswith("**Notes") or line.startswith("**Abbreviations"):
            current = None
            continue
        tables[current].lines.append(line)
    return tables


def _is_header(line: str) -> bool:
    """A header row names columns: none of its cells is a bare number."""
    return not any(re.fullmatch(r"[\d.]+", cell) for cell in _cells(line))


def _cells(line: str) -> list[str]:
    return [normalise_quote(c) for c in line.split("\t")]


def table_cell(raw: str, cell: dict[str, Any]) -> str | None:
    """The normalised text of the cell at (table, row, column); None if not found. `row` is the
    row's label (its first cell) or, as a number, its position counted from 1.

    Tab-separated tables: the column is a header cell; data rows are the tab lines below it,
    headers repeated after a continuation caption skipped; the row is named by its first cell or
    counted from 1. Tables printed as "label value" lines: the row is the line that starts with
    the label followed by a value (not by more words of a longer label), the cell the rest of
    it, and the column must be printed in the table."""
    table = _tables(raw).get(cell["table"])
    if table is None:
        return None
    column = normalise_quote(cell["column"])
    lines = table.lines
    header_at = next(
        (i for i, line in enumerate(lines) if "\t" in line and column in _cells(line) and _is_header(line)),
        None,
    )
    if header_at is None:
        if column not in normalise_quote(" ".join(lines)) or not isinstance(cell["row"], str):
            return None
        label = normalise_quote(cell["row"])
        for line in lines:
            text = normalise_quote(line)
            rest = text[len(label) :].strip()
            # The label must be the whole row label: "Donor" is not the row "Donor lymphocyte infusion".
            if text.startswith(label + " ") and rest and not rest[0].isalpha():
                return rest
        return None
    index = _cells(lines[header_at]).index(column)
    after_caption = {
        i + 1 + next(j for j, rest in enumerate(lines[i + 1 :]) if rest.strip())
        for i, line in enumerate(lines)
        if line.lstrip().startswith(("**Table", "Table")) and any(r.strip() for r in lines[i + 1 :])
    }
    rows = [
        _cells(line)
        for i, line in enumerate(lines[header_at + 1 :], start=header_at + 1)
        if "\t" in line and i not in after_caption
    ]
    if isinstance(cell["row"], str):
        label = normalise_quote(cell["row"])
        row = next((r for r in rows if r and r[0] == label), None)
    else:
        number = cell["row"]
        row = rows[number - 1] if 0 < number <= len(rows) else None
    if row is None or index >= len(row):
        return None
    return row[index]


@dataclass(frozen=True)
class Finding:
    where: str
    quote: str
    problem: str


def check_entry(raw: str, normalised: str, entry: dict[str, Any], where: str) -> Finding | None:
    quote = entry["quote"]
    cell = entry.get("cell")
    if cell:
        text = table_cell(raw, cell)
        if text is None:
            return Finding(where, quote, f"no cell at {cell}")
        if _pattern(normalise_quote(quote)).search(normalise_source(text)) is None:
            return Finding(where, quote, f"the cell {cell} prints {text!r}")
        return None
    found = occurrences(normalised, quote)
    if found == 0:
        return Finding(where, quote, "not in the source")
    if found > 1:
        return Finding(where, quote, f"occurs {found} times in the source: make it longer")
    return None


def provenance_entries(data: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every provenance entry of a seed file's records, with the record's path."""
    if isinstance(data, dict):
        for i, entry in enumerate(data.get("provenance") or []):
            yield f"{where}.provenance[{i}]", entry
        for key, value in data.items():
            if key != "provenance":
                yield from provenance_entries(value, f"{where}.{key}" if where else key)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from provenance_entries(item, f"{where}[{i}]")


def check_document(seed: dict[str, Any], sources: Path) -> tuple[int, list[Finding]]:
    """(quotes checked, findings) for one seed file against its source in `sources`."""
    raw = (sources / seed["document"]).read_text(encoding="utf-8")
    normalised = normalise_source(raw)
    findings, seen = [], 0
    for where, entry in provenance_entries(seed):
        seen += 1
        finding = check_entry(raw, normalised, entry, where)
        if finding is not None:
            findings.append(finding)
    return seen, findings
