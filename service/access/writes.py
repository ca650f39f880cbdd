"""Whether the request's identity may make one write: checked by the repositories for every
create, update and delete (service.common.repository), after the record itself was found in the
identity's scope (404 otherwise), so that a refusal here is a 403 on a record it can see."""

from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.scope import current_scope
from service.audit.trail import WRITE_CONTEXT
from service.db import models
from service.db.session import ROWS_READ
from service.errors import Forbidden
from service.locks.refusal import refuse_if_locked

STUDY_LEVEL = ("arms", "sites", "reported_results")
PATIENT_RECORDS = ("treatments", "adverse_events", "outcomes")


PATIENTS = models.Patient.__table__  # type: ignore[attr-defined]
# One statement object (bound id): its compiled form is reused by every write.
_PLACE = select(PATIENTS.c.study_id, PATIENTS.c.site_id).where(PATIENTS.c.id == bindparam("id"))


async def _patient(session: AsyncSession, patient_id: Any) -> tuple[UUID, UUID | None] | None:
    row = session.info.get(ROWS_READ, {}).get(("patients", patient_id))  # checked just before
    if row is None:
        row = (await (await session.connection()).execute(_PLACE, {"id": patient_id})).first()
        if row is None:
            return None
    return row.study_id, row.site_id


async def authorize_write(
    session: AsyncSession, table: str, new: dict[str, Any] | None, old: dict[str, Any] | None
) -> None:
    """Raise Forbidden unless the identity may turn `old` into `new` (None: created/deleted).
    Leaves the write's study and the grant that allowed it for the audit records that follow."""
    scope = current_scope()
    values = new if new is not None else old
    assert values is not None
    study_id, site_id = await _place(session, table, values)
    # A locked study takes no write (records never move between studies: no PATCH changes one).
    await refuse_if_locked(session, (study_id, *await _linked_studies(session, table, values)))
    grant = None
    if not scope.everything:  # a global curator or admin may (the guards let no global reader write)
        for each in (v for v in (old, new) if v is not None):
            await _check(session, scope, table, each, creating=old is None)
        grant = scope.writing_grant(study_id, None if table in (*STUDY_LEVEL, "studies") else site_id)
    session.info[WRITE_CONTEXT] = (study_id, grant)


async def _linked_studies(session: AsyncSession, table: str, values: dict[str, Any]) -> list[Any]:
    """A link between two patients belongs to both patients' studies."""
    if table != "patient_links":
        return []
    found = await _patient(session, values["patient_b_id"])
    return [] if found is None else [found[0]]


async def _place(session: AsyncSession, table: str, values: dict[str, Any]) -> tuple[Any, Any]:
    """The (study, site) a record belongs to; (None, None) for the shared catalogues."""
    if table == "studies":
        return values.get("id"), None
    if table in STUDY_LEVEL:
        return values["study_id"], None
    if table == "patients":
        return values["study_id"], values.get("site_id")
    patient_id = values.get("patient_id", values.get("patient_a_id"))
    if patient_id is None:
        return None, None
    found = await _patient(session, patient_id)
    return (None, None) if found is None else found


async def _check(
    session: AsyncSession, scope: Any, table: str, values: dict[str, Any], creating: bool
) -> None:
    if table == "studies":
        if creating:
            raise Forbidden("Only a global curator creates studies: grants hold existing studies.")
        if not scope.may_write_study_level(values["id"]):
            raise Forbidden("This study is open to the token for reading only.")
    elif table in STUDY_LEVEL:
        if not scope.may_write_study_level(values["study_id"]):
            raise Forbidden(
                "A study's arms, sites and reported results are changed by a curator of the whole study."
            )
    elif table == "patients":
        if not scope.may_write_patient(values["study_id"], values.get("site_id")):
            raise Forbidden(
                "The token may not write patients of this study or site"
                + (
                    " (a site-limited curator's patients name one of its sites)."
                    if values.get("site_id") is None
                    else "."
                )
            )
    elif table in PATIENT_RECORDS:
        await _check_patients(session, scope, [values["patient_id"]])
    elif table == "patient_links":
        await _check_patients(session, scope, [values["patient_a_id"], values["patient_b_id"]])
    else:
        # The shared catalogues (agents) belong to every group: global curators change them.
        raise Forbidden("Only a global curator changes the shared catalogues.")


async def _check_patients(session: AsyncSession, scope: Any, patient_ids: list[Any]) -> None:
    for patient_id in patient_ids:
        found = await _patient(session, patient_id)
        if found is None or not scope.may_write_patient(*found):
            raise Forbidden("The token may not write records of this patient.")
