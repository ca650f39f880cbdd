"""Cumulative incidence of relapse and of non-relapse mortality (competing risks), per group,
with Gray's test: the RFS analysis set of service.analytics.estimands.endpoints, each RFS event split by
its kind (relapse or progression = relapse; death first = non-relapse mortality)."""

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import msgspec
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.competing_risks.estimators import cumulative_incidence, gray_test, log_log_interval
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.endpoints import Stratum
from service.analytics.estimands.groups import (
    Grouping,
    GroupSpec,
    group_patients,
    resolve,
    small_sample_warnings,
    without_landmark,
)
from service.analytics.estimands.time_scale import DAYS_PER_UNIT, TimeUnit, elapsed, ticks
from service.analytics.estimands.undated import UndatedEvents, UndatedRule, rule_for_rows
from service.analytics.schemas import (
    CauseIncidence,
    CumulativeIncidence,
    GrayTestResult,
    IncidenceAtRisk,
    IncidenceCensoring,
    IncidenceGroup,
    IncidenceLandmark,
    IncidencePoint,
)
from service.common.heavy import offload

CAUSES = {1: "relapse", 2: "non_relapse_mortality"}
RELAPSE_KINDS = ("relapse", "progression")

METHOD = {
    "analysis_set": "the RFS analysis set: " + estimands.ENDPOINTS["RFS"].description,
    "causes": "relapse = a first event that is a relapse or progression; non_relapse_mortality = death before any relapse (a relapse and a death on the same day count as relapse); no event = censored at the last recorded study day",
    "estimator": "Aalen–Johansen cumulative incidence with Gray's variance, as R cmprsk::cuminc (and survfit multi-state)",
    "confidence_interval": "pointwise log(-log) interval F^exp(±z·se/(F·log F)); null at 0 and 1",
    "gray_test": "Gray's (1988) test of equal cumulative incidence across groups, rho = 0, as cuminc's Tests; with strata, the statistics summed over strata as cuminc(strata = )",
    "landmarks": "the estimate of the step function at each landmark day; null beyond the last follow-up",
}


async def relapse_incidence(
    session: AsyncSession,
    study_id: UUID,
    *,
    landmark_days: list[float],
    conf_level: float,
    time_unit: TimeUnit,
    group_by: GroupSpec,
    undated_events: UndatedEvents = "withhold",
    strata: Stratum | None = None,
) -> CumulativeIncidence:
    await queries.require_study(session, study_id)
    groups = await resolve(session, study_id, without_landmark(group_by, "cumulative incidence"))
    rows = await estimands.fetch_analysis_rows(
        session, study_id, "RFS", (strata,) if strata else (), group_value=group_by.column()
    )
    grouping = group_patients(rows, groups)
    rule = await rule_for_rows(
        session, study_id, "RFS", undated_events, rows, lambda r: grouping.group_of[r.id]
    )
    return await offload(
        incidence_result,
        study_id,
        rows,
        grouping,
        rule,
        landmark_days,
        conf_level,
        time_unit,
        group_by.method(),
        strata,
    )


def cause_of(row: Any) -> int:
    if not row.event:
        return 0
    return 1 if row.event_type in RELAPSE_KINDS else 2


