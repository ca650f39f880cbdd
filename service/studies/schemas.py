from typing import Annotated, Literal

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList, ShortTextList
from service.common.structs import read_struct, update_struct
from service.common.types import NO_NUL, Count, LongText, Name, PartialDate, RegistryId, ShortText
from service.common.vocab import Design, OverallStatus, Phase
from service.locks.schemas import StudyLock


class Publication(Input):
    citation: LongText | None = None
    doi: (
        Annotated[
            str, Meta(pattern=r"^10\.[0-9]{4,9}/[^\x00-\x20]{1,200}$", examples=["10.2147/BLCTT.S512345"])
        ]
        | None
    ) = None
    pmid: Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,8}$")] | None = None
    year: Annotated[int, Meta(ge=1900, le=2100)] | None = None


# ClinicalTrials.gov ages are a number and a unit ("18 Years", "6 Months").
RegistryAge = Annotated[
    str, Meta(pattern=r"^[0-9]{1,3} (Years?|Months?|Weeks?|Days?|Hours?|Minutes?)$", examples=["18 Years"])
]


RegistrySex = Literal["ALL", "FEMALE", "MALE"]


class Eligibility(Input):
    """Who may enrol, as a trial registry states it (ClinicalTrials.gov eligibilityModule)."""

    criteria: LongText | None = None
    sex: RegistrySex | None = None
    minimum_age: RegistryAge | None = None
    maximum_age: RegistryAge | None = None
    healthy_volunteers: bool | None = None


class MeshTerm(Input):
    term: ShortText
    id: Annotated[str, Meta(pattern=r"^[A-Z][0-9]{6,9}$", examples=["D015470"])] | None = None


class RegistryOutcome(Input):
    """An outcome measure as the registry defines it (what is measured, over what time)."""

    type: Literal["PRIMARY", "SECONDARY", "OTHER"]
    measure: ShortText
    description: LongText | None = None
    time_frame: ShortText | None = None


class RegistryDetails(Input):
    """What a trial registry records beside the protocol fields (ClinicalTrials.gov: keywords,
    MeSH terms of the conditions, secondary ids, collaborators, outcome-measure definitions)."""

    keywords: ShortTextList = []
    mesh_terms: Annotated[list[MeshTerm], Meta(max_length=100)] = []
    secondary_ids: Annotated[list[Name], Meta(max_length=50)] = []
    collaborators: Annotated[list[ShortText], Meta(max_length=50)] = []
    outcome_measures: Annotated[list[RegistryOutcome], Meta(max_length=200)] = []


class StudyCreate(Input):
    """A study: a trial, a cohort, a case series or a single case report."""

    title: ShortText
    design: Design
    official_title: Annotated[str, Meta(min_length=1, max_length=1000, pattern=NO_NUL)] | None = None
    phases: Annotated[
        list[Phase],
        Meta(max_length=3, description="ClinicalTrials.gov phases; PHASE1+PHASE2 for a phase 1/2 trial."),
    ] = []
    overall_status: OverallStatus | None = None
    registry_ids: Annotated[list[RegistryId], Meta(max_length=10)] = []
    conditions: ShortTextList = []
    sponsor: ShortText | None = None
    institution: ShortText | None = None
    country: Name | None = None
    target_enrollment: Count | None = None
    actual_enrollment: Count | None = None
    start_date: PartialDate | None = None
    end_date: PartialDate | None = None
    publication: Publication | None = None
    summary: LongText | None = None
    eligibility: Eligibility | None = None
    registry: RegistryDetails | None = None
    source_document: Name | None = None
    provenance: ProvenanceList = []


StudyUpdate = update_struct(StudyCreate, "StudyUpdate")
Study = read_struct(StudyCreate, "Study", extra=[("lock", StudyLock | None, None)])
