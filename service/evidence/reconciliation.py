"""Reconciliation: checks every reported result of a study, internally (percentage, CI, p-value
from the printed counts) and against the patient-level data where a definition says what the
figure measures. Verdicts: consistent, inconsistent (with the difference), not_computable."""

import math
import statistics
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.analytics import queries
from service.analytics.competing_risks.analysis import relapse_incidence
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.groups import GroupSpec
from service.analytics.lazy_scipy import stats
from service.analytics.proportions.analysis import count_outcome
from service.analytics.proportions.intervals import CiMethod, fisher_two_groups, proportion_ci
from service.analytics.survival.analysis import survival
from service.db.models import Patient, ReportedResult
from service.evidence.precision import decimals, fmt, same_at_precision
from service.evidence.schemas import (
    Check,
    CheckName,
    Reconciliation,
    ReconciliationSummary,
    ResultReconciliation,
    Verdict,
)

CI_METHODS: tuple[CiMethod, ...] = (
    "wilson",
    "agresti-coull",
    "clopper-pearson",
    "jeffreys",
    "wilson-cc",
    "mid-p",
)


def _wald(x: int, n: int, level: float) -> tuple[float, float]:
    z = float(stats.norm.isf((1 - level) / 2))
    p = x / n
    half = z * (p * (1 - p) / n) ** 0.5
    return max(0.0, p - half), min(1.0, p + half)


def check_percentage(result: Any, at_risk: int | None = None) -> Check | None:
    """The printed percentage against numerator/denominator. A censoring-aware estimate (a
    cumulative incidence or a survival landmark) is not a crude proportion of the column's N:
    "2 (50%)" of a 6-patient table can be 2 of the 4 patients at risk (`at_risk`: those who
    reached CR, for a relapse incidence), and is checked against that before it is flagged; what
    matches neither is left to the patient-level estimate."""
    if result.numerator is None or not result.denominator or result.value is None or result.unit != "%":
        return None
    computed = 100 * result.numerator / result.denominator
    places = decimals(result.value)
    ok = same_at_precision(computed, result.value)
    estimate = (result.definition or {}).get("type") in ("cumulative_incidence", "survival")
    if not ok and estimate:
        if at_risk and same_at_precision(100 * result.numerator / at_risk, result.value):
            return _judged(
                "percentage",
                True,
                printed=f"{fmt(result.value)}%",
                computed=f"{100 * result.numerator / at_risk:.{places}f}% ({result.numerator}/{at_risk} at risk)",
                detail=f"the printed percentage is {result.numerator} of the {at_risk} patients at risk (those who reached CR/CRi/CRh), not of the column's N = {result.denominator}",
            )
        return Check(
            check="percentage",
            verdict="not_computable",
            printed=f"{fmt(result.value)}%",
            computed=f"{computed:.{places}f}% ({result.numerator}/{result.denominator})",
            detail="a censoring-aware estimate (cumulative incidence or survival) is not numerator/denominator: see the patient-level check",
        )
    return _judged(
        "percentage",
        ok,
        printed=f"{fmt(result.value)}%",
        computed=f"{computed:.{places}f}% ({result.numerator}/{result.denominator})",
        detail="printed percentage equals numerator/denominator"
        if ok
        else f"{result.numerator}/{result.denominator} is {computed:.{places + 1}f}%, not {fmt(result.value)}%",
    )


# Plausible values of a patient attribute in the units a table may print it in: a value outside
# them shows the unit is wrong (e.g. "Hb 92 g/dL" is impossible; 92 g/L is ordinary).
PLAUSIBLE_UNITS = {
    "hemoglobin_g_per_l": {"g/L": (20.0, 250.0), "g/dL": (2.0, 25.0)},
}


def check_unit(result: Any) -> Check | None:
    """A printed unit that the printed values cannot have for the attribute defined."""
    definition = result.definition or {}
    units = (
        PLAUSIBLE_UNITS.get(definition.get("attribute", ""))
        if definition.get("type") == "patient_attribute"
        else None
    )
    if not units or not result.unit or result.value is None:
        return None
    unit = next((u for u in units if result.unit.split(" ")[0] == u), None)
    if unit is None:
        return None
    values = [v for v in (result.value, result.range_lower, result.range_upper) if v is not None]
    low, high = units[unit]
    if all(low <= v <= high for v in values):
        return None
    fits = [u for u, (lo, hi) in units.items() if all(lo <= v <= hi for v in values)]
    return _judged(
        "unit",
        False,
        printed=f"{fmt(result.value)} {result.unit}",
        computed=None,
        detail=f"{', '.join(f'{v:g}' for v in values)} cannot be {unit}"
        + (f": the values fit {' or '.join(fits)}" if fits else ""),
    )


