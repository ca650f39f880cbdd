"""Response rates and adverse-event incidence per group."""

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.endpoints import Scope
from service.analytics.estimands.groups import (
    Groups,
    GroupSpec,
    group_patients,
    left_out_warnings,
    resolve,
    small_sample_warnings,
    without_landmark,
)
from service.analytics.estimands.undated import MAX_NAMED
from service.analytics.proportions.exact import (
    binomial_test,
    fisher_freeman_halton,
    fisher_odds_ratio,
    newcombe_difference,
)
from service.analytics.proportions.intervals import (
    CI_METHOD_NAMES,
    CiMethod,
    chi_square_independence,
    fisher_two_groups,
    proportion_ci,
)
from service.analytics.proportions.trend import cochran_armitage
from service.analytics.schemas import (
    AdverseEventIncidence,
    Comparison,
    Count,
    Group,
    IncidenceCell,
    IncidenceRow,
    Interval,
    ResponseRateGroup,
    ResponseRates,
    TargetRateTest,
    TrendTestResult,
)
from service.common.heavy import offload
from service.errors import RuleViolation

Denominator = Literal["all", "evaluable"]
CONTRAST_DIRECTION = "every two-group contrast is the second group against the first (the reference): odds ratios are odds(second) / odds(first), the risk difference is rate(second) − rate(first), as hazard ratios and RMST differences elsewhere"
MrdRequirement = Literal["any", "negative"]


def is_category_in(category: str | None, possible: list[str] | None, wanted: set[str]) -> bool:
    """A definite category in the set, or an uncertain one all of whose candidates are in it.
    An empty set puts no condition on the category."""
    if not wanted:
        return True
    if category is not None:
        return category in wanted
    return bool(possible) and set(possible or []) <= wanted


MRD_KNOWN = ("negative", "positive")


