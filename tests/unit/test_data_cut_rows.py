"""A cut's frozen rows load into a database of their own only when they are what was frozen:
content whose digest differs, or frozen in a format this code cannot load, is refused (409)
and leaves no database behind."""

import asyncio
import hashlib
import sqlite3
import zlib
from pathlib import Path

import msgspec
import pytest

from service.data_cuts import rows
from service.data_cuts.databases import DamagedCut, build
from service.errors import Conflict

STUDY_ID = "01a23e9b-f063-70fa-b033-4668ecbcf457"


def _document(**changes: object) -> bytes:
    study = rows.TABLES[1]
    assert study.name == "studies"
    columns = [str(c.name) for c in study.columns]
    values = {
        "id": STUDY_ID,
        "version": 1,
        "created_at": "2026-12-04T01:00:00.123456Z",
        "updated_at": "2026-12-04T01:00:00.123456Z",
        "provenance": [],
        "title": "A frozen study",
        "design": "case_report",
        "phases": [],
        "registry_ids": [],
        "conditions": [],
    }
    document = {
        "format": rows.FORMAT,
        "format_version": rows.FORMAT_VERSION,
        "label": "unit",
        "schema_revision": "0022",
        "tables": {"studies": {"columns": columns, "rows": [[values.get(c) for c in columns]]}},
        **changes,
    }
    return msgspec.json.encode(document)


def test_frozen_rows_load_with_their_ids_and_types(tmp_path: Path) -> None:
    document = _document()
    path = tmp_path / "cut.sqlite"
    asyncio.run(build(zlib.compress(document), hashlib.sha256(document).hexdigest(), path))
    with sqlite3.connect(path) as db:
        [(study_id, title, created)] = db.execute("SELECT id, title, created_at FROM studies").fetchall()
    assert (study_id.replace("-", ""), title) == (STUDY_ID.replace("-", ""), "A frozen study")
    assert created.startswith("2026-12-04 01:00:00.123456")


def test_content_that_is_not_what_was_frozen_is_refused(tmp_path: Path) -> None:
    document = _document()
    path = tmp_path / "cut.sqlite"
    with pytest.raises(DamagedCut) as damaged:
        asyncio.run(build(zlib.compress(document + b" "), hashlib.sha256(document).hexdigest(), path))
    assert damaged.value.status == 409 and not path.exists()


def test_a_cut_frozen_in_an_earlier_format_is_refused(tmp_path: Path) -> None:
    document = _document(format_version=1)
    path = tmp_path / "cut.sqlite"
    with pytest.raises(Conflict, match="take a new cut"):
        asyncio.run(build(zlib.compress(document), hashlib.sha256(document).hexdigest(), path))
    assert not path.exists()