async def _reached_remission(session: AsyncSession, study_id: UUID) -> int:
    """Patients at risk of relapse: those in the RFS analysis set (reached CR/CRi/CRh on the study
    treatment), dated or not."""
    rows = await estimands.fetch_analysis_rows(session, study_id, "RFS")
    return sum(1 for r in rows if r.reason != estimands.NEVER_IN_REMISSION)


def check_interval(result: Any) -> Check | None:
    if (
        result.ci_lower is None
        or result.ci_upper is None
        or result.numerator is None
        or not result.denominator
    ):
        return None
    level = result.ci_level or 0.95
    scale = 100.0 if result.unit == "%" else 1.0
    matches, shown, lower_matches, upper_matches = [], [], [], []
    candidates: list[tuple[str, tuple[float, float] | None]] = [
        (method, proportion_ci(result.numerator, result.denominator, method, level)) for method in CI_METHODS
    ] + [("wald", _wald(result.numerator, result.denominator, level))]
    for method, bounds in candidates:
        assert bounds is not None  # the denominator was checked above
        low, high = bounds[0] * scale, bounds[1] * scale
        shown.append(f"{method} {low:.{decimals(result.ci_lower)}f}–{high:.{decimals(result.ci_upper)}f}")
        low_ok, high_ok = same_at_precision(low, result.ci_lower), same_at_precision(high, result.ci_upper)
        if low_ok and high_ok:
            matches.append(method)
        elif low_ok:
            lower_matches.append(method)
        elif high_ok:
            upper_matches.append(method)
    printed = f"{fmt(result.ci_lower)}–{fmt(result.ci_upper)} ({level:.0%})"
    named = f"; the publication names {result.ci_method}" if result.ci_method else ""
    detail = (
        f"matches {', '.join(matches)}"
        if matches
        else f"matches no standard method for {result.numerator}/{result.denominator}"
        + (f"; the lower bound matches {', '.join(lower_matches)}" if lower_matches else "")
        + (f"; the upper bound matches {', '.join(upper_matches)}" if upper_matches else "")
    )
    return _judged(
        "confidence_interval",
        bool(matches),
        printed=printed,
        computed=", ".join(shown),
        detail=detail + named,
    )


def check_p_value(result: Any) -> Check | None:
    definition = result.definition or {}
    if (
        result.p_value is None
        or definition.get("type") != "comparison"
        or not definition.get("printed_counts")
    ):
        return None
    (x1, n1), (x2, n2) = definition["printed_counts"]
    p, _ = fisher_two_groups(x1, n1, x2, n2)
    ok = same_at_precision(p, result.p_value)
    return _judged(
        "p_value",
        ok,
        printed=fmt(result.p_value),
        computed=f"{p:.{decimals(result.p_value)}f} (Fisher's exact, two-sided, {x1}/{n1} vs {x2}/{n2})",
        detail="printed p equals Fisher's exact test on the printed counts"
        if ok
        else f"Fisher's exact test on the printed counts gives {p:.4f}",
    )


