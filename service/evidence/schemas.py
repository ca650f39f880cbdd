"""Response bodies of reconciliation, cross-study evidence and duplicate detection."""

from typing import Literal
from uuid import UUID

from service.access.disclosure import Disclosure
from service.caching.schemas import DataVersion
from service.common.schemas import Output, Provenance

Verdict = Literal["consistent", "inconsistent", "not_computable"]


RowSource = Literal["patient_level", "reported_result"]
CheckName = Literal["percentage", "confidence_interval", "p_value", "unit", "patient_level"]


class Check(Output):
    """One check of a printed figure: `printed` against `computed`, at the printed precision."""

    check: CheckName
    verdict: Verdict
    printed: str | None
    computed: str | None
    detail: str


class ResultReconciliation(Output):
    reported_result_id: UUID
    measure: str
    verdict: Verdict
    checks: list[Check]


class ReconciliationSummary(Output):
    consistent: int
    inconsistent: int
    not_computable: int


class Reconciliation(Output):
    study_id: UUID
    has_patient_level_data: bool
    summary: ReconciliationSummary
    results: list[ResultReconciliation]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class EvidenceRow(Output):
    study_id: UUID
    study_title: str
    # "First author et al., year" from the publication's citation, else the title (forest plots).
    study_label: str
    design: str
    source: RowSource
    events: int
    total: int
    rate: float | None
    ci_lower: float | None
    ci_upper: float | None
    reported_result_id: UUID | None
    provenance: list[Provenance]
    # Random-effects weight (percent) in the pooled estimate; 0 when the row is not pooled; null
    # under the GLMM (model=glmm), which has no inverse-variance weights.
    weight_percent: float | None
    # Why the row is shown but not pooled (null when it is pooled).
    not_pooled: str | None
    # The study's year (start date, else publication year, else end date): the cumulative view's order.
    year: int | None = None


class PooledEstimate(Output):
    estimate: float
    ci_lower: float
    ci_upper: float


class Pooling(Output):
    # inverse-variance (metafor rma) or glmm (metafor rma.glmm, binomial-normal).
    model: str
    transform: str
    # DL, REML, PM; ML under the GLMM.
    tau2_method: str
    hartung_knapp: bool
    random_effects: PooledEstimate
    fixed_effect: PooledEstimate
    # Where the proportion of a new study would lie (random effects), back-transformed.
    # Null with fewer than 3 studies (`prediction_interval_not_computable` says why).
    prediction_interval: PooledEstimate | None
    prediction_interval_not_computable: str | None
    studies: int
    tau2: float
    i2: float
    # Cochran's Q; under the GLMM the likelihood-ratio statistic of the saturated against the
    # equal-effects model (metafor's QE.LRT). Either on `df` degrees of freedom.
    q: float
    df: int
    p_heterogeneity: float | None
    continuity_corrected_rows: int


class SensitivityEstimate(Output):
    """One pooled estimate of a sensitivity view: without `study_id` (leave-one-out), or of every
    study up to and including it (cumulative, by year), random effects, back-transformed."""

    study_id: UUID
    study_title: str
    year: int | None
    studies: int
    estimate: float
    ci_lower: float
    ci_upper: float
    tau2: float
    i2: float


class Evidence(Output):
    outcome: str
    rows: list[EvidenceRow]
    pooled: Pooling | None
    # Why there is no pooled estimate (fewer than two studies with patients), else null.
    not_computable: str | None
    patients_counted_once: (
        int | None
    )  # null when withheld from an aggregate grant (service.access.disclosure)
    method: dict[str, str]
    warnings: list[str]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # The pooled estimate without each pooled study in turn (null entries left out: fewer than
    # two studies would remain), and as the studies accumulate in order of year.
    leave_one_out: list[SensitivityEstimate] = []
    cumulative: list[SensitivityEstimate] = []
    cumulative_not_computable: str | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class FieldMatch(Output):
    field: str
    a: str | None
    b: str | None


class DuplicateCandidate(Output):
    patient_a_id: UUID
    patient_b_id: UUID
    study_a_id: UUID
    study_b_id: UUID
    subject_code_a: str
    subject_code_b: str
    score: float
    matched: list[FieldMatch]
    conflicting: list[FieldMatch]
    decision: Literal["same", "different"] | None


class DuplicateCandidates(Output):
    items: list[DuplicateCandidate]
    method: dict[str, str]


class HazardRatioRow(Output):
    """A study's printed hazard ratio (a reported result with a hazard_ratio definition)."""

    study_id: UUID
    study_title: str
    design: str
    reported_result_id: UUID
    comparison: str
    hazard_ratio: float
    ci_lower: float | None
    ci_upper: float | None
    ci_level: float
    # The log ratio's standard error implied by the printed interval; null without an interval.
    standard_error: float | None
    provenance: list[Provenance]
    # Random-effects weight (percent); null when the row is not pooled.
    weight_percent: float | None
    # Why the row is shown but not pooled (null when it is pooled).
    not_pooled: str | None
    year: int | None = None


class PooledHazardRatio(Output):
    tau2_method: str
    hartung_knapp: bool
    studies: int
    random_effects: PooledEstimate
    fixed_effect: PooledEstimate
    prediction_interval: PooledEstimate | None
    prediction_interval_not_computable: str | None
    # Of the pooled log hazard ratio being 0 (z; t with k - 1 df under Hartung–Knapp).
    p_value: float
    # On the log hazard-ratio scale.
    tau2: float
    i2: float
    q: float
    df: int
    p_heterogeneity: float | None


class HazardRatioEvidence(Output):
    endpoint: str
    comparison: str | None
    rows: list[HazardRatioRow]
    pooled: PooledHazardRatio | None
    not_computable: str | None
    method: dict[str, str]
    warnings: list[str]
    leave_one_out: list[SensitivityEstimate]
    cumulative: list[SensitivityEstimate]
    cumulative_not_computable: str | None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None
