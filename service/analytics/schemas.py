"""Response bodies of the statistics endpoints."""

from uuid import UUID

from service.access.disclosure import Disclosure
from service.caching.schemas import DataVersion
from service.common.schemas import Output


class Group(Output):
    """A group of patients: the whole study, one arm (`arm_id`), or the patients sharing one value
    of what the request groups by (`value`: a site's code, a sex, a diagnosis, an age band, a
    status at the landmark)."""

    key: str
    label: str
    arm_id: UUID | None
    value: str | None = None


class UndatedEventHandling(Output):
    """The undated-event rule a time-to-event analysis applied (see
    service.analytics.estimands.undated): `withhold` or `exclude`, and the patients it concerned."""

    rule: str
    patients: int | None  # null when withheld from an aggregate grant (service.access.disclosure)
    subject_codes: list[str]


class Interval(Output):
    lower: float | None
    upper: float | None


class TargetRateTest(Output):
    """Exact binomial test of the group's rate against a target (one-arm phase 2 logic)."""

    target_rate: float
    p_value_greater: float  # H1: rate > target (the usual one-sided phase 2 question)
    p_value_two_sided: float  # as R binom.test


class ResponseRateGroup(Output):
    group: Group
    patients: int
    evaluable: int
    denominator: int
    responders: int
    rate: float | None
    ci: Interval | None
    assessments_without_day: int
    # reason -> assessments of this group's patients not counted (outside the study treatment).
    assessments_excluded: dict[str, int]
    target_test: TargetRateTest | None


class Comparison(Output):
    test: str
    # Two groups: which group is compared with which. Every contrast (odds ratios, risk
    # difference) is the second group against the first, the reference.
    contrast: str | None
    group_key: str | None
    reference_key: str | None
    statistic: float | None
    df: int | None
    p_value: float | None
    odds_ratio: float | None  # the sample (cross-product) odds ratio, odds(group) / odds(reference)
    # Two groups: the group's rate minus the reference's, Newcombe's hybrid score interval.
    risk_difference: float | None
    risk_difference_ci: Interval | None
    # Two groups: conditional maximum-likelihood odds ratio with its exact interval (R
    # fisher.test); null (with a warning) where it is infinite.
    conditional_odds_ratio: float | None
    conditional_odds_ratio_ci: Interval | None
    # Three or more groups: Fisher–Freeman–Halton exact p (null when the table is too large).
    exact_p_value: float | None


class TrendTestResult(Output):
    """Cochran–Armitage test for a linear trend in the response rate across ordered groups."""

    order: list[str]  # group keys, in the order asked
    scores: list[float]
    chi_square: float | None
    p_value: float | None
    not_computable: str | None


class ResponseRates(Output):
    study_id: UUID
    categories: list[str]
    mrd: str
    by_day: int | None
    timepoint: str | None
    treatment_scope: str
    denominator: str
    conf_level: float
    groups: list[ResponseRateGroup]
    comparison: Comparison | None
    # Patients left out of every group, by reason (patients without an arm when comparing arms).
    excluded_by_reason: dict[str, int]
    method: dict[str, str]
    warnings: list[str]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # With trend_order: the test for trend across the groups in that order.
    trend: TrendTestResult | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class Count(Output):
    n: int
    N: int
    percent: float | None


class IncidenceCell(Output):
    group_key: str
    any_grade: Count
    severe: Count
    worst_grade: dict[str, Count]  # "1".."5" and "unknown"


class IncidenceRow(Output):
    term: str
    groups: list[IncidenceCell]
    # Fisher's exact p across the groups (two groups: Fisher; more: Fisher–Freeman–Halton), on
    # any grade and on worst grade >= severe_grade.
    fisher_p: float | None
    fisher_p_severe: float | None


class AdverseEventIncidence(Output):
    study_id: UUID
    severe_grade: int
    grading_system: str | None
    groups: list[Group]
    patients: dict[str, int]
    rows: list[IncidenceRow]
    # Patients left out of every group, by reason (patients without an arm when comparing arms).
    excluded_by_reason: dict[str, int]
    method: dict[str, str]
    warnings: list[str]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class CurvePoint(Output):
    time: float
    n_risk: int
    n_event: int
    n_censor: int
    survival: float
    std_err: float | None
    lower: float | None
    upper: float | None