@dataclass
class Tally:
    evaluable: set[Any] = field(default_factory=set)
    responders: set[Any] = field(default_factory=set)
    undated: dict[Any, int] = field(
        default_factory=lambda: defaultdict(int)
    )  # patient -> assessments left out
    # patient -> reason -> assessments not evaluating the study treatment (see estimands)
    out_of_scope: dict[Any, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def tally_responses(
    rows: Sequence[Any],
    wanted: set[str],
    mrd: MrdRequirement,
    by_day: int | None,
    timepoint: str | None = None,
    scope: Scope = "study_treatment",
) -> Tally:
    """Who is evaluable and who responded, from the rows of `estimands.fetch_response_assessments`.

    Evaluable: at least one counted assessment in the window; with `mrd=negative`, at least one
    whose MRD status is known (negative or positive)."""
    tally = Tally()
    for row in rows:
        if timepoint is not None and row.timepoint_label != timepoint:
            continue
        if scope == "study_treatment" and row.scope_exclusion is not None:
            tally.out_of_scope[row.patient_id][row.scope_exclusion] += 1
            continue
        if by_day is not None and (row.study_day is None or row.study_day > by_day):
            if row.study_day is None:
                tally.undated[row.patient_id] += 1
            continue
        if mrd == "negative" and row.mrd_status not in MRD_KNOWN:
            continue
        tally.evaluable.add(row.patient_id)
        if is_category_in(row.category, row.possible_categories, wanted) and (
            mrd == "any" or row.mrd_status == "negative"
        ):
            tally.responders.add(row.patient_id)
    return tally


async def count_outcome(
    session: AsyncSession,
    study_id: UUID,
    patients: Sequence[Any],
    outcome: dict[str, Any],
    responses: Sequence[Any] | None = None,
) -> tuple[int, int]:
    """(events, N) among `patients` (raw ids) for a response-rate or adverse-event definition,
    with the same rules as the per-study endpoints. `responses` saves refetching assessments."""
    if outcome["type"] == "response_rate":
        rows = (
            responses
            if responses is not None
            else await estimands.fetch_response_assessments(session, study_id)
        )
        tally = tally_responses(
            rows,
            set(outcome["categories"]),
            outcome["mrd"],
            outcome.get("by_day"),
            outcome.get("timepoint"),
            outcome.get("treatment_scope", "study_treatment"),
        )
        base = [p for p in patients if outcome["denominator"] == "all" or p in tally.evaluable]
        return sum(1 for p in base if p in tally.responders), len(base)
    events = await queries.fetch_adverse_events(
        session, study_id, outcome.get("grading_system"), outcome["term"]
    )
    minimum = outcome.get("grade_min")  # terms are matched case-insensitively by the query
    affected = {r.patient_id for r in events if minimum is None or (r.grade or 0) >= minimum}
    return sum(1 for p in patients if p in affected), len(patients)


async def response_rates(
    session: AsyncSession,
    study_id: UUID,
    *,
    categories: list[str],
    mrd: MrdRequirement,
    by_day: int | None,
    denominator: Denominator,
    ci: CiMethod,
    timepoint: str | None = None,
    scope: Scope = "study_treatment",
    conf_level: float,
    group_by: GroupSpec,
    target_rate: float | None = None,
    trend_order: Sequence[str] = (),
    trend_scores: Sequence[float] = (),
) -> ResponseRates:
    await queries.require_study(session, study_id)
    groups = await resolve(session, study_id, without_landmark(group_by, "a response rate"))
    patients = await queries.fetch_patients(session, study_id, group_by.column())
    assessments = await estimands.fetch_response_assessments(session, study_id)
    # Everything from the rows on (a tally of 300,000 assessments and sets of 100,000 patients at
    # the largest scale, then the exact tests) in a worker process: on the event loop, the
    # grouping and the tally's sets coming back held every other request for 80-110 ms.
    return await offload(
        _response_rates,
        study_id,
        patients,
        groups,
        assessments,
        categories=categories,
        mrd=mrd,
        by_day=by_day,
        denominator=denominator,
        ci=ci,
        timepoint=timepoint,
        scope=scope,
        conf_level=conf_level,
        group_by=group_by,
        target_rate=target_rate,
        trend_order=trend_order,
        trend_scores=trend_scores,
    )


def _response_rates(
    study_id: UUID,
    patients: Sequence[Any],
    groups: Groups,
    assessments: Sequence[Any],
    *,
    categories: list[str],
    mrd: MrdRequirement,
    by_day: int | None,
    denominator: Denominator,
    ci: CiMethod,
    timepoint: str | None,
    scope: Scope,
    conf_level: float,
    group_by: GroupSpec,
    target_rate: float | None,
    trend_order: Sequence[str],
    trend_scores: Sequence[float],
) -> ResponseRates:
    grouping = group_patients(patients, groups)
    tally = tally_responses(assessments, set(categories), mrd, by_day, timepoint, scope)
    evaluable, responders = tally.evaluable, tally.responders
    undated: dict[str, int] = defaultdict(int)
    for patient_id, n in tally.undated.items():
        if (key := grouping.group_of[patient_id]) is not None:
            undated[key] += n
    out_of_scope: dict[str, Counter[str]] = defaultdict(Counter)
    for patient_id, reasons in tally.out_of_scope.items():
        if (key := grouping.group_of[patient_id]) is not None:
            out_of_scope[key].update(reasons)
    without_arm = grouping.without_group()

    results = []
    for group in grouping.groups:
        members = grouping.members(group.key)
        group_evaluable = [p for p in members if p in evaluable]
        base = members if denominator == "all" else group_evaluable
        x = sum(1 for p in base if p in responders)
        interval = proportion_ci(x, len(base), ci, conf_level)
        results.append(
            ResponseRateGroup(
                group=group,
                patients=len(members),
                evaluable=len(group_evaluable),
                denominator=len(base),
                responders=x,
                rate=(x / len(base)) if base else None,
                ci=Interval(lower=interval[0], upper=interval[1]) if interval else None,
                assessments_without_day=undated[group.key],
                assessments_excluded=dict(out_of_scope[group.key]),
                target_test=TargetRateTest(
                    target_rate=target_rate,
                    p_value_greater=binomial_test(x, len(base), target_rate, "greater"),
                    p_value_two_sided=binomial_test(x, len(base), target_rate),
                )
                if target_rate is not None and base
                else None,
            )
        )
    warnings = small_sample_warnings(grouping.groups, grouping.sizes())
    left_out = Counter(grouping.reason_of.values())
    warnings += left_out_warnings(dict(left_out), without_arm[:MAX_NAMED])
    if not responders & {pid for pid, key in grouping.group_of.items() if key is not None}:
        warnings.append("no patient meets the response definition")
    for r in results:
        if r.assessments_without_day:
            warnings.append(
                f"group '{r.group.label}': {r.assessments_without_day} assessment(s) without a study day cannot be placed before by_day and were left out"
            )
        for reason, n in sorted(r.assessments_excluded.items()):
            warnings.append(
                f"group '{r.group.label}': {n} {reason} not counted (treatment_scope=study_treatment)"
            )
    counts = [(r.group, r.responders, r.denominator) for r in results if r.denominator > 0]
    comparison, trend, added = _tests(counts, results, trend_order, trend_scores, conf_level)
    warnings += added
    return ResponseRates(
        study_id=study_id,
        categories=categories,
        mrd=mrd,
        by_day=by_day,
        timepoint=timepoint,
        treatment_scope=scope,
        denominator=denominator,
        conf_level=conf_level,
        groups=results,
        comparison=comparison,
        trend=trend,
        excluded_by_reason=dict(left_out),
        method={
            "groups": group_by.method(),
            "trend": "with trend_order: Cochran–Armitage chi-square (1 df) for a linear trend in the rate across the groups in that order, scored 1..k or by trend_scores, on each group's denominator, as R prop.trend.test",
            "responder": (
                "at least one response assessment in the window whose category is in `categories` "
                "(an uncertain category counts when every candidate is in the set)"
                + (" and whose MRD status is negative at that same assessment" if mrd == "negative" else "")
            ),
            "window": (
                f"assessments up to study day {by_day}"
                if by_day is not None
                else "all assessments, dated or not"
            )
            + (f", labelled '{timepoint}'" if timepoint else ""),
            "lines": (
                "assessments of the study treatment only: those naming an on-study treatment, or, naming none, "
                "dated from study day 1 up to the start of the first dated off-study treatment"
                if scope == "study_treatment"
                else "assessments of any treatment line, before study day 1 and after salvage included"
            ),
            "categories": ", ".join(categories) if categories else "any category, or none",
            "denominator": "all patients of the group"
            if denominator == "all"
            else (
                "patients with at least one counted assessment in the window whose MRD status is known (negative or positive)"
                if mrd == "negative"
                else "patients with at least one counted response assessment in the window"
            ),
            "confidence_interval": CI_METHOD_NAMES[ci] + f", {conf_level:.0%} level",
            "comparison": "two groups: Fisher's exact test (two-sided), the sample odds ratio, the conditional maximum-likelihood odds ratio with its exact interval (R fisher.test) and the risk difference with Newcombe's hybrid score interval; three or more: Pearson chi-square with the Fisher–Freeman–Halton exact p",
            "contrasts": CONTRAST_DIRECTION,
            "target_test": f"exact binomial test of each group's rate against {target_rate:g} (R binom.test): one-sided (rate > target) and two-sided"
            if target_rate is not None
            else "not requested (target_rate)",
        },
        warnings=warnings,
    )


def _tests(
    counts: list[tuple[Group, int, int]],
    results: Sequence[ResponseRateGroup],
    trend_order: Sequence[str],
    trend_scores: Sequence[float],
    conf_level: float,
) -> tuple["Comparison | None", "TrendTestResult | None", list[str]]:
    """The comparison between groups and the trend test, with the warnings they give."""
    warnings: list[str] = []
    comparison = _compare(counts, warnings, conf_level)
    trend = _trend(results, trend_order, trend_scores, warnings) if trend_order else None
    return comparison, trend, warnings


def _compare(
    counts: list[tuple[Group, int, int]], warnings: list[str], conf_level: float
) -> Comparison | None:
    if len(counts) == 2:
        (reference, x1, n1), (group, x2, n2) = counts
        # Every contrast is the second group against the first (the reference), as hazard
        # ratios and RMST differences are: odds ratios, risk difference alike.
        p, odds = fisher_two_groups(x2, n2, x1, n1)
        if odds is None:
            warnings.append("sample odds ratio undefined (a zero cell)")
        exact = fisher_odds_ratio([[x2, n2 - x2], [x1, n1 - x1]], conf_level)
        if math.isinf(exact.estimate) or math.isinf(exact.upper):
            warnings.append(
                "the conditional odds ratio or its upper bound is infinite (a zero cell): reported as null"
            )
        difference = newcombe_difference(x2, n2, x1, n1, conf_level)
        return Comparison(
            test="Fisher's exact (two-sided)",
            contrast=f"'{group.label}' vs '{reference.label}' (reference)",
            group_key=group.key,
            reference_key=reference.key,
            statistic=None,
            df=None,
            p_value=p,
            odds_ratio=odds,
            risk_difference=difference[0] if difference else None,
            risk_difference_ci=Interval(lower=difference[1], upper=difference[2]) if difference else None,
            conditional_odds_ratio=_finite(exact.estimate),
            conditional_odds_ratio_ci=Interval(lower=_finite(exact.lower), upper=_finite(exact.upper)),
            exact_p_value=None,
        )
    if len(counts) > 2:
        pairs = [(x, n) for _, x, n in counts]
        table = [[x, n - x] for x, n in pairs]
        exact_p = fisher_freeman_halton(table)
        if exact_p is None:
            warnings.append("Fisher–Freeman–Halton exact p not computed: too many tables to enumerate")
        result = chi_square_independence(pairs)
        if result is None:
            warnings.append("chi-square test undefined: no responders or no non-responders in any group")
            return _k_groups(None, None, None, exact_p)
        statistic, df, p = result
        if _smallest_expected(pairs) < 5:
            warnings.append(
                "chi-square p is unreliable: an expected cell count is below 5; read the Fisher–Freeman–Halton exact p"
            )
        return _k_groups(statistic, df, p, exact_p)
    return None


def _k_groups(statistic: float | None, df: int | None, p: float | None, exact_p: float | None) -> Comparison:
    return Comparison(
        test="Pearson chi-square",
        contrast=None,
        group_key=None,
        reference_key=None,
        statistic=statistic,
        df=df,
        p_value=p,
        odds_ratio=None,
        risk_difference=None,
        risk_difference_ci=None,
        conditional_odds_ratio=None,
        conditional_odds_ratio_ci=None,
        exact_p_value=exact_p,
    )


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def _smallest_expected(counts: list[tuple[int, int]]) -> float:
    """Smallest expected cell of the k×2 (responders, non-responders) table under independence."""
    total = sum(n for _, n in counts)
    responders = sum(x for x, _ in counts)
    return min(n * share / total for _, n in counts for share in (responders, total - responders))


def _exact_p(counts: list[tuple[int, int]], too_large: list[str]) -> float | None:
    """Fisher (two groups) or Fisher–Freeman–Halton (more) on (patients with, N) per group."""
    if len(counts) < 2:
        return None
    if len(counts) == 2:
        return fisher_two_groups(*counts[0], *counts[1])[0]
    p = fisher_freeman_halton([[x, n - x] for x, n in counts])
    if p is None:
        too_large.append("table")
    return p


def _count(n: int, total: int) -> Count:
    return Count(n=n, N=total, percent=(100.0 * n / total) if total else None)


def _incidence_rows(
    worst: dict[str, dict[str, dict[int, int]]],
    spelling: dict[str, str],
    group_keys: list[str],
    sizes: dict[str, int],
    severe_grade: int,
) -> tuple[list[IncidenceRow], list[str]]:
    """The incidence table's rows from worst[term key][group key][worst grade] = patients, with
    the exact tests (in a worker process: service.common.heavy)."""
    rows: list[IncidenceRow] = []
    too_large: list[str] = []
    for key, by_group in worst.items():
        cells = []
        for group_key in group_keys:
            total = sizes[group_key]
            grades = Counter(by_group.get(group_key, {}))
            distribution = {str(k): _count(grades[k], total) for k in range(1, 6)}
            distribution["unknown"] = _count(grades[0], total)
            cells.append(
                IncidenceCell(
                    group_key=group_key,
                    any_grade=_count(sum(grades.values()), total),
                    severe=_count(sum(n for g, n in grades.items() if g >= severe_grade), total),
                    worst_grade=distribution,
                )
            )
        populated = [c for c in cells if c.any_grade.N > 0]
        rows.append(
            IncidenceRow(
                term=spelling[key],
                groups=cells,
                fisher_p=_exact_p([(c.any_grade.n, c.any_grade.N) for c in populated], too_large),
                fisher_p_severe=_exact_p([(c.severe.n, c.severe.N) for c in populated], too_large),
            )
        )
    rows.sort(key=lambda r: (-sum(c.any_grade.n for c in r.groups), r.term))
    return rows, too_large


async def adverse_event_incidence(
    session: AsyncSession,
    study_id: UUID,
    *,
    severe_grade: int,
    grading_system: str | None,
    term: str | None,
    group_by: GroupSpec,
) -> AdverseEventIncidence:
    await queries.require_study(session, study_id)
    # Counted in the database: one row per (term, group, worst grade), never one per event.
    grouped = await resolve(session, study_id, without_landmark(group_by, "adverse-event incidence"))
    groups = grouped.groups
    column = group_by.column()
    sizes = {g.key: 0 for g in groups}
    without_group: Counter[str] = Counter()
    left_out_values = []
    for row in await queries.fetch_group_sizes(session, study_id, column):
        key = grouped.key(row.group_value)
        if key is None:
            without_group[grouped.reason(row.group_value)] += row.n
            left_out_values.append(row.group_value)
        else:
            sizes[key] += row.n
    # worst[term key][group key][worst grade] = patients
    worst: dict[str, dict[str, Counter[int]]] = defaultdict(lambda: defaultdict(Counter))
    spelling: dict[str, str] = {}
    for row in await queries.fetch_incidence_counts(session, study_id, grading_system, term, column):
        spelling[row.key] = min(spelling.get(row.key, row.term), row.term)
        key = grouped.key(row.group_value)
        if key is not None:
            worst[row.key][key][row.worst] += row.n

    # The exact tests (two per term, on groups of up to tens of thousands of patients) run in a
    # worker process, not on the server's event loop: done there, they held every other request
    # (at 100,000 patients a patient read's p99 while incidence looped was 27-32x its idle p99).
    plain = {key: {g: dict(grades) for g, grades in by_group.items()} for key, by_group in worst.items()}
    rows, too_large = await offload(
        _incidence_rows, plain, spelling, [g.key for g in groups], sizes, severe_grade
    )
    warnings = small_sample_warnings(groups, sizes)
    if without_group:
        in_none = column.is_(None) | column.in_([v for v in left_out_values if v is not None])
        warnings += left_out_warnings(
            dict(without_group), await queries.fetch_subjects_in(session, study_id, in_none)
        )
    if not rows:
        warnings.append("no adverse events match")
    if too_large:
        warnings.append(f"exact p not computed for {len(too_large)} term(s): too many tables to enumerate")
    if any(c.worst_grade["unknown"].n for r in rows for c in r.groups):
        warnings.append(
            "some patients' events carry no single grade (e.g. 'I/II'): counted in any grade and as 'unknown' worst grade, never as severe"
        )
    return AdverseEventIncidence(
        study_id=study_id,
        severe_grade=severe_grade,
        grading_system=grading_system,
        groups=groups,
        patients=sizes,
        rows=rows,
        excluded_by_reason=dict(without_group),
        method={
            "groups": group_by.method(),
            "counting": "a patient counts once per term (terms compared case-insensitively), at their worst grade; N is the number of patients in the group (all enrolled patients, not only the treated)",
            "severe": f"worst grade >= {severe_grade}",
            "ungraded": "events with only a grade range or no grade count toward any grade and the 'unknown' worst grade",
            "comparison": f"Fisher's exact test, two-sided, on any-grade counts (fisher_p) and on worst grade >= {severe_grade} (fisher_p_severe); with three or more groups the Fisher–Freeman–Halton test (R fisher.test on the r x 2 table)",
            "order": "by any-grade frequency over all groups, then term",
        },
        warnings=warnings,
    )


def _trend(
    results: Sequence[ResponseRateGroup], order: Sequence[str], scores: Sequence[float], warnings: list[str]
) -> TrendTestResult:
    """The trend test over the groups named in `order` (keys or values), scored as asked."""
    by_name = {name: r for r in results for name in (r.group.key, r.group.value) if name is not None}
    unknown = [name for name in order if name not in by_name]
    if unknown:
        raise RuleViolation(
            f"trend_order names {', '.join(repr(u) for u in unknown)}, not a group of this grouping "
            f"(groups: {', '.join(r.group.value or r.group.key for r in results)})",
            field="trend_order",
        )
    chosen = [by_name[name] for name in order]
    if len({r.group.key for r in chosen}) != len(chosen) or len(chosen) < 2:
        raise RuleViolation("trend_order must name two or more different groups", field="trend_order")
    if scores and len(scores) != len(chosen):
        raise RuleViolation("trend_scores must give one score per group of trend_order", field="trend_scores")
    weights = list(scores) if scores else [float(i + 1) for i in range(len(chosen))]
    test = cochran_armitage([r.responders for r in chosen], [r.denominator for r in chosen], weights)
    reason = None
    if test is None:
        reason = "no trend can be tested: no patients, every patient responded or none did, or a single score"
        warnings.append(f"trend test not computable: {reason}")
    return TrendTestResult(
        order=[r.group.key for r in chosen],
        scores=weights,
        chi_square=test.chi_square if test else None,
        p_value=test.p_value if test else None,
        not_computable=reason,
    )