def incidence_result(
    study_id: UUID,
    rows: Sequence[Any],
    grouping: Grouping,
    rule: UndatedRule,
    landmark_days: list[float],
    conf_level: float,
    time_unit: TimeUnit,
    groups_method: str = "the whole study as one group",
    strata: Stratum | None = None,
    causes: dict[int, str] = CAUSES,
    cause: Callable[[Any], int] = cause_of,
    method: dict[str, str] = METHOD,
) -> CumulativeIncidence:
    """The curves, landmarks and Gray's tests of each cause (`causes`: code → name, `cause`:
    the code of a row, 0 when censored) per group."""
    warnings = small_sample_warnings(grouping.groups, grouping.sizes())
    excluded_in: dict[str, Counter[str]] = {g.key: Counter() for g in grouping.groups}
    kept: dict[str, list[Any]] = {g.key: [] for g in grouping.groups}
    without_group: Counter[str] = Counter()
    for row in rows:
        key = grouping.group_of[row.id]
        if key is None:
            without_group[grouping.reason_of[row.id]] += 1
        elif row.reason is None:
            kept[key].append(row)
        else:
            excluded_in[key][row.reason] += 1
    by_reason: Counter[str] = sum(excluded_in.values(), Counter()) + without_group
    warnings += [
        f"{n} patient(s) not in the analysis set: {reason}" for reason, n in sorted(by_reason.items())
    ]
    warnings += rule.warnings()
    not_computable: dict[str, str] = {}
    samples: list[tuple[np.ndarray, np.ndarray]] = []
    layers: list[list[Any]] = []
    groups: list[IncidenceGroup] = []
    for group in grouping.groups:
        members = kept[group.key]
        layers.append([getattr(r, strata) if strata else 0 for r in members])
        times = elapsed(
            np.array([r.origin_day for r in members], float),
            np.array([r.end_day for r in members], float),
            time_unit,
        )
        codes_of = np.array([cause(r) for r in members], int)
        samples.append((times, codes_of))
        withheld = rule.withheld(group.key)
        if withheld:
            if rule.by_group.get(group.key) and rule.rule == "withhold":  # aggregate-only is said once
                warnings.append(f"group '{group.label}': estimates not computable: {withheld}")
            groups.append(
                IncidenceGroup(
                    group=group,
                    n=len(members),
                    excluded=dict(excluded_in[group.key]),
                    not_computable=withheld,
                    causes=[
                        CauseIncidence(
                            cause=name,
                            events=None,
                            curve=[],
                            landmarks=[
                                IncidenceLandmark(
                                    day=day,
                                    time=day / DAYS_PER_UNIT[time_unit],
                                    estimate=None,
                                    lower=None,
                                    upper=None,
                                )
                                for day in landmark_days
                            ],
                        )
                        for name in causes.values()
                    ],
                )
            )
            continue
        curves = []
        for code, name in causes.items():
            estimate = cumulative_incidence(times, codes_of, code)
            points = []
            for t, f, v in zip(estimate.time, estimate.estimate, estimate.variance, strict=True):
                lower, upper = log_log_interval(float(f), float(v), conf_level)
                points.append(
                    IncidencePoint(
                        time=float(t), estimate=float(f), variance=float(v), lower=lower, upper=upper
                    )
                )
            landmarks = []
            for day in landmark_days:
                t = day / DAYS_PER_UNIT[time_unit]
                value = estimate.at(t)
                if value is None and len(times):
                    warnings.append(
                        f"group '{group.label}': landmark day {day:g} is beyond the last follow-up"
                    )
                bounds = log_log_interval(*value, conf_level) if value else (None, None)
                landmarks.append(
                    IncidenceLandmark(
                        day=day,
                        time=t,
                        estimate=value[0] if value else None,
                        lower=bounds[0],
                        upper=bounds[1],
                    )
                )
            curves.append(
                CauseIncidence(cause=name, events=estimate.events, curve=points, landmarks=landmarks)
            )
        groups.append(
            IncidenceGroup(
                group=group,
                n=len(members),
                excluded=dict(excluded_in[group.key]),
                not_computable=None,
                causes=curves,
            )
        )
    # the risk table under the plot: the same ticks for every group
    grid = ticks(max((float(t.max()) for t, _ in samples if len(t)), default=0.0))
    groups = [
        group
        if group.not_computable
        else msgspec.structs.replace(
            group,
            at_risk=[
                IncidenceAtRisk(
                    time=t,
                    n_risk=int(np.count_nonzero(times >= t)),
                    events={
                        name: int(np.count_nonzero((codes == code) & (times <= t)))
                        for code, name in causes.items()
                    },
                    censored=int(np.count_nonzero((codes == 0) & (times <= t))),
                )
                for t in grid
            ],
            censorings=[
                IncidenceCensoring(time=float(t), n_risk=int(np.count_nonzero(times >= t)), n_censor=int(n))
                for t, n in zip(*np.unique(times[codes == 0], return_counts=True), strict=True)
            ],
        )
        for group, (times, codes) in zip(groups, samples, strict=True)
    ]
    tests = []
    present = [(t, c) for t, c in samples if len(t)]
    across = rule.withheld_across(g.key for g in grouping.groups) if len(grouping.groups) >= 2 else None
    if across:
        not_computable["gray_tests"] = across
    elif len(present) >= 2:
        time = np.concatenate([t for t, _ in present])
        cause_codes = np.concatenate([c for _, c in present])
        group_code = np.concatenate([np.full(len(t), i) for i, (t, _) in enumerate(present)])
        layer = [v for (t, _), values in zip(samples, layers, strict=True) if len(t) for v in values]
        codes = None
        if strata:
            # patients without the stratifying attribute cannot be placed in a stratum
            known = np.array([v is not None for v in layer], bool)
            if not known.all():
                warnings.append(
                    f"{int((~known).sum())} patient(s) without {strata} left out of the stratified Gray's test"
                )
            values = sorted({str(v) for v in layer if v is not None})
            codes = np.array([values.index(str(v)) if v is not None else -1 for v in layer], int)[known]
            time, cause_codes, group_code = time[known], cause_codes[known], group_code[known]
            # groups are recoded 0..k-1 over those still present
            present_codes = sorted(set(group_code.tolist()))
            group_code = np.array([present_codes.index(g) for g in group_code], int)
        for number, name in causes.items():
            test = (
                gray_test(time, cause_codes, group_code, number, strata=codes)
                if (cause_codes == number).any() and len(set(group_code.tolist())) >= 2
                else None
            )
            if test is None:
                reason = f"no {name} events, or a singular variance"
                not_computable[f"gray_test:{name}"] = reason
                warnings.append(f"Gray's test for {name} not computable: {reason}")
                continue
            tests.append(
                GrayTestResult(
                    cause=name,
                    statistic=test.statistic,
                    df=test.df,
                    p_value=test.p_value,
                    stratified_by=strata,
                )
            )
    elif len(grouping.groups) >= 2:
        not_computable["gray_tests"] = "fewer than two groups with patients"
        warnings.append("Gray's test not computable: fewer than two groups with patients")
    return CumulativeIncidence(
        study_id=study_id,
        time_unit=time_unit,
        conf_level=conf_level,
        groups=groups,
        gray_tests=tests,
        excluded=sum(by_reason.values()),
        excluded_by_reason=dict(by_reason),
        undated_events=rule.handling(),
        not_computable=not_computable,
        method={**method, "undated_events": rule.method(), "groups": groups_method},
        warnings=warnings,
    )