class Median(Output):
    time: float | None
    lower: float | None
    upper: float | None
    reached: bool


class Landmark(Output):
    day: float
    time: float
    survival: float | None
    lower: float | None
    upper: float | None
    n_risk: int


class MilestoneComparison(Output):
    """S(t) of a group minus S(t) of the reference group at a landmark day, with a Wald interval."""

    day: float
    group_key: str
    reference_key: str
    difference: float
    lower: float
    upper: float
    p_value: float | None


class AtRisk(Output):
    """The risk table at a time: patients still at risk, and events and censorings up to it."""

    time: float
    n_risk: int
    events: int | None = None
    censored: int | None = None


class IncidenceAtRisk(Output):
    """The risk table of a cumulative incidence at a time: patients still at risk, events of each
    cause and censorings up to it."""

    time: float
    n_risk: int
    events: dict[str, int]
    censored: int


class IncidenceCensoring(Output):
    """Patients censored at a time (no event of any cause by then), with the number at risk just
    before it: where a cumulative-incidence plot draws its censoring marks."""

    time: float
    n_risk: int
    n_censor: int


class RestrictedMeanTime(Output):
    """The area under the Kaplan–Meier curve up to `tau` (in `time_unit`), as survRM2."""

    tau: float
    estimate: float
    se: float
    lower: float
    upper: float


class RestrictedMeanComparison(Output):
    """A group against the first group: difference and ratio of restricted means (survRM2 rmst2)."""

    group_key: str
    reference_key: str
    difference: float
    difference_lower: float
    difference_upper: float
    difference_p: float | None
    ratio: float | None
    ratio_lower: float | None
    ratio_upper: float | None
    ratio_p: float | None


class SurvivalGroup(Output):
    group: Group
    # Patients in the analysis set with a known time; with `excluded`, the group's every patient.
    n: int
    events: int | None  # null when not computable: zero recorded events is not zero events
    excluded: dict[str, int]  # reason -> patients of this group left out of the analysis set
    # Why the group's estimates (curve, median, landmarks, follow-up, RMST) are withheld (null
    # when they are computable); n and events are then 0.
    not_computable: str | None
    curve: list[CurvePoint]
    median: Median
    landmarks: list[Landmark]
    at_risk: list[AtRisk]
    # Median follow-up: the median of the reverse Kaplan–Meier (censoring as the event).
    follow_up: Median
    # With `tau`: the restricted mean survival time; null (with a warning) when tau is beyond
    # the group's last follow-up.
    rmst: RestrictedMeanTime | None


class LogRankTest(Output):
    chi_square: float
    df: int
    p_value: float
    observed: list[float]
    expected: list[float]
    # G-rho weight S(t−)^rho: 0 log-rank, 1 Peto–Peto.
    rho: float
    stratified_by: str | None


class Survival(Output):
    study_id: UUID
    endpoint: str
    time_unit: str
    conf_type: str
    conf_level: float
    groups: list[SurvivalGroup]
    log_rank: LogRankTest | None
    rmst_comparisons: list[RestrictedMeanComparison]
    # At each landmark day (`times`), each later group's S(t) minus the first group's.
    milestone_comparisons: list[MilestoneComparison]
    # Landmark analysis: only patients followed event-free beyond this day, time reset there.
    landmark_day: float | None
    excluded: int | None  # null when withheld from an aggregate grant (service.access.disclosure)
    excluded_by_reason: dict[str, int]
    undated_events: UndatedEventHandling
    # Estimates across groups that cannot be computed (`log_rank`, `rmst_comparisons`), and why.
    not_computable: dict[str, str]
    method: dict[str, str]
    warnings: list[str]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class TimeToEventRow(Output):
    """One analysis row per patient (ADaM ADTTE shape): AVAL in `time_unit`, CNSR 1 = censored."""

    patient_id: UUID
    subject_code: str
    group_key: str
    group_label: str
    param: str
    origin_day: int
    end_day: int
    time: float
    event: bool
    cnsr: int
    event_or_censoring: str