def check_ratio(result: Any) -> Check | None:
    """A printed hazard ratio against its own interval (Altman & Bland 2011): a Wald interval is
    symmetric on the log scale, so the ratio is the geometric mean of its bounds, and the
    p-value is the one its log and standard error imply — each up to the rounding of what is
    printed (every corner of the rounding box is tried, so rounding alone is never inconsistent)."""
    definition = result.definition or {}
    if definition.get("type") != "hazard_ratio" or result.ci_lower is None or result.ci_upper is None:
        return None
    level = result.ci_level or 0.95
    z = float(stats.norm.isf((1 - level) / 2))

    def box(printed: float) -> tuple[float, float]:
        half = 0.5 * 10.0 ** -decimals(printed)
        return max(printed - half, 1e-12), printed + half

    corners = [
        (value, low, high)
        for value in box(result.value)
        for low in box(result.ci_lower)
        for high in box(result.ci_upper)
        if low < high
    ]
    means = [math.sqrt(low * high) for _, low, high in corners]
    ok = min(means) <= box(result.value)[1] and max(means) >= box(result.value)[0]
    printed = f"{fmt(result.value)} ({fmt(result.ci_lower)}–{fmt(result.ci_upper)}, {level:.0%})"
    centre = math.sqrt(result.ci_lower * result.ci_upper)
    detail = (
        "the ratio is the geometric mean of its interval bounds, as a Wald interval on the log scale"
        if ok
        else f"the geometric mean of the bounds is {centre:.3f}: the interval is not centred on the ratio on the log scale (a typo, or not a Wald interval)"
    )
    if ok and result.p_value is not None:
        implied = [
            2 * float(stats.norm.sf(abs(math.log(value)) / ((math.log(high) - math.log(low)) / (2 * z))))
            for value, low, high in corners
        ]
        low_p, high_p = box(result.p_value)
        ok = min(implied) <= high_p and max(implied) >= max(low_p, 0.0)
        centre_p = 2 * float(
            stats.norm.sf(
                abs(math.log(result.value))
                / ((math.log(result.ci_upper) - math.log(result.ci_lower)) / (2 * z))
            )
        )
        detail += (
            f"; the printed p fits the interval (z test of the log ratio: {centre_p:.4f})"
            if ok
            else f"; the interval implies p = {centre_p:.4f} (z test of the log ratio), printed {fmt(result.p_value)}"
        )
        printed += f", p = {fmt(result.p_value)}"
    return _judged(
        "confidence_interval", ok, printed=printed, computed=f"geometric mean {centre:.4f}", detail=detail
    )


def _judged(check: CheckName, ok: bool, *, printed: str | None, computed: str | None, detail: str) -> Check:
    return Check(
        check=check,
        verdict="consistent" if ok else "inconsistent",
        printed=printed,
        computed=computed,
        detail=detail,
    )


def _not_computable(detail: str, printed: str | None = None) -> Check:
    return Check(
        check="patient_level", verdict="not_computable", printed=printed, computed=None, detail=detail
    )


class PatientData:
    """A study's patient-level data, fetched once for all of its reported results."""

    def __init__(
        self,
        patients: Sequence[Any],
        arms: Sequence[Any],
        attributes: dict[Any, Any],
        responses: Sequence[Any],
    ) -> None:
        self.patients = patients
        self.raw_arm = {arm.id: arm.raw_id for arm in arms}
        self.attributes = attributes
        self.responses = responses

    def members(self, arm_id: UUID | None) -> list[Any]:
        if arm_id is None:
            return [p.id for p in self.patients]
        raw_arm = self.raw_arm.get(arm_id)
        return [p.id for p in self.patients if p.group_value == raw_arm]


async def _patient_data(session: AsyncSession, study_id: UUID) -> PatientData:
    patients = await queries.fetch_patients(session, study_id, GroupSpec("arm").column())
    columns = [
        Patient.age_years,
        Patient.sex,
        Patient.diagnosis,
        Patient.disease_status,
        Patient.risk_group,
        Patient.wbc_10e9_per_l,
        Patient.hemoglobin_g_per_l,
        Patient.platelets_10e9_per_l,
        Patient.marrow_blasts_pct,
        Patient.peripheral_blasts_pct,
    ]
    rows = (
        await (await session.connection()).execute(
            select(queries.raw(Patient.id), *columns).where(queries.study_patients(study_id))
        )
    ).all()
    return PatientData(
        patients,
        await queries.fetch_arms(session, study_id),
        {r.id: r for r in rows},
        await estimands.fetch_response_assessments(session, study_id),
    )


def _compare_counts(result: Any, x: int, n: int, what: str) -> Check:
    printed, differences = [], []
    if result.numerator is not None:
        printed.append(f"{result.numerator}")
        if result.numerator != x:
            differences.append(f"{what} {x}, printed {result.numerator}")
    if result.denominator is not None:
        printed.append(f"/{result.denominator}")
        if result.denominator != n:
            differences.append(f"N {n}, printed {result.denominator}")
    if result.value is not None and result.unit == "%" and n:
        computed = 100 * x / n
        printed.append(f" ({fmt(result.value)}%)")
        if not same_at_precision(computed, result.value):
            differences.append(f"{computed:.{decimals(result.value) + 1}f}%, printed {fmt(result.value)}%")
    if not printed:
        return Check(
            check="patient_level",
            verdict="not_computable",
            printed=None,
            computed=f"{x}/{n}",
            detail="nothing printed to compare (no count, N or percentage)",
        )
    return _judged(
        "patient_level",
        not differences,
        printed="".join(printed),
        computed=f"{x}/{n}"
        + (
            f" ({100 * x / n:.{decimals(result.value)}f}%)"
            if result.value is not None and result.unit == "%" and n
            else ""
        ),
        detail="; ".join(differences) if differences else "recomputed from the patient-level data",
    )


