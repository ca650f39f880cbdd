"""Machine-readable definitions of reported results: what a printed figure measures, in the
terms of the statistics endpoints, so that it can be recomputed from patient-level data.

The group is the reported result's arm when it has one, else the whole study."""

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from service.common.schemas import Input
from service.common.types import Name, StudyDay
from service.common.vocab import GradingSystem, ResponseCategory

Count = Annotated[int, Meta(ge=0, le=10_000_000)]


class ResponseRateDefinition(Input, tag_field="type", tag="response_rate", kw_only=True):
    """Responders / N as `GET .../response-rates` counts them. An empty `categories` puts no
    condition on the category (e.g. MRD negativity alone, with `mrd: negative`); `timepoint`
    keeps only assessments with that `timepoint_label` (e.g. "prior to cycle 2"); `treatment_scope` as the
    endpoint's (by default only assessments of the study treatment count)."""

    categories: Annotated[list[ResponseCategory], Meta(max_length=8)] = msgspec.field(
        default_factory=lambda: ["CR", "CRi", "CRh"]
    )
    mrd: Literal["any", "negative"] = "any"
    by_day: StudyDay | None = None
    timepoint: Name | None = None
    denominator: Literal["all", "evaluable"] = "all"
    treatment_scope: Literal["study_treatment", "any_treatment"] = "study_treatment"


class AdverseEventDefinition(Input, tag_field="type", tag="adverse_event_incidence", kw_only=True):
    """Patients with `term` (at grade >= `grade_min` when given) / N."""

    term: Name
    grade_min: Annotated[int, Meta(ge=1, le=5)] | None = None
    grading_system: GradingSystem | None = None


class SurvivalDefinition(Input, tag_field="type", tag="survival", kw_only=True):
    """A Kaplan–Meier median (in `time_unit`) or the survival percentage at a landmark day."""

    endpoint: Literal["OS", "RFS", "EFS", "GRFS", "CRD"]
    statistic: Literal["median", "landmark"]
    landmark_day: Annotated[int, Meta(ge=1, le=36_500)] | None = None
    time_unit: Literal["days", "weeks", "months"] = "days"


class CumulativeIncidenceDefinition(Input, tag_field="type", tag="cumulative_incidence", kw_only=True):
    """The cumulative incidence (percent) of relapse, or of death without relapse, at a landmark
    day counted from first CR/CRi/CRh, as `GET .../cumulative-incidence` estimates it (the
    competing risk accounted for, not 1 − Kaplan–Meier)."""

    cause: Literal["relapse", "non_relapse_mortality"]
    landmark_day: Annotated[int, Meta(ge=1, le=36_500)]


class PatientAttributeDefinition(Input, tag_field="type", tag="patient_attribute", kw_only=True):
    """The median of a numeric attribute, or the count of patients whose attribute equals `equals`."""

    attribute: Literal[
        "age_years",
        "sex",
        "diagnosis",
        "disease_status",
        "risk_group",
        "wbc_10e9_per_l",
        "hemoglobin_g_per_l",
        "platelets_10e9_per_l",
        "marrow_blasts_pct",
        "peripheral_blasts_pct",
    ]
    statistic: Literal["median", "count"]
    equals: Name | None = None


class ComparisonDefinition(Input, tag_field="type", tag="comparison", kw_only=True):
    """A two-group comparison: `test` applied to `outcome` in two arms.

    `printed_counts` are the (events, N) per group as the publication prints them, so the printed
    p-value can be checked even without patient-level data."""

    test: Literal["fisher_exact"]
    outcome: ResponseRateDefinition | AdverseEventDefinition
    arm_ids: Annotated[list[UUID], Meta(min_length=2, max_length=2)]
    printed_counts: (
        Annotated[
            list[Annotated[list[Count], Meta(min_length=2, max_length=2)]], Meta(min_length=2, max_length=2)
        ]
        | None
    ) = None


class HazardRatioDefinition(Input, tag_field="type", tag="hazard_ratio", kw_only=True):
    """A printed hazard ratio of `endpoint`, `comparison` naming the groups (experimental first):
    the ratio in `value`, its interval in `ci_lower`/`ci_upper` at `ci_level` (0.95 when not
    given). `arm_ids` (experimental, reference) when the study's arms are recorded. Pooled across
    studies by `GET /evidence/hazard-ratios`."""

    endpoint: Literal["OS", "RFS", "EFS", "GRFS", "CRD"]
    comparison: Annotated[Name, Meta(examples=["venetoclax + azacitidine vs azacitidine"])]
    arm_ids: Annotated[list[UUID], Meta(min_length=2, max_length=2)] | None = None


Definition = (
    ResponseRateDefinition
    | AdverseEventDefinition
    | SurvivalDefinition
    | CumulativeIncidenceDefinition
    | PatientAttributeDefinition
    | ComparisonDefinition
    | HazardRatioDefinition
)