class Exclusion(Output):
    """A patient left out of an analysis set, and why."""

    patient_id: UUID
    subject_code: str
    group_key: str | None  # null: in no group (no arm, when comparing arms)
    reason: str


class TimeToEvent(Output):
    study_id: UUID
    endpoint: str
    time_unit: str
    rows: list[TimeToEventRow]
    excluded: list[Exclusion]
    excluded_by_reason: dict[str, int]
    undated_events: UndatedEventHandling
    # Why no estimate can come from these rows (events reported only in aggregate), else null.
    not_computable: str | None
    method: dict[str, str]
    warnings: list[str]
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class IncidencePoint(Output):
    """The cumulative incidence just after a jump (R cuminc's estimate and variance)."""

    time: float
    estimate: float
    variance: float
    lower: float | None
    upper: float | None


class IncidenceLandmark(Output):
    day: float
    time: float
    estimate: float | None
    lower: float | None
    upper: float | None


class CauseIncidence(Output):
    cause: str
    events: int | None  # null when the group's estimates are not computable
    curve: list[IncidencePoint]
    landmarks: list[IncidenceLandmark]


class IncidenceGroup(Output):
    group: Group
    n: int
    excluded: dict[str, int]
    # Why the group's curves and landmarks are withheld (null when computable).
    not_computable: str | None
    causes: list[CauseIncidence]
    # Number at risk, cumulative events per cause and censorings at the plot's ticks.
    at_risk: list[IncidenceAtRisk] = []
    # Each time at which patients were censored (the plot's censoring marks).
    censorings: list[IncidenceCensoring] = []


class GrayTestResult(Output):
    cause: str
    statistic: float
    df: int
    p_value: float
    stratified_by: str | None = None


class CumulativeIncidence(Output):
    study_id: UUID
    time_unit: str
    conf_level: float
    groups: list[IncidenceGroup]
    gray_tests: list[GrayTestResult]
    excluded: int | None  # null when withheld from an aggregate grant (service.access.disclosure)
    excluded_by_reason: dict[str, int]
    undated_events: UndatedEventHandling
    # Tests across groups that cannot be computed (`gray_tests`, `gray_test:<cause>`), and why.
    not_computable: dict[str, str]
    method: dict[str, str]
    warnings: list[str]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class CoxTerm(Output):
    """One coefficient: a numeric covariate per unit, male vs female, or an arm vs the reference arm."""

    term: str
    coef: float
    se: float
    hazard_ratio: float
    lower: float
    upper: float
    z: float
    p_value: float


class ChiSquareTest(Output):
    test: str
    chi_square: float
    df: int
    p_value: float


class CoxModel(Output):
    study_id: UUID
    endpoint: str
    covariates: list[str]
    strata: str | None
    conf_level: float
    # null when withheld from an aggregate grant (service.access.disclosure)
    n: int | None
    events: int | None
    excluded: int | None
    excluded_by_reason: dict[str, int]
    # Why no model is reported (null when it is).
    not_computable: str | None
    terms: list[CoxTerm]
    tests: list[ChiSquareTest]
    # Schoenfeld-residual tests per term and global (R cox.zph, transform "km").
    proportional_hazards: list[ChiSquareTest]
    # Why the proportional-hazards tests are not reported (null when they are).
    proportional_hazards_not_computable: str | None
    undated_events: UndatedEventHandling
    method: dict[str, str]
    warnings: list[str]
    # What was withheld for an aggregate grant (service.access.disclosure); null otherwise.
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class TwoStageDesignResult(Output):
    """Stop after stage 1 with `r1` or fewer responses of `n1`; reject the drug with `r` or fewer of `n`."""

    r1: int
    n1: int
    r: int
    n: int
    expected_n_p0: float
    early_stop_p0: float
    alpha: float
    power: float


