from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList
from service.common.structs import read_struct, update_struct
from service.common.types import LongText, Name, PartialDate, ShortText, StudyDay
from service.common.vocab import TreatmentPhase

Unit = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00]*$", examples=["mg/m2"])]


class Component(Input):
    """One agent of a regimen with its dose and schedule as given in the source."""

    agent_id: UUID
    dose: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    dose_unit: Unit | None = None
    route: (
        Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00]*$", examples=["IV"])] | None
    ) = None
    schedule: (
        Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*$", examples=["days 1-14"])]
        | None
    ) = None


class TreatmentCreate(Input):
    """A line of therapy given to a patient."""

    patient_id: UUID
    phase: TreatmentPhase
    regimen: Name | None = None
    line_number: Annotated[int, Meta(ge=1, le=100)] | None = None
    description: LongText | None = None
    start_day: StudyDay | None = None
    end_day: StudyDay | None = None
    start_date: PartialDate | None = None
    timing_text: (
        Annotated[
            ShortText, Meta(description="Timing as the source gives it, e.g. 'day 32 of consolidation'.")
        ]
        | None
    ) = None
    on_study: Annotated[
        bool,
        Meta(
            description="Part of the study's own intervention. False for prior lines, salvage and other off-protocol therapy: response rates count only assessments of on-study treatment by default."
        ),
    ] = True
    components: Annotated[list[Component], Meta(max_length=30)] = []
    provenance: ProvenanceList = []


TreatmentUpdate = update_struct(TreatmentCreate, "TreatmentUpdate", exclude=("patient_id",))
Treatment = read_struct(TreatmentCreate, "Treatment")
