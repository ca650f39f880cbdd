from typing import Literal
from uuid import UUID

from service.common.schemas import Input, ProvenanceList
from service.common.structs import read_struct, update_struct
from service.common.types import LongText


class PatientLinkCreate(Input):
    """A curator's decision about two patients in different studies: the same person or not."""

    patient_a_id: UUID
    patient_b_id: UUID
    decision: Literal["same", "different"]
    note: LongText | None = None
    provenance: ProvenanceList = []


PatientLinkUpdate = update_struct(
    PatientLinkCreate, "PatientLinkUpdate", exclude=("patient_a_id", "patient_b_id")
)
PatientLink = read_struct(PatientLinkCreate, "PatientLink")
