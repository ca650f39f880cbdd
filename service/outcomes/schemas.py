"""Outcomes are a tagged union on `kind`: a response assessment, a clinical event, or an
observation (a measured quantity such as days of neutropenia or transfused units)."""

from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, MarkerList, ProvenanceList
from service.common.structs import merged_update_struct, read_struct
from service.common.types import LongText, Name, PartialDate, Percent, ShortText, StudyDay
from service.common.vocab import (
    ChronicGvhdSeverity,
    EventType,
    GvhdKind,
    MrdMethod,
    MrdStatus,
    ResponseCategory,
    Sample,
)


class OutcomeFields(Input):
    patient_id: UUID
    study_day: StudyDay | None = None
    timing_text: (
        Annotated[
            ShortText, Meta(description="Timing as the source gives it, e.g. 'day 32 of consolidation'.")
        ]
        | None
    ) = None
    date: PartialDate | None = None
    timepoint_label: Name | None = None
    notes: LongText | None = None
    provenance: ProvenanceList = []


class ResponseAssessmentCreate(OutcomeFields, tag_field="kind", tag="response", kw_only=True):
    """A response assessment. `category` when the source gives one; when it only narrows it down
    (e.g. "CR or CRi" without saying which patient had which) leave `category` null and list the
    candidates in `possible_categories`."""

    treatment_id: (
        Annotated[
            UUID,
            Meta(
                description="The treatment (of the same patient) whose response this assessment evaluates. Without it, the assessment is attributed by its study day (see response-rates)."
            ),
        ]
        | None
    ) = None
    category: ResponseCategory | None = None
    possible_categories: Annotated[list[ResponseCategory], Meta(max_length=8)] = []
    category_text: ShortText | None = None
    mrd_status: MrdStatus | None = None
    mrd_method: MrdMethod | None = None
    mrd_target: Annotated[Name, Meta(examples=["KMT2A-AFF1/ABL"])] | None = None
    mrd_sensitivity: (
        Annotated[float, Meta(gt=0, le=1, description="Lowest detectable fraction, e.g. 1e-4.")] | None
    ) = None
    mrd_level: (
        Annotated[float, Meta(ge=0, le=1, description="Measured level as a fraction, e.g. 7e-4.")] | None
    ) = None
    mrd_level_text: Name | None = None
    sample: Sample | None = None
    chimerism_pct: Percent | None = None
    markers: MarkerList = []


class EventCreate(OutcomeFields, tag_field="kind", tag="event", kw_only=True):
    """A clinical event. A `gvhd` event says which kind (`gvhd_kind`), the acute grade (1–4,
    MAGIC) or chronic severity (NIH), and whether systemic therapy was needed: GRFS counts grade
    3–4 acute GVHD and chronic GVHD needing systemic therapy."""

    event_type: EventType
    cause: ShortText | None = None
    gvhd_kind: GvhdKind | None = None
    gvhd_grade: Annotated[int, Meta(ge=1, le=4, description="Acute GVHD overall grade (MAGIC).")] | None = (
        None
    )
    gvhd_severity: ChronicGvhdSeverity | None = None
    gvhd_systemic_therapy: bool | None = None


class ObservationCreate(OutcomeFields, tag_field="kind", tag="observation", kw_only=True):
    name: Annotated[Name, Meta(examples=["days with ANC < 0.5 x10^9/L"])]
    value: Annotated[float, Meta(ge=-1e12, le=1e12)] | None = None
    unit: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00]*$")] | None = None


OutcomeCreate = ResponseAssessmentCreate | EventCreate | ObservationCreate
VARIANTS = (ResponseAssessmentCreate, EventCreate, ObservationCreate)

OutcomeUpdate = merged_update_struct(VARIANTS, "OutcomeUpdate", exclude=("patient_id",))
ResponseAssessment = read_struct(
    ResponseAssessmentCreate, "ResponseAssessment", tag_field="kind", tag="response"
)
Event = read_struct(EventCreate, "Event", tag_field="kind", tag="event")
Observation = read_struct(ObservationCreate, "Observation", tag_field="kind", tag="observation")
Outcome = ResponseAssessment | Event | Observation

# Which fields each kind may carry (used to refuse a PATCH that mixes kinds).
FIELDS_BY_KIND = {variant.__struct_config__.tag: set(variant.__struct_fields__) for variant in VARIANTS}
