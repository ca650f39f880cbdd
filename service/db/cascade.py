"""Explicit cascading deletes, children first. The foreign keys stay RESTRICT so that nothing
is ever removed by the database behind the service's back."""

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import (
    AdverseEvent,
    Arm,
    ArmAgent,
    Outcome,
    Patient,
    PatientLink,
    ReportedResult,
    Treatment,
    TreatmentComponent,
)


async def delete_patient_records(session: AsyncSession, patient_ids: Any) -> None:
    """Delete everything recorded on the patients selected by `patient_ids` (a subquery)."""
    treatments = select(Treatment.id).where(Treatment.patient_id.in_(patient_ids))  # type: ignore[attr-defined]
    await session.execute(delete(TreatmentComponent).where(TreatmentComponent.treatment_id.in_(treatments)))  # type: ignore[attr-defined]
    await session.execute(delete(AdverseEvent).where(AdverseEvent.patient_id.in_(patient_ids)))  # type: ignore[attr-defined]
    await session.execute(delete(Outcome).where(Outcome.patient_id.in_(patient_ids)))  # type: ignore[attr-defined]
    await session.execute(delete(Treatment).where(Treatment.patient_id.in_(patient_ids)))  # type: ignore[attr-defined]
    await session.execute(
        delete(PatientLink).where(
            PatientLink.patient_a_id.in_(patient_ids) | PatientLink.patient_b_id.in_(patient_ids)
        )  # type: ignore[attr-defined]
    )


async def delete_patients(session: AsyncSession, patient_ids: Any) -> None:
    await delete_patient_records(session, patient_ids)
    await session.execute(delete(Patient).where(Patient.id.in_(patient_ids)))  # type: ignore[attr-defined]


async def delete_arm_contents(session: AsyncSession, arm_ids: Any) -> None:
    """Delete the patients (with their records), reported results and agent links of arms."""
    await delete_patients(session, select(Patient.id).where(Patient.arm_id.in_(arm_ids)))  # type: ignore[union-attr]
    await session.execute(delete(ReportedResult).where(ReportedResult.arm_id.in_(arm_ids)))  # type: ignore[union-attr]
    await session.execute(delete(ArmAgent).where(ArmAgent.arm_id.in_(arm_ids)))  # type: ignore[arg-type]


async def delete_study_contents(session: AsyncSession, study_id: Any) -> None:
    await delete_patients(session, select(Patient.id).where(Patient.study_id == study_id))
    await session.execute(delete(ReportedResult).where(ReportedResult.study_id == study_id))  # type: ignore[arg-type]
    await delete_arm_contents(session, select(Arm.id).where(Arm.study_id == study_id))
    await session.execute(delete(Arm).where(Arm.study_id == study_id))  # type: ignore[arg-type]


async def unlink_adverse_events(session: AsyncSession, treatment_id: Any) -> None:
    await session.execute(
        update(AdverseEvent).where(AdverseEvent.treatment_id == treatment_id).values(treatment_id=None)  # type: ignore[arg-type]
    )
