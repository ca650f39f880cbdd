"""Every provenance quote of the seed dataset occurs verbatim in its source document (after the
one normalisation documented in service/seed/verbatim.py), exactly once, and every value read
from a table is located by table, row and column and quotes only what its cell prints.

The sources are read from ../shared/seeds beside the repository, or from SEED_SOURCES_DIR."""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.seed.loader import DATA_DIR, document_files
from service.seed.verbatim import (
    check_document,
    check_entry,
    normalise_source,
    occurrences,
    provenance_entries,
    table_cell,
)

SOURCES = Path(
    os.environ.get("SEED_SOURCES_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "seeds")
)


def _sources() -> Path:
    if not SOURCES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"seed sources not found at {SOURCES} (set SEED_SOURCES_DIR)")
        pytest.skip(f"seed sources not found at {SOURCES} (set SEED_SOURCES_DIR)")
    return SOURCES


@pytest.mark.parametrize("path", document_files(), ids=lambda p: p.name)
def test_every_quote_is_verbatim_and_unique_in_its_source(path: Path) -> None:
    seed = yaml.safe_load(path.read_text(encoding="utf-8"))
    checked, findings = check_document(seed, _sources())
    assert checked > 0
    assert findings == [], "\n".join(f"{f.where}: {f.problem}: {f.quote[:120]!r}" for f in findings)


@pytest.mark.parametrize("path", document_files(), ids=lambda p: p.name)
def test_values_from_tables_are_located_by_cell(path: Path) -> None:
    seed = yaml.safe_load(path.read_text(encoding="utf-8"))
    uncelled = [
        where
        for where, entry in provenance_entries(seed)
        if entry.get("location", "").split(" (")[0].startswith("Table")
        and "footnote" not in entry["location"]
        and not entry.get("cell")
    ]
    assert uncelled == []


def test_agent_catalog_quotes_are_verbatim() -> None:
    catalog = yaml.safe_load((DATA_DIR / "agents.yaml").read_text(encoding="utf-8"))
    sources = _sources()
    failures = []
    for where, entry in provenance_entries(catalog):
        raw = (sources / entry["source_document"]).read_text(encoding="utf-8")
        finding = check_entry(raw, normalise_source(raw), entry, where)
        if finding is not None:
            failures.append(f"{where}: {finding.problem}: {entry['quote'][:80]!r}")
    assert failures == []


# --- the normalisation itself ------------------------------------------------------------

SOURCE = (
    "patients who experi-\nenced relapse; CAR-\nT-38 cells at 8.05 × 10 [6] and < 500/\nμl.\n"
    "The median was  $2.61 \\times 10^9/L$ and 10<sup>9</sup>/L, **bold** MRD- MRD-\n"
    "**Table 2** Outcomes\n\nName\tDay 14-21\tCRS\nA\tMRD-\tNo\nB\t\tFever (1)\n"
    "**Table 2** (Continued).\n\nName\tDay 14-21\tCRS\nC\tMRD-NR\tFever (3)\n"
)


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("who experienced relapse", 1),  # a line-end hyphen joins the word ...
        ("who experi-enced relapse", 1),  # ... and may be kept
        ("CAR-T-38 cells", 1),  # a real hyphen at a line end still matches
        ("< 500/μl.", 1),  # a line-end slash joins the lines
        ("The median was 2.61 × 10^9/L and 109/L", 1),  # LaTeX and HTML markup dropped
        ("bold MRD-", 1),
        ("the median was", 0),  # letter case is kept
        ("MRD-", 4),  # not unique: it locates nothing
    ],
)
def test_normalisation(quote: str, found: int) -> None:
    assert occurrences(normalise_source(SOURCE), quote) == found


def test_table_cells_are_read_by_row_and_column_across_a_continuation() -> None:
    cell = lambda **c: table_cell(SOURCE, {"table": "Table 2", **c})  # noqa: E731
    assert cell(row=1, column="Day 14-21") == "MRD-"
    assert cell(row=2, column="CRS") == "Fever (1)"
    assert cell(row=3, column="Day 14-21") == "MRD-NR"  # the repeated header is skipped
    assert cell(row="C", column="CRS") == "Fever (3)"
    assert cell(row=9, column="CRS") is None
    assert table_cell(SOURCE, {"table": "Table 7", "row": 1, "column": "CRS"}) is None


def test_a_cell_quote_must_be_what_the_cell_prints() -> None:
    entry: dict[str, Any] = {
        "quote": "Fever (1)",
        "cell": {"table": "Table 2", "row": 1, "column": "CRS"},
    }
    finding = check_entry(SOURCE, normalise_source(SOURCE), entry, "x")
    assert finding is not None and "prints 'No'" in finding.problem
    entry["cell"]["row"] = 2
    assert check_entry(SOURCE, normalise_source(SOURCE), entry, "x") is None
