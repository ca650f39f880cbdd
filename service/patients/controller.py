from typing import Annotated
from uuid import UUID

from litestar.params import FromQuery, QueryParameter
from sqlmodel import col

from service.adverse_events.schemas import AdverseEvent
from service.adverse_events.service import AdverseEventRepository
from service.common.controller import Include, Resource, build_controller
from service.common.filters import Condition
from service.common.vocab import Diagnosis, DiseaseStatus, Sex
from service.db import models
from service.outcomes.schemas import Outcome
from service.outcomes.service import OutcomeRepository
from service.patients.schemas import Patient, PatientCreate, PatientUpdate
from service.patients.service import PatientRepository
from service.treatments.schemas import Treatment
from service.treatments.service import TreatmentRepository


def patient_filters(
    study_id: FromQuery[UUID | None] = None,
    arm_id: FromQuery[UUID | None] = None,
    site_id: FromQuery[UUID | None] = None,
    diagnosis: FromQuery[Diagnosis | None] = None,
    disease_status: FromQuery[DiseaseStatus | None] = None,
    sex: FromQuery[Sex | None] = None,
    age_min: Annotated[
        float | None, QueryParameter(ge=0, le=130, description="Minimum age in years (inclusive).")
    ] = None,
    age_max: Annotated[
        float | None, QueryParameter(ge=0, le=130, description="Maximum age in years (inclusive).")
    ] = None,
    icd10: Annotated[
        str | None,
        QueryParameter(
            pattern=r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?$",
            description="ICD-10 code; a category (C91) also matches its subcategories (C91.0).",
        ),
    ] = None,
    icdo3: Annotated[
        str | None,
        QueryParameter(pattern=r"^[89][0-9]{3}/[0-36-9]$", description="ICD-O-3 morphology, e.g. 9811/3."),
    ] = None,
) -> list[Condition]:
    p = models.Patient
    where: list[Condition] = []
    if study_id:
        where.append(col(p.study_id) == study_id)
    if arm_id:
        where.append(col(p.arm_id) == arm_id)
    if site_id:
        where.append(col(p.site_id) == site_id)
    if diagnosis:
        where.append(col(p.diagnosis) == diagnosis)
    if disease_status:
        where.append(col(p.disease_status) == disease_status)
    if sex:
        where.append(col(p.sex) == sex)
    if age_min is not None:
        where.append(col(p.age_years) >= age_min)
    if age_max is not None:
        where.append(col(p.age_years) <= age_max)
    if icd10:
        where.append(col(p.icd10_code) == icd10 if "." in icd10 else col(p.icd10_code).like(f"{icd10}%"))
    if icdo3:
        where.append(col(p.icdo3_morphology) == icdo3)
    return where


PatientController = build_controller(
    Resource(
        path="/patients",
        tag="Patients",
        singular="Patient",
        plural="Patients",
        read=Patient,
        create=PatientCreate,
        update=PatientUpdate,
        repository=PatientRepository(),
        filters=patient_filters,
        sort_columns={"subject_code": models.Patient.subject_code, "age_years": models.Patient.age_years},
        reason_required=True,
        patient_level=True,
        default_id_column=models.Patient.id,
        delete_note="With `cascade=true`, the patient's treatments, adverse events and outcomes go too.",
        includes={
            "treatments": Include(Treatment, TreatmentRepository(), models.Treatment.patient_id),
            "adverse_events": Include(AdverseEvent, AdverseEventRepository(), models.AdverseEvent.patient_id),
            "outcomes": Include(Outcome, OutcomeRepository(), models.Outcome.patient_id),
        },
    )
)
