"""A dataset as CDISC Dataset-JSON v1.1: one JSON object (`rows` an array of arrays), or NDJSON —
the same metadata on the first line and one row array per line after it."""

import importlib.metadata
from collections.abc import Iterator
from typing import Any

import msgspec

from service.data_cuts import clock
from service.exchange.cdisc.datasets import Dataset, StudyData

VERSION = "1.1.0"
ORIGINATOR = "Leukemia outcomes registry"


def metadata(dataset: Dataset, data: StudyData) -> dict[str, Any]:
    return {
        "datasetJSONCreationDateTime": clock.now().isoformat(timespec="seconds"),
        "datasetJSONVersion": VERSION,
        "fileOID": f"registry/studies/{data.id}/datasets/{dataset.name}",
        "originator": ORIGINATOR,
        "sourceSystem": {
            "name": "leukemia-registry",
            "version": importlib.metadata.version("leukemia-registry"),
        },
        "studyOID": data.study_id,
        "metaDataVersionOID": f"MDV.{data.study_id}",
        "itemGroupOID": f"IG.{dataset.name}",
        "records": len(dataset.rows),
        "name": dataset.name,
        "label": dataset.label,
        "columns": dataset.column_metadata(),
    }


def as_json(dataset: Dataset, data: StudyData) -> bytes:
    return msgspec.json.encode({**metadata(dataset, data), "rows": dataset.rows})


def as_ndjson(dataset: Dataset, data: StudyData, batch: int = 2000) -> Iterator[bytes]:
    yield msgspec.json.encode(metadata(dataset, data)) + b"\n"
    encode = msgspec.json.encode
    for start in range(0, len(dataset.rows), batch):
        yield b"".join(encode(row) + b"\n" for row in dataset.rows[start : start + batch])