class SimonTwoStage(Output):
    p0: float
    p1: float
    alpha: float
    beta: float
    n_max: int
    optimal: TwoStageDesignResult | None
    minimax: TwoStageDesignResult | None
    method: dict[str, str]
    warnings: list[str]


class ModelTerm(Output):
    """One coefficient of a logistic model: log odds ratio, its standard error and the odds ratio
    with its interval (Wald for maximum likelihood; profile penalised likelihood for Firth)."""

    term: str
    coef: float
    se: float
    odds_ratio: float
    # null where the profile likelihood does not reach the bound (Firth) or it overflows
    lower: float | None
    upper: float | None
    # chi-square statistic behind p_value: Wald z² (maximum likelihood) or penalised likelihood ratio (Firth)
    chi_square: float
    p_value: float


class FitStatistics(Output):
    log_likelihood: float
    # Firth only: the penalised log-likelihood maximised
    penalised_log_likelihood: float | None
    deviance: float
    null_deviance: float
    aic: float
    iterations: int


class ResponseModel(Output):
    study_id: UUID
    outcome: dict[str, str | int | list[str] | None]
    covariates: list[str]
    conf_level: float
    # `maximum_likelihood` or `firth` (what was fitted), and whether the data are separated
    estimation: str | None
    separated: bool | None
    # null when withheld from an aggregate grant (service.access.disclosure)
    n: int | None
    responders: int | None
    excluded: int | None
    excluded_by_reason: dict[str, int]
    not_computable: str | None
    terms: list[ModelTerm]
    # The likelihood-ratio test of every coefficient but the intercept = 0 (penalised for Firth).
    tests: list[ChiSquareTest]
    fit_statistics: FitStatistics | None
    method: dict[str, str]
    warnings: list[str]
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class StateCurve(Output):
    """The product-limit curve of one state of a time-varying covariate (Simon–Makuch): patients
    are at risk in it only while in that state."""

    state: str
    # patients who spend time in the state, and events in it
    patients: int | None
    events: int | None
    curve: list[CurvePoint]
    median: Median


class TransplantAnalysis(Output):
    study_id: UUID
    endpoint: str
    time_unit: str
    ties: str
    conf_level: float
    covariates: list[str]
    # null when withheld from an aggregate grant (service.access.disclosure)
    n: int | None
    events: int | None
    transplanted: int | None
    intervals: int | None
    excluded: int | None
    excluded_by_reason: dict[str, int]
    # Why no model is reported (null when it is).
    not_computable: str | None
    # hsct (transplanted vs not yet) first, then the fixed covariates
    terms: list[CoxTerm]
    tests: list[ChiSquareTest]
    # The Mantel–Byar test: the score test of the model with the time-varying transplant alone.
    mantel_byar: ChiSquareTest | None
    simon_makuch: list[StateCurve]
    undated_events: UndatedEventHandling
    method: dict[str, str]
    warnings: list[str]
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None


class CompetingRisksModel(Output):
    """Regression of one cause among competing causes, from the first CR (the RFS analysis set):
    Fine–Gray (subdistribution hazard ratios: the effect on the cumulative incidence) and the
    cause-specific Cox model (the effect on the rate among patients still free of either event)."""

    study_id: UUID
    cause: str
    covariates: list[str]
    conf_level: float
    # null when withheld from an aggregate grant (service.access.disclosure)
    n: int | None
    events: int | None
    competing_events: int | None
    excluded: int | None
    excluded_by_reason: dict[str, int]
    not_computable: str | None
    # Fine–Gray: `hazard_ratio` is the subdistribution hazard ratio, with the robust standard error
    fine_gray: list[CoxTerm]
    # Cause-specific Cox (competing events censored), Efron ties
    terms: list[CoxTerm]
    tests: list[ChiSquareTest]
    undated_events: UndatedEventHandling
    method: dict[str, str]
    warnings: list[str]
    disclosure: Disclosure | None = None
    # The data this answer was computed on: the live versions and audit head, or the data cut.
    data_version: DataVersion | None = None
