from typing import Annotated

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList, ShortTextList
from service.common.structs import read_struct, update_struct
from service.common.types import Count, LongText, Name, PartialDate, RegistryId, ShortText
from service.common.vocab import Design, OverallStatus, Phase


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


class StudyCreate(Input):
    """A study: a trial, a cohort, a case series or a single case report."""

    title: ShortText
    design: Design
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
    source_document: Name | None = None
    provenance: ProvenanceList = []


StudyUpdate = update_struct(StudyCreate, "StudyUpdate")
Study = read_struct(StudyCreate, "Study")
