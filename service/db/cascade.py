"""Explicit cascading deletes, children first, each deleted record audited. The foreign keys
stay RESTRICT so that nothing is ever removed by the database behind the service's back."""

import asyncio
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.db.models import (
    AdverseEvent,
    Arm,
    ArmAgent,
    Outcome,
    Patient,
    PatientLink,
    ReportedResult,
    Site,
    SourceRecord,
    Treatment,
    TreatmentComponent,
)

YIELD_EVERY = 200
# Audit records queued between two turns of the event loop: a slice of 200 patients' records held
# the loop for up to 56 ms (bench/stalls.py, the mixed load), each row's JSON made in Python.
RECORD_EVERY = 25
UNSYNCED = {"synchronize_session": False}

RESOURCE_TYPES = {
    "patients": "patient",
    "treatments": "treatment",
    "adverse_events": "adverse_event",
    "outcomes": "outcome",
    "reported_results": "reported_result",
    "arms": "arm",
    "sites": "site",
    "patient_links": "patient_link",
}


async def audited_delete(session: AsyncSession, model: Any, condition: Any) -> None:
    """Delete the rows of `model` matching `condition`, writing an audit record for each
    (treatment components and arm-agent links belong to their parent and are not audited alone)."""
    from service.audit import trail

    resource_type = RESOURCE_TYPES.get(model.__tablename__)
    if resource_type is not None:
        statement = select(*model.__table__.columns).where(condition)
        # Read and audited a slice at a time, with the event loop free in between: a study's
        # thousands of rows read in one go held every other request for up to 80 ms (sampled).
        result = await (await session.connection()).stream(statement.execution_options(yield_per=YIELD_EVERY))
        async for rows in result.mappings().partitions(YIELD_EVERY):
            for n, row in enumerate(rows, 1):
                # The values as read; trail.record makes them JSON (times and ids as text) once.
                await trail.record(
                    session, "delete", resource_type, row["id"], trail.changes_between(dict(row), None)
                )
                if n % RECORD_EVERY == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0)
    # No ORM synchronisation: it would fetch back every deleted id (RETURNING) to expire objects
    # that a cascade never loads.
    await session.execute(delete(model).where(condition), execution_options=UNSYNCED)


async def delete_patient_records(session: AsyncSession, patient_ids: Any) -> None:
    """Delete everything recorded on the patients selected by `patient_ids` (a subquery)."""
    treatments = select(Treatment.id).where(col(Treatment.patient_id).in_(patient_ids))
    await session.execute(
        delete(TreatmentComponent).where(col(TreatmentComponent.treatment_id).in_(treatments))
    )
    await audited_delete(session, AdverseEvent, col(AdverseEvent.patient_id).in_(patient_ids))
    await audited_delete(session, Outcome, col(Outcome.patient_id).in_(patient_ids))
    await audited_delete(session, Treatment, col(Treatment.patient_id).in_(patient_ids))
    await audited_delete(
        session,
        PatientLink,
        col(PatientLink.patient_a_id).in_(patient_ids) | col(PatientLink.patient_b_id).in_(patient_ids),
    )


async def delete_patients(session: AsyncSession, patient_ids: Any) -> None:
    # The parents are locked before their children are deleted: a record created meanwhile for
    # one of them (whose foreign-key check takes a share lock on the patient) then waits for this
    # delete and finds its patient gone, instead of slipping in between the children's delete
    # and the patients' and failing this one. Parents before children is the order every write
    # takes; the audit chain's lock comes last, at commit (service.audit.trail).
    await session.execute(select(Patient.id).where(col(Patient.id).in_(patient_ids)).with_for_update())
    await delete_patient_records(session, patient_ids)
    await audited_delete(session, Patient, col(Patient.id).in_(patient_ids))


async def delete_arm_contents(session: AsyncSession, arm_ids: Any) -> None:
    """Delete the patients (with their records), reported results and agent links of arms."""
    await delete_patients(session, select(Patient.id).where(col(Patient.arm_id).in_(arm_ids)))
    await audited_delete(session, ReportedResult, col(ReportedResult.arm_id).in_(arm_ids))
    await session.execute(delete(ArmAgent).where(col(ArmAgent.arm_id).in_(arm_ids)))


async def delete_study_contents(session: AsyncSession, study_id: Any) -> None:
    await delete_patients(session, select(Patient.id).where(Patient.study_id == study_id))
    await audited_delete(session, ReportedResult, ReportedResult.study_id == study_id)
    await delete_arm_contents(session, select(Arm.id).where(Arm.study_id == study_id))
    await audited_delete(session, Arm, Arm.study_id == study_id)
    await audited_delete(session, Site, Site.study_id == study_id)
    # The registry records it was imported from go with it (the study's own delete is audited).
    await session.execute(delete(SourceRecord).where(col(SourceRecord.study_id) == study_id))


async def unlink_treatment(session: AsyncSession, treatment_id: Any) -> None:
    """Adverse events attributed to a deleted treatment, and assessments of it, keep their data
    and lose the link (audited)."""
    from service.audit import trail

    for model, resource_type in ((AdverseEvent, "adverse_event"), (Outcome, "outcome")):
        linked = col(model.treatment_id) == treatment_id
        for record_id in (await session.scalars(select(model.id).where(linked))).all():
            await trail.record(
                session, "update", resource_type, record_id, {"treatment_id": [str(treatment_id), None]}
            )
        await session.execute(
            update(model).where(linked).values(treatment_id=None, version=model.version + 1)
        )
