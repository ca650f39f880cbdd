"""Time-to-event analysis rows (ADaM ADTTE shape) and the Kaplan–Meier summaries built on them.

Time is the elapsed days from the origin study day to the end study day (day −1 to day 1 is one
day, since there is no day 0), then converted to `time_unit` (weeks = days/7, months =
days/30.4375). Who is in the analysis set, and each patient's origin, end and event, is decided
once, in SQL, by service.analytics.estimands.endpoints; the survival endpoint reads those rows counted."""

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, Unpack
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.aggregate_only import aggregate_only
from service.analytics.estimands.endpoints import Endpoint, Stratum
from service.analytics.estimands.groups import (
    LANDMARK_STATUSES,
    Groups,
    GroupSpec,
    group_patients,
    resolve,
    small_sample_warnings,
    without_landmark,
)
from service.analytics.estimands.time_scale import DAYS_PER_UNIT, TimeUnit, elapsed, ticks
from service.analytics.estimands.undated import UndatedEvents, UndatedRule, rule_for_rows, undated_rule
from service.analytics.fetched import column_of
from service.analytics.lazy_scipy import stats
from service.analytics.schemas import (
    AtRisk,
    CurvePoint,
    Exclusion,
    Group,
    Landmark,
    LogRankTest,
    Median,
    MilestoneComparison,
    RestrictedMeanComparison,
    RestrictedMeanTime,
    Survival,
    SurvivalGroup,
    TimeToEvent,
    TimeToEventRow,
)
from service.analytics.survival.estimators import (
    ConfType,
    KaplanMeier,
    RestrictedMean,
    at_risk,
    kaplan_meier,
    log_rank_test,
    milestone_difference,
    quantile,
    restricted_mean,
    restricted_mean_difference,
    reverse_kaplan_meier,
    survival_at,
    survival_se_at,
)
from service.common.heavy import offload
from service.errors import RuleViolation

DEFINITIONS = {
    "time": "elapsed days from origin to end study day (no day 0: day -1 to day 1 is one day), divided by 1 (days), 7 (weeks) or 30.4375 (months)",
    **{name: d.description for name, d in estimands.ENDPOINTS.items()},
    "censoring": "a patient without an event is censored at the last recorded study day (latest day of any outcome, adverse event or treatment); patients never in remission are left out of RFS and CRD",
    "undated_events": "a patient whose endpoint event (or remission origin) has no study day is never censored and never silently left out: by default every estimate the patient could change is not computable (undated_events=withhold); undated_events=exclude leaves them out, counted and named, with a warning",
    "aggregate_only": "an endpoint whose events the study reports only in aggregate (a printed median or landmark implying events, none recorded per patient) is not computable from the patient rows",
}


def _warn_exclusions(counts: dict[str, int], endpoint: str) -> list[str]:
    return [
        f"{n} patient(s) not in the {endpoint} analysis set: {reason}" for reason, n in sorted(counts.items())
    ]


