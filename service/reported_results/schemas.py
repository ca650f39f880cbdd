from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, Provenance
from service.common.structs import read_struct, update_struct
from service.common.types import Count, LongText, Name, ShortText
from service.reported_results.definitions import Definition

Number = Annotated[float, Meta(ge=-1e12, le=1e12)]


class ReportedResultCreate(Input):
    """A figure exactly as the publication prints it, with where it is printed.

    The first provenance entry gives the source location (e.g. "Table 4", "Abstract") and the
    verbatim quote. Percentages are given as printed (`value` 92.3 with `unit` "%")."""

    study_id: UUID
    measure: Annotated[ShortText, Meta(examples=["CR rate after one cycle"])]
    provenance: Annotated[list[Provenance], Meta(min_length=1, max_length=50)]
    arm_id: UUID | None = None
    population: ShortText | None = None
    timepoint: Name | None = None
    numerator: Count | None = None
    denominator: Count | None = None
    value: Number | None = None
    unit: Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[^\x00]*$", examples=["%"])] | None = (
        None
    )
    ci_lower: Number | None = None
    ci_upper: Number | None = None
    ci_level: Annotated[float, Meta(gt=0, lt=1)] | None = None
    ci_method: Name | None = None
    range_lower: Number | None = None
    range_upper: Number | None = None
    p_value: Annotated[float, Meta(ge=0, le=1)] | None = None
    test: Name | None = None
    notes: LongText | None = None
    definition: Definition | None = None


ReportedResultUpdate = update_struct(ReportedResultCreate, "ReportedResultUpdate", exclude=("study_id",))
ReportedResult = read_struct(ReportedResultCreate, "ReportedResult")
