"""An id grouped on is counted as the id and turned into text only on the grouped rows
(service.analytics.queries.uncast_raw): `raw(id)` is recognised, and nothing else is."""

from sqlalchemy import String, cast, func
from sqlmodel import col

from service.analytics.queries import as_text, raw, uncast_raw
from service.db.models import Patient


def test_raw_ids_are_uncast_and_nothing_else() -> None:
    arm = col(Patient.arm_id)
    column, was_text = uncast_raw(raw(arm))
    assert str(column) == "patients.arm_id" and not isinstance(column.type, String) and was_text
    for other in (col(Patient.sex), cast(func.lower(col(Patient.sex)), String()), func.count()):
        same, was_text = uncast_raw(other)
        assert same is other and not was_text
    assert str(as_text(column, True)) == "CAST(patients.arm_id AS VARCHAR)"
    assert as_text(column, False) is column