async def time_to_event(
    session: AsyncSession,
    study_id: UUID,
    *,
    endpoint: Endpoint,
    time_unit: TimeUnit,
    group_by: GroupSpec,
    undated_events: UndatedEvents = "withhold",
) -> TimeToEvent:
    await queries.require_study(session, study_id)
    groups = await resolve(session, study_id, without_landmark(group_by, "the time-to-event rows"))
    rows = await estimands.fetch_analysis_rows(session, study_id, endpoint, group_value=group_by.column())
    grouping = group_patients(rows, groups)
    labels = {g.key: g.label for g in grouping.groups}
    rule = await rule_for_rows(
        session, study_id, endpoint, undated_events, rows, lambda r: grouping.group_of[r.id]
    )
    kept = [r for r in rows if r.reason is None and grouping.group_of[r.id] is not None]
    times = elapsed(
        np.array([r.origin_day for r in kept], float), np.array([r.end_day for r in kept], float), time_unit
    )
    out = [
        TimeToEventRow(
            patient_id=queries.as_uuid(r.id),
            subject_code=r.subject_code,
            group_key=key,
            group_label=labels[key],
            param=endpoint,
            origin_day=int(r.origin_day),
            end_day=int(r.end_day),
            time=float(t),
            event=bool(r.event),
            cnsr=0 if r.event else 1,
            event_or_censoring=r.event_type if r.event else estimands.CENSORED,
        )
        for r, t in zip(kept, times, strict=True)
        if (key := grouping.group_of[r.id]) is not None
    ]
    excluded = [
        Exclusion(
            patient_id=queries.as_uuid(r.id),
            subject_code=r.subject_code,
            group_key=grouping.group_of[r.id],
            # in no group comes first, as every analysis counts it: the other reason is moot
            reason=grouping.reason_of[r.id] if grouping.group_of[r.id] is None else r.reason,
        )
        for r in rows
        if r.reason is not None or grouping.group_of[r.id] is None
    ]
    by_reason = dict(Counter(e.reason for e in excluded))
    return TimeToEvent(
        study_id=study_id,
        endpoint=endpoint,
        time_unit=time_unit,
        rows=out,
        excluded=excluded,
        excluded_by_reason=by_reason,
        undated_events=rule.handling(),
        not_computable=rule.aggregate_only,
        method={
            **DEFINITIONS,
            "undated_events": rule.method(),
            "groups": group_by.method(),
            "columns": "time = AVAL, cnsr = CNSR (1 censored, 0 event), event_or_censoring = EVNTDESC/CNSDTDSC",
        },
        warnings=_warn_exclusions(by_reason, endpoint) + rule.warnings(),
    )


def curve_points(km: KaplanMeier) -> list[CurvePoint]:
    """The steps of a product-limit curve as the answers report them (non-finite values null)."""
    return [
        CurvePoint(
            time=float(km.time[i]),
            n_risk=int(km.n_risk[i]),
            n_event=int(km.n_event[i]),
            n_censor=int(km.n_censor[i]),
            survival=float(km.surv[i]),
            std_err=_none(km.std_err[i]),
            lower=_none(km.lower[i]),
            upper=_none(km.upper[i]),
        )
        for i in range(len(km.time))
    ]


