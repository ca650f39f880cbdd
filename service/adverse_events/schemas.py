from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList
from service.common.structs import read_struct, update_struct
from service.common.types import LongText, Name, ShortText, StudyDay
from service.common.vocab import AdverseEventOutcome, Attribution, GradingSystem

Grade = Annotated[int, Meta(ge=1, le=5, description="1–5; 5 means fatal (outcome must be `fatal`).")]


class AdverseEventCreate(Input):
    """An adverse event with its grade, timing and the treatment it followed.

    Give `grade` when the source states one grade; when it gives only a range such as "grade I/II",
    leave `grade` null and put the printed text in `grade_text`."""

    patient_id: UUID
    term: Annotated[
        Name,
        Meta(
            examples=["Cytokine release syndrome"],
            description="Canonical term: the CTCAE v5 term (or ASTCT syndrome). A known term is stored in its canonical spelling with its MedDRA code; terms are compared case-insensitively.",
        ),
    ]
    verbatim_term: (
        Annotated[Name, Meta(description="The term as the source prints it, e.g. 'agranulocytosis'.")] | None
    ) = None
    grade: Grade | None = None
    grade_text: (
        Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00]*$", examples=["I/II"])] | None
    ) = None
    grading_system: GradingSystem | None = None
    onset_day: StudyDay | None = None
    resolution_day: StudyDay | None = None
    timing_text: ShortText | None = None
    serious: bool | None = None
    outcome: AdverseEventOutcome | None = None
    attribution: Attribution | None = None
    treatment_id: UUID | None = None
    notes: LongText | None = None
    provenance: ProvenanceList = []


AdverseEventUpdate = update_struct(AdverseEventCreate, "AdverseEventUpdate", exclude=("patient_id",))
AdverseEvent = read_struct(AdverseEventCreate, "AdverseEvent", extra=[("meddra_code", str | None)])
