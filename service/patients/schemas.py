from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, MarkerList, ProvenanceList, ShortTextList
from service.common.structs import read_struct, update_struct
from service.common.types import Icd10Code, IcdO3Morphology, LongText, Measurement, Name, Percent, ShortText
from service.common.vocab import Diagnosis, DiseaseStatus, Sex

Age = Annotated[
    float,
    Meta(
        ge=0,
        le=130,
        description="Age in years at study entry; 90 and above is stored as 90 with `age_capped` (HIPAA Safe Harbor).",
    ),
]


class PatientCreate(Input):
    """A de-identified study subject. There are no fields for names, record numbers or birth dates."""

    study_id: UUID
    subject_code: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            pattern=r"^[^\x00]*$",
            examples=["P01"],
            description="Unique within the study.",
        ),
    ]
    diagnosis: Diagnosis
    arm_id: UUID | None = None
    site_id: (
        Annotated[UUID, Meta(description="The site (of the same study) that enrolled the patient.")] | None
    ) = None
    age_years: Age | None = None
    sex: Sex | None = None
    diagnosis_subtype: ShortText | None = None
    disease_status: DiseaseStatus | None = None
    ecog: Annotated[int, Meta(ge=0, le=5)] | None = None
    risk_group: Name | None = None
    wbc_10e9_per_l: Measurement | None = None
    hemoglobin_g_per_l: Measurement | None = None
    platelets_10e9_per_l: Measurement | None = None
    marrow_blasts_pct: Percent | None = None
    peripheral_blasts_pct: Percent | None = None
    genetic_findings: Annotated[ShortTextList, Meta(examples=[["KMT2A-AFF1"]])] = []
    markers: MarkerList = []
    icd10_code: (
        Annotated[Icd10Code, Meta(description="ICD-10 code of the diagnosis, e.g. C91.0 (ALL), C92.0 (AML).")]
        | None
    ) = None
    icdo3_morphology: (
        Annotated[
            IcdO3Morphology, Meta(description="ICD-O-3 morphology/behaviour, where the source supports it.")
        ]
        | None
    ) = None
    notes: LongText | None = None
    provenance: ProvenanceList = []


PatientUpdate = update_struct(PatientCreate, "PatientUpdate", exclude=("study_id",))
Patient = read_struct(PatientCreate, "Patient", extra=[("age_capped", bool)])