def _none(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


LANDMARK_EXCLUSION = "event or censoring on or before the landmark day"
LandmarkTime = Literal["from_landmark", "from_origin"]


class SurvivalOptions(TypedDict, total=False):
    endpoint: Endpoint
    landmark_days: list[float]
    conf_type: ConfType
    conf_level: float
    time_unit: TimeUnit
    group_by: GroupSpec
    rho: float
    strata: Stratum | None
    tau_days: float | None
    landmark_day: float | None
    landmark_time: LandmarkTime
    undated_events: UndatedEvents


async def survival(session: AsyncSession, study_id: UUID, **options: Unpack[SurvivalOptions]) -> Survival:
    await queries.require_study(session, study_id)
    endpoint = options["endpoint"]
    spec = options.get("group_by") or GroupSpec()
    if spec.by in LANDMARK_STATUSES:
        if spec.landmark_day is None or spec.landmark_day != options.get("landmark_day"):
            raise RuleViolation(
                f"group_by={spec.by} groups patients by their status at a landmark: give landmark_day",
                field="landmark_day",
            )
        if estimands.ENDPOINTS[endpoint].origin != "day_1":
            raise RuleViolation(
                f"group_by={spec.by}: the status is placed from study day 1, and {endpoint} is timed from remission; use OS, EFS or GRFS",
                field="group_by",
            )
    groups = await resolve(session, study_id, spec)
    counts = await estimands.fetch_analysis_counts(
        session, study_id, endpoint, options.get("strata"), spec.column()
    )
    undated = (
        await estimands.fetch_undated_patients(session, study_id, endpoint, spec.column())
        if any(reason in estimands.UNDATED for reason in column_of(counts, "reason"))
        else []
    )
    rule = undated_rule(
        options.get("undated_events", "withhold"),
        endpoint,
        ((groups.key(r.group_value), r.subject_code) for r in undated),
        await aggregate_only(session, study_id, endpoint),
    )
    # The estimates, tests and curve points are CPU work: off the event loop.
    return await offload(_survival_result, study_id, counts, groups, rule, **options)


def _withheld_group(
    group: Group, n: int, excluded: dict[str, int], reason: str, landmark_days: list[float], unit: float
) -> SurvivalGroup:
    """A group whose estimates cannot be computed: sizes and exclusions, no curve or summaries."""
    nothing = Median(time=None, lower=None, upper=None, reached=False)
    return SurvivalGroup(
        group=group,
        n=n,
        events=None,
        excluded=excluded,
        not_computable=reason,
        curve=[],
        median=nothing,
        landmarks=[
            Landmark(day=day, time=day / unit, survival=None, lower=None, upper=None, n_risk=0)
            for day in landmark_days
        ],
        at_risk=[],
        follow_up=nothing,
        rmst=None,
    )


def _survival_result(
    study_id: UUID,
    counts: Sequence[Any],
    grouped: Groups,
    rule: UndatedRule,
    *,
    endpoint: Endpoint,
    landmark_days: list[float],
    conf_type: ConfType,
    conf_level: float,
    time_unit: TimeUnit,
    group_by: GroupSpec | None = None,
    rho: float = 0.0,
    strata: Stratum | None = None,
    tau_days: float | None = None,
    landmark_day: float | None = None,
    landmark_time: "LandmarkTime" = "from_landmark",
    undated_events: UndatedEvents = "withhold",
) -> Survival:
    groups = grouped.groups
    sizes: dict[str, int] = defaultdict(int)
    cells: dict[str, list[tuple[float, float, bool, int, Any]]] = defaultdict(list)
    excluded_in: dict[str, Counter[str]] = defaultdict(Counter)
    without_group: Counter[str] = Counter()
    landmark = None if landmark_day is None else landmark_day / DAYS_PER_UNIT[time_unit]
    for row in counts:
        key = grouped.key(row.group_value)
        if key is None:
            without_group[grouped.reason(row.group_value)] += row.n
            continue
        sizes[key] += row.n
        if row.reason is not None:
            excluded_in[key][row.reason] += row.n
            continue
        if landmark is not None:
            time = float(
                elapsed(np.array([float(row.origin_day)]), np.array([float(row.end_day)]), time_unit)[0]
            )
            if time <= landmark:
                excluded_in[key][LANDMARK_EXCLUSION] += row.n
                continue
        cells[key].append(
            (row.origin_day, row.end_day, bool(row.event), row.n, row.stratum if strata else None)
        )
    by_reason: Counter[str] = sum(excluded_in.values(), Counter()) + without_group

    warnings = small_sample_warnings(groups, sizes)
    warnings.extend(_warn_exclusions(dict(by_reason), endpoint))
    warnings.extend(rule.warnings())
    samples: list[tuple[np.ndarray, np.ndarray]] = []
    stratum_codes: list[np.ndarray] = []
    stratum_values = sorted({str(c[4]) for cell in cells.values() for c in cell if c[4] is not None})
    for group in groups:
        rows = cells[group.key]
        n = np.array([r[3] for r in rows], int)
        times = np.repeat(
            elapsed(np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float), time_unit),
            n,
        )
        if landmark is not None and landmark_time == "from_landmark":
            times = times - landmark
        samples.append((times, np.repeat(np.array([r[2] for r in rows], bool), n)))
        stratum_codes.append(
            np.repeat(
                np.array([-1 if r[4] is None else stratum_values.index(str(r[4])) for r in rows], int), n
            )
        )
    entry = landmark if landmark is not None and landmark_time == "from_origin" else None

    def n_risk(times: np.ndarray, t: float) -> int:
        # with delayed entry nobody is at risk until the landmark: (entry, time] as R's Surv(entry, time, event)
        return 0 if entry is not None and t <= entry else at_risk(times, t)

    longest = max((float(t.max()) for t, _ in samples if len(t)), default=0.0)
    grid = ticks(longest)

    results: list[SurvivalGroup] = []
    curves: dict[str, Any] = {}
    tau = None if tau_days is None else tau_days / DAYS_PER_UNIT[time_unit]
    means: dict[str, RestrictedMean] = {}
    for group, (times, events) in zip(groups, samples, strict=True):
        withheld = rule.withheld(group.key)
        if withheld:
            if rule.by_group.get(group.key) and rule.rule == "withhold":  # aggregate-only is said once
                warnings.append(f"group '{group.label}': estimates not computable: {withheld}")
            results.append(
                _withheld_group(
                    group,
                    len(times),
                    dict(excluded_in[group.key]),
                    withheld,
                    landmark_days,
                    DAYS_PER_UNIT[time_unit],
                )
            )
            continue
        km = kaplan_meier(times, events, conf_type, conf_level)
        curves[group.key] = km
        median, low, high = quantile(km, 0.5) if len(times) else (None, None, None)
        if len(times) and not km.events:
            warnings.append(f"group '{group.label}': no events, every time is censored")
        if len(times) and median is None:
            warnings.append(f"group '{group.label}': median not reached")
        landmarks = []
        for day in landmark_days:
            t = day / DAYS_PER_UNIT[time_unit]
            value = survival_at(km, t)
            if value is None and len(times):
                warnings.append(f"group '{group.label}': landmark day {day:g} is beyond the last follow-up")
            landmarks.append(
                Landmark(
                    day=day,
                    time=t,
                    survival=value[0] if value else None,
                    lower=value[1] if value else None,
                    upper=value[2] if value else None,
                    n_risk=n_risk(times, t),
                )
            )
        follow_up = (
            quantile(reverse_kaplan_meier(times, events, conf_type, conf_level), 0.5)
            if len(times)
            else (None, None, None)
        )
        rmst = None
        if tau is not None and len(times):
            if tau > float(times.max()):
                warnings.append(
                    f"group '{group.label}': restricted mean not computable: tau ({tau_days:g} days) is beyond the last follow-up"
                )
            else:
                rm = restricted_mean(km, tau)
                means[group.key] = rm
                z = float(stats.norm.isf((1 - conf_level) / 2))
                rmst = RestrictedMeanTime(
                    tau=tau,
                    estimate=rm.estimate,
                    se=rm.se,
                    lower=rm.estimate - z * rm.se,
                    upper=rm.estimate + z * rm.se,
                )
        results.append(
            SurvivalGroup(
                group=group,
                n=len(times),
                events=km.events,
                excluded=dict(excluded_in[group.key]),
                not_computable=None,
                curve=curve_points(km),
                median=Median(time=median, lower=low, upper=high, reached=median is not None),
                landmarks=landmarks,
                at_risk=[
                    AtRisk(
                        time=t,
                        n_risk=n_risk(times, t),
                        events=int(np.count_nonzero(events & (times <= t))),
                        censored=int(np.count_nonzero(~events & (times <= t))),
                    )
                    for t in grid
                ],
                follow_up=Median(
                    time=follow_up[0],
                    lower=follow_up[1],
                    upper=follow_up[2],
                    reached=follow_up[0] is not None,
                ),
                rmst=rmst,
            )
        )
    not_computable: dict[str, str] = {}
    test = None
    if len(groups) >= 2:
        across = rule.withheld_across(g.key for g in groups)
        if across:
            not_computable["log_rank"] = across
        else:
            tested = samples
            codes = None
            if strata:
                # patients without the stratifying attribute cannot be placed in a stratum
                missing = sum(int((c < 0).sum()) for c in stratum_codes)
                if missing:
                    warnings.append(f"{missing} patient(s) without {strata} left out of the stratified test")
                tested = [(t[c >= 0], e[c >= 0]) for (t, e), c in zip(samples, stratum_codes, strict=True)]
                codes = [c[c >= 0] for c in stratum_codes]
            test, reason = log_rank_test(tested, codes, rho)
            if test is None:
                not_computable["log_rank"] = reason
                warnings.append(f"log-rank test not computable: {reason}")
    milestones = []
    reference = groups[0].key if groups else None
    for group in groups[1:]:
        if reference not in curves or group.key not in curves:
            continue
        if rule.withheld_across([group.key, reference or ""]):
            not_computable["milestone_comparisons"] = rule.withheld_across([group.key, reference or ""]) or ""
            continue
        for day in landmark_days:
            t = day / DAYS_PER_UNIT[time_unit]
            mine, theirs = survival_se_at(curves[group.key], t), survival_se_at(curves[reference or ""], t)
            if mine is None or theirs is None:
                continue  # beyond a group's follow-up: already warned
            gap = milestone_difference(mine, theirs, conf_level)
            milestones.append(
                MilestoneComparison(
                    day=day,
                    group_key=group.key,
                    reference_key=reference or "",
                    difference=gap[0],
                    lower=gap[1],
                    upper=gap[2],
                    p_value=_none(gap[3]),
                )
            )
    comparisons = []
    for group in groups[1:]:
        across = rule.withheld_across([group.key, reference or ""])
        if across:
            not_computable["rmst_comparisons"] = across
        elif reference in means and group.key in means:
            difference, ratio = restricted_mean_difference(means[group.key], means[reference], conf_level)
            comparisons.append(
                RestrictedMeanComparison(
                    group_key=group.key,
                    reference_key=reference,
                    difference=difference[0],
                    difference_lower=difference[1],
                    difference_upper=difference[2],
                    difference_p=_none(difference[3]),
                    ratio=_none(ratio[0]),
                    ratio_lower=_none(ratio[1]),
                    ratio_upper=_none(ratio[2]),
                    ratio_p=_none(ratio[3]),
                )
            )
    return Survival(
        study_id=study_id,
        endpoint=endpoint,
        time_unit=time_unit,
        conf_type=conf_type,
        conf_level=conf_level,
        groups=results,
        log_rank=LogRankTest(
            chi_square=test.chi_square,
            df=test.df,
            p_value=test.p_value,
            observed=test.observed,
            expected=test.expected,
            rho=rho,
            stratified_by=strata,
        )
        if test
        else None,
        rmst_comparisons=comparisons,
        milestone_comparisons=milestones,
        landmark_day=landmark_day,
        excluded=sum(by_reason.values()),
        excluded_by_reason=dict(by_reason),
        undated_events=rule.handling(),
        not_computable=not_computable,
        method={
            **DEFINITIONS,
            "undated_events": rule.method(),
            "contrasts": "every contrast is a later group against the first group (the reference): RMST difference and ratio",
            "estimator": "Kaplan–Meier product-limit; Greenwood variance; std_err is the standard error of log S(t)",
            "confidence_interval": f"pointwise {conf_type} interval at {conf_level:.0%}, as R survfit(conf.type='{conf_type}'); null where R gives NA",
            "median": "smallest time with S(t) <= 0.5, midpoint of a flat exactly at 0.5 (R quantile.survfit); its interval is read from the pointwise band",
            "log_rank": f"G-rho test with weights S(t-)^{rho:g} (0: Mantel–Haenszel log-rank, 1: Peto–Peto), hypergeometric variance, as R survdiff(rho = {rho:g})"
            + (
                f", stratified by {strata} (observed, expected and variance summed over strata)"
                if strata
                else ""
            ),
            "follow_up": "median follow-up by reverse Kaplan–Meier (censoring as the event; Schemper & Smith 1996)",
            "rmst": "restricted mean survival time up to tau: area under the Kaplan–Meier curve with Greenwood-type variance, differences and ratios against the first group, as R survRM2 rmst2",
            "landmark_analysis": "with landmark_day: only patients followed beyond the landmark without an event, "
            + (
                "time counted from it"
                if landmark_time == "from_landmark"
                else "time counted from the origin with entry at the landmark (delayed entry: S(t) is conditional on being event-free at the landmark and is 1 up to it)"
            )
            if landmark_day is not None
            else "not requested",
            "groups": (group_by or GroupSpec()).method(),
            "landmarks": "S(t) of the step function at each landmark day; null beyond the last follow-up",
            "milestone_comparisons": "at each landmark day, a later group's S(t) minus the first group's, Greenwood standard errors combined, Wald interval and z test (Klein et al. 2007); none beyond either group's follow-up",
        },
        warnings=warnings,
    )
