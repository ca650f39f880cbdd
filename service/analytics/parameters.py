"""Query parameters shared by the per-study statistics and the cross-study evidence endpoints,
so that "what counts as a response" is declared, validated and documented once."""

from dataclasses import dataclass
from typing import Annotated, Any

from litestar.params import FromQuery, QueryParameter

from service.analytics.estimands.endpoints import Scope
from service.analytics.estimands.groups import GroupBy, GroupSpec
from service.analytics.proportions.analysis import Denominator, MrdRequirement

CATEGORY = "(CR|CRi|CRh|MLFS|PR|SD|NR|PD)"
Categories = Annotated[
    str,
    QueryParameter(
        pattern=f"^(any|{CATEGORY}(,{CATEGORY}){{0,7}})$",
        description="Comma-separated response categories counted as response, or `any` for no condition on the category (e.g. MRD negativity alone, with `mrd=negative`).",
    ),
]
ScopeParam = Annotated[
    Scope,
    QueryParameter(
        description="`study_treatment` (default): only assessments of the study's own treatment (not before study day 1, not of or after off-study therapy such as salvage); `any_treatment`: every assessment."
    ),
]
ConfLevel = Annotated[float, QueryParameter(ge=0.5, le=0.999, description="Confidence level.")]


@dataclass(frozen=True, slots=True)
class ResponseDefinition:
    categories: list[str]
    mrd: MrdRequirement
    by_day: int | None
    denominator: Denominator
    scope: Scope

    def as_outcome(self) -> dict[str, Any]:
        """The `response_rate` outcome definition that pooling and reconciliation count."""
        return {
            "type": "response_rate",
            "categories": self.categories,
            "mrd": self.mrd,
            "by_day": self.by_day,
            "denominator": self.denominator,
            "treatment_scope": self.scope,
        }


def response_definition(
    categories: Categories = "CR,CRi,CRh",
    mrd: FromQuery[MrdRequirement] = "any",
    by_day: Annotated[
        int | None,
        QueryParameter(ge=-36500, le=36500, description="Only assessments up to this study day."),
    ] = None,
    denominator: Annotated[
        Denominator,
        QueryParameter(
            description="`all`: every patient of the group; `evaluable`: patients with a counted assessment in the window (with `mrd=negative`, one whose MRD status is known)."
        ),
    ] = "all",
    treatment_scope: ScopeParam = "study_treatment",
) -> ResponseDefinition:
    wanted = [] if categories == "any" else list(dict.fromkeys(categories.split(",")))
    return ResponseDefinition(wanted, mrd, by_day, denominator, treatment_scope)


def group_spec(
    group_by: Annotated[
        GroupBy | None,
        QueryParameter(
            description=(
                "Compare groups: `arm`, `site`, `sex`, `diagnosis`, `disease_status`, `risk_group` (at most 12 levels), "
                "`age` (bands at `age_cuts`), or, on survival with `landmark_day`, `response_at_landmark` (CR/CRi/CRh or not) "
                "and `mrd_at_landmark` (MRD negative or positive) from the last assessment on or before the landmark. "
                "Patients without a value are left out of the comparison, counted and named. Default: the whole study as one group."
            )
        ),
    ] = None,
    age_cuts: Annotated[
        str | None,
        QueryParameter(
            pattern=r"^[0-9]{1,3}(\.[0-9]{1,2})?(,[0-9]{1,3}(\.[0-9]{1,2})?){0,9}$",
            description="With group_by=age: increasing cut points in years, e.g. 18,40,60 gives <18, 18-40, 40-60, >=60 (bands include their lower bound).",
        ),
    ] = None,
) -> GroupSpec:
    cuts = tuple(float(c) for c in age_cuts.split(",")) if age_cuts else ()
    return GroupSpec(group_by, cuts)