async def _patient_level(session: AsyncSession, study_id: UUID, result: Any, data: PatientData) -> Check:
    definition = result.definition
    kind = definition["type"]
    members = data.members(result.arm_id)
    if kind in ("response_rate", "adverse_event_incidence"):
        x, n = await count_outcome(session, study_id, members, definition, data.responses)
        return _compare_counts(result, x, n, "responders" if kind == "response_rate" else "patients affected")
    if kind == "patient_attribute":
        values = [
            getattr(data.attributes[p], definition["attribute"]) for p in members if p in data.attributes
        ]
        if definition["statistic"] == "count":
            return _compare_counts(
                result,
                sum(1 for v in values if v is not None and str(v) == definition.get("equals")),
                len(members),
                "patients",
            )
        present = [float(v) for v in values if v is not None]
        if not present or result.value is None:
            return _not_computable("no patient-level values for this attribute", fmt(result.value))
        if (
            result.range_lower is not None
            and result.range_upper is not None
            and not same_at_precision(min(present), result.range_lower)
            and not same_at_precision(max(present), result.range_upper)
        ):
            return _not_computable(
                f"the printed range {fmt(result.range_lower)}–{fmt(result.range_upper)} differs at both ends from the "
                f"patients' {min(present):g}–{max(present):g}: the figure describes other measurements (another time "
                "point or population), so its median is not comparable",
                fmt(result.value),
            )
        median = statistics.median(present)
        ok = same_at_precision(median, result.value)
        return _judged(
            "patient_level",
            ok,
            printed=fmt(result.value),
            computed=f"{median:g} (median of {len(present)})",
            detail="recomputed median"
            if ok
            else f"the patients' median is {median:g}, printed {fmt(result.value)}",
        )
    if kind == "survival":
        return await _survival_check(session, study_id, result, definition)
    if kind == "cumulative_incidence":
        return await _incidence_check(session, study_id, result, definition)
    if kind == "comparison":
        return await _comparison_check(session, study_id, result, definition, data)
    if kind == "hazard_ratio":
        return _not_computable(
            "a printed hazard ratio is checked against its own interval and p-value, not recomputed from the "
            "patients (GET /studies/{study_id}/cox with covariates=arm fits that model)",
            fmt(result.value),
        )
    return _not_computable(f"unknown definition type {kind}", None)


async def _survival_check(
    session: AsyncSession, study_id: UUID, result: Any, definition: dict[str, Any]
) -> Check:
    landmark = definition.get("landmark_day")
    summary = await survival(
        session,
        study_id,
        endpoint=definition["endpoint"],
        landmark_days=[landmark] if landmark else [],
        conf_type="log-log",
        conf_level=0.95,
        time_unit=definition["time_unit"],
        group_by=GroupSpec("arm" if result.arm_id else None),
    )
    group = next(
        (g for g in summary.groups if result.arm_id is None or g.group.arm_id == result.arm_id), None
    )
    if group is not None and group.not_computable:
        return _not_computable(f"{definition['endpoint']}: {group.not_computable}", fmt(result.value))
    if group is None or group.n == 0 or result.value is None:
        return _not_computable(f"no patients in the {definition['endpoint']} analysis set", fmt(result.value))
    if group.events == 0:
        return _not_computable(
            f"the patient-level data record no {definition['endpoint']} events, so the curve cannot reproduce a printed survival figure",
            fmt(result.value),
        )
    if definition["statistic"] == "median":
        computed = group.median.time
        label = f"median {definition['endpoint']} in {definition['time_unit']}"
    else:
        point = group.landmarks[0] if group.landmarks else None
        computed = None if point is None or point.survival is None else 100 * point.survival
        label = f"{definition['endpoint']} at day {landmark} (%)"
    if computed is None:
        return _not_computable(
            f"{label}: not reached or beyond follow-up in the patient-level data", fmt(result.value)
        )
    return _recomputed(label, computed, result)


def _recomputed(label: str, computed: float, result: Any) -> Check:
    """The printed figure against the one recomputed from the patient-level data."""
    ok = same_at_precision(computed, result.value)
    return _judged(
        "patient_level",
        ok,
        printed=fmt(result.value),
        computed=f"{computed:g}",
        detail=label if ok else f"{label} recomputes to {computed:g}",
    )


async def _incidence_check(
    session: AsyncSession, study_id: UUID, result: Any, definition: dict[str, Any]
) -> Check:
    day = definition["landmark_day"]
    summary = await relapse_incidence(
        session,
        study_id,
        landmark_days=[day],
        conf_level=0.95,
        time_unit="days",
        group_by=GroupSpec("arm" if result.arm_id else None),
    )
    group = next(
        (g for g in summary.groups if result.arm_id is None or g.group.arm_id == result.arm_id), None
    )
    cause = definition["cause"]
    label = f"cumulative incidence of {cause.replace('_', '-')} at day {day} (%)"
    if group is not None and group.not_computable:
        return _not_computable(f"{label}: {group.not_computable}", fmt(result.value))
    if group is None or group.n == 0 or result.value is None:
        return _not_computable(
            f"{label}: no patients in the analysis set (first CR/CRi/CRh)", fmt(result.value)
        )
    curve = next(c for c in group.causes if c.cause == cause)
    estimate = curve.landmarks[0].estimate
    if estimate is None:
        return _not_computable(f"{label}: beyond the last follow-up", fmt(result.value))
    computed = 100 * estimate
    return _recomputed(label, computed, result)


async def _comparison_check(
    session: AsyncSession, study_id: UUID, result: Any, definition: dict[str, Any], data: PatientData
) -> Check:
    outcome = definition["outcome"]
    counts = [
        await count_outcome(session, study_id, data.members(UUID(str(arm_id))), outcome, data.responses)
        for arm_id in definition["arm_ids"]
    ]
    (x1, n1), (x2, n2) = counts
    if not n1 or not n2 or result.p_value is None:
        return _not_computable(
            "a compared arm has no patients, or no p-value is printed", fmt(result.p_value)
        )
    p, _ = fisher_two_groups(x1, n1, x2, n2)
    differences = []
    if definition.get("printed_counts") and [list(c) for c in counts] != [
        list(c) for c in definition["printed_counts"]
    ]:
        differences.append(
            f"patient-level counts {x1}/{n1} vs {x2}/{n2} differ from the printed {definition['printed_counts']}"
        )
    if not same_at_precision(p, result.p_value):
        differences.append(
            f"Fisher's exact p on the patient-level counts is {p:.4f}, printed {fmt(result.p_value)}"
        )
    return _judged(
        "patient_level",
        not differences,
        printed=fmt(result.p_value),
        computed=f"{p:.{decimals(result.p_value)}f} ({x1}/{n1} vs {x2}/{n2})",
        detail="; ".join(differences) or "recomputed from the patient-level data",
    )


def _verdict(checks: list[Check]) -> Verdict:
    verdicts = {c.verdict for c in checks}
    if "inconsistent" in verdicts:
        return "inconsistent"
    if "consistent" in verdicts:
        return "consistent"
    return "not_computable"


async def reconcile(session: AsyncSession, study_id: UUID) -> Reconciliation:
    await queries.require_study(session, study_id)
    results = (
        await session.scalars(
            select(ReportedResult).where(ReportedResult.study_id == study_id).order_by(col(ReportedResult.id))
        )
    ).all()
    data = await _patient_data(session, study_id)
    at_risk = await _reached_remission(session, study_id)
    out: list[ResultReconciliation] = []
    for result in results:
        checks = [
            c
            for c in (
                check_percentage(result, at_risk),
                check_interval(result),
                check_p_value(result),
                check_ratio(result),
                check_unit(result),
            )
            if c is not None
        ]
        if result.definition:
            if data.patients:
                checks.append(await _patient_level(session, study_id, result, data))
            else:
                checks.append(_not_computable("the study has no patient-level data", None))
        if not checks:
            checks.append(
                _not_computable(
                    "nothing to check: no count with a percentage, no interval, no p-value with counts, and no definition",
                    None,
                )
            )
        out.append(
            ResultReconciliation(
                reported_result_id=result.id, measure=result.measure, verdict=_verdict(checks), checks=checks
            )
        )
    summary = ReconciliationSummary(
        consistent=sum(r.verdict == "consistent" for r in out),
        inconsistent=sum(r.verdict == "inconsistent" for r in out),
        not_computable=sum(r.verdict == "not_computable" for r in out),
    )
    return Reconciliation(
        study_id=study_id, has_patient_level_data=bool(data.patients), summary=summary, results=out
    )
