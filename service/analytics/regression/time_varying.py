"""Allogeneic transplant as a time-varying event: comparing "transplanted vs not" from the origin
counts the waiting time before transplant as transplanted time (immortal-time bias). Instead each
patient's follow-up is split at the transplant into counting-process intervals (start, stop], as
R's tmerge(tdc(...)), and the transplant enters a Cox model as a time-varying covariate; the
Mantel–Byar test is that model's score test, and the Simon–Makuch curves are product-limit
estimates whose risk sets follow the patients from one state to the other.

Conventions (each echoed in the method block):
- the transplant is the first dated `hsct` event of the patient (a later one changes nothing: the
  covariate is "has been transplanted"); it switches the covariate just after the transplant day,
  as tmerge: a transplant on the origin day makes the whole follow-up transplanted, one on or
  after the last day changes nothing;
- a patient whose only transplant has no study day cannot be placed: `undated_events=withhold`
  (default) reports the model as not computable, `exclude` leaves them out, counted and named;
- a patient with no time after the origin (event or censoring at time 0) has no interval and is
  left out, counted."""

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.endpoints import Endpoint
from service.analytics.estimands.time_scale import TimeUnit, elapsed
from service.analytics.estimands.undated import UndatedEvents, UndatedRule, rule_for_rows
from service.analytics.regression.cox import Ties, cox_fit
from service.analytics.regression.design import CODING, Covariate, design, missing
from service.analytics.regression.terms import global_tests, hazard_terms
from service.analytics.schemas import (
    ChiSquareTest,
    CoxTerm,
    Median,
    StateCurve,
    TransplantAnalysis,
)
from service.analytics.survival.analysis import curve_points
from service.analytics.survival.estimators import kaplan_meier_intervals, quantile
from service.common.heavy import offload

UNDATED_TRANSPLANT = "a transplant without a study day: the day the covariate switches is unknown"
NO_TIME = "event or censoring at time 0: no time at risk after the origin"
STATES = ("not_transplanted", "transplanted")

METHOD = {
    "data": "each patient's follow-up split at the transplant into (start, stop] intervals, as R survival::tmerge with tdc(): the covariate switches just after the transplant day; a transplant on the origin day (or before it) makes the whole follow-up transplanted, one on or after the last day changes nothing",
    "transplant": "the first dated allogeneic transplant (outcome event `hsct`); later transplants change nothing (the covariate is 'has been transplanted')",
    "model": "Cox proportional hazards on the intervals (R coxph(Surv(tstart, tstop, event) ~ hsct + ...)), Newton–Raphson to full convergence; hsct: transplanted vs not yet transplanted",
    "mantel_byar": "the Mantel–Byar test of transplant: the score test of the Cox model with the time-varying transplant alone (1 df), with the ties method of the model",
    "simon_makuch": "product-limit curves per state on the intervals (R survfit(Surv(tstart, tstop, event) ~ hsct)): a patient is at risk in 'not_transplanted' until the transplant and in 'transplanted' after it",
    "coding": CODING,
    "missing": "patients without a value of a covariate are left out, counted by covariate",
}


async def transplant_analysis(
    session: AsyncSession,
    study_id: UUID,
    *,
    endpoint: Endpoint,
    covariates: list[Covariate],
    ties: Ties,
    conf_level: float,
    time_unit: TimeUnit,
    undated_events: UndatedEvents = "withhold",
) -> TransplantAnalysis:
    await queries.require_study(session, study_id)
    attributes = tuple(c for c in covariates if c != "arm")
    rows = await estimands.fetch_analysis_rows(session, study_id, endpoint, attributes)
    transplants = {t.patient_id: t for t in await queries.fetch_transplants(session, study_id)}
    arms = await queries.fetch_arms(session, study_id)
    rule = await rule_for_rows(
        session, study_id, endpoint, undated_events, rows, lambda r: None if missing(r, covariates) else "all"
    )
    return await offload(
        _analysis,
        study_id,
        rows,
        transplants,
        arms,
        rule,
        endpoint=endpoint,
        covariates=covariates,
        ties=ties,
        conf_level=conf_level,
        time_unit=time_unit,
        undated_events=undated_events,
    )


def split_at_transplant(
    time: np.ndarray, event: np.ndarray, transplant: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """tmerge's intervals: (start, stop, event, hsct, patient index) from each patient's time,
    event and transplant time (NaN: none), all on the analysis time scale."""
    time, event, h = np.asarray(time, float), np.asarray(event, bool), np.asarray(transplant, float)
    index = np.arange(len(time))
    with np.errstate(invalid="ignore"):
        split = ~np.isnan(h) & (h > 0) & (h < time)
        from_start = ~np.isnan(h) & (h <= 0)
    whole = ~split
    return (
        np.concatenate((np.zeros(whole.sum()), np.zeros(split.sum()), h[split])),
        np.concatenate((time[whole], h[split], time[split])),
        np.concatenate((event[whole], np.zeros(split.sum(), bool), event[split])),
        np.concatenate((from_start[whole].astype(float), np.zeros(split.sum()), np.ones(split.sum()))),
        np.concatenate((index[whole], index[split], index[split])),
    )


def _analysis(
    study_id: UUID,
    rows: Sequence[Any],
    transplants: dict[Any, Any],
    arms: Sequence[Any],
    rule: UndatedRule,
    *,
    endpoint: Endpoint,
    covariates: list[Covariate],
    ties: Ties,
    conf_level: float,
    time_unit: TimeUnit,
    undated_events: UndatedEvents,
) -> TransplantAnalysis:
    excluded: Counter[str] = Counter(r.reason for r in rows if r.reason is not None)
    undated_codes: list[str] = []
    kept = []
    for row in rows:
        if row.reason is not None:
            continue
        transplant = transplants.get(row.id)
        if lacking := missing(row, covariates):
            excluded[f"no {lacking}"] += 1
        elif transplant is not None and transplant.first_day is None:
            undated_codes.append(row.subject_code)
            if undated_events == "exclude":
                excluded[UNDATED_TRANSPLANT] += 1
            else:
                kept.append(row)
        elif row.end_day == row.origin_day:
            excluded[NO_TIME] += 1
        else:
            kept.append(row)
    warnings = [f"{n} patient(s) not in the analysis: {reason}" for reason, n in sorted(excluded.items())]
    warnings += rule.warnings()
    withheld = rule.withheld_across(["all"])
    if undated_codes and undated_events == "withhold":
        reason = f"{len(undated_codes)} patient(s) have a transplant without a study day ({', '.join(undated_codes[:20])}): the time it switches is unknown (undated_events=exclude leaves them out, with a warning)"
        withheld = f"{withheld}; {reason}" if withheld else reason
    elif undated_codes:
        warnings.append(
            f"{len(undated_codes)} patient(s) with an undated transplant were left out ({', '.join(undated_codes[:20])}): this can bias the comparison"
        )
    time = elapsed(
        np.array([r.origin_day for r in kept], float), np.array([r.end_day for r in kept], float), time_unit
    )
    event = np.array([bool(r.event) for r in kept], bool)
    origins = np.array([r.origin_day for r in kept], float)
    days = np.array([transplants[r.id].first_day if r.id in transplants else math.nan for r in kept], float)
    with np.errstate(invalid="ignore"):
        # elapsed from the origin to the transplant, negative for a transplant before the origin
        after = days >= origins
        transplant_time = np.where(
            after,
            elapsed(origins, np.where(after, days, origins), time_unit),
            -elapsed(np.where(after, origins, days), origins, time_unit),
        )
    transplant_time[np.isnan(days)] = math.nan
    start, stop, dead, hsct, who = split_at_transplant(time, event, transplant_time)
    matrix = design(kept, arms, covariates)

    def result(
        reason: str | None,
        terms: list[CoxTerm] | None = None,
        tests: list[ChiSquareTest] | None = None,
        mantel_byar: ChiSquareTest | None = None,
        curves: list[StateCurve] | None = None,
    ) -> TransplantAnalysis:
        return TransplantAnalysis(
            study_id=study_id,
            endpoint=endpoint,
            time_unit=time_unit,
            ties=ties,
            conf_level=conf_level,
            covariates=list(covariates),
            n=len(kept),
            events=int(event.sum()),
            transplanted=len(set(who[hsct == 1])),
            intervals=len(start),
            excluded=sum(excluded.values()),
            excluded_by_reason=dict(excluded),
            not_computable=reason,
            terms=terms or [],
            tests=tests or [],
            mantel_byar=mantel_byar,
            simon_makuch=curves or [],
            undated_events=rule.handling(),
            method={
                **METHOD,
                "endpoint": estimands.ENDPOINTS[endpoint].description,
                "ties": f"{ties}'s approximation for tied event times",
                "undated_events": rule.method(),
            },
            warnings=warnings + ([f"not computable: {reason}"] if reason else []),
        )

    if withheld:
        return result(withheld)
    if matrix.not_computable:
        return result(matrix.not_computable)
    curves = [_curve(state, start, stop, dead, hsct, who, conf_level) for state in (0, 1)]
    if not event.any():
        return result("no events in the analysis set", curves=curves)
    if len(set(hsct)) < 2:
        return result(
            "every interval is in one state (nobody transplanted during follow-up, or everybody from the start)",
            curves=curves,
        )
    x = np.column_stack([hsct, *(column[who] for column in matrix.columns)])
    names = ["hsct: transplanted vs not yet", *matrix.names]
    try:
        with np.errstate(all="ignore"):
            fit = cox_fit(stop, dead, x, start=start, ties=ties)
            alone = fit if x.shape[1] == 1 else cox_fit(stop, dead, hsct[:, None], start=start, ties=ties)
    except (np.linalg.LinAlgError, ValueError):
        return result(
            "the information matrix is singular (a covariate is collinear with others)", curves=curves
        )
    if not fit.converged or not np.all(np.isfinite(fit.coef)) or not np.all(np.isfinite(fit.se)):
        return result(
            "the likelihood has no finite maximum (e.g. every event in one state), so a hazard ratio is infinite",
            curves=curves,
        )
    mantel_byar = ChiSquareTest(
        test="mantel_byar", chi_square=alone.score, df=1, p_value=alone.p(alone.score)
    )
    return result(
        None, hazard_terms(names, fit.coef, fit.se, conf_level), global_tests(fit), mantel_byar, curves
    )


def _curve(
    state: int,
    start: np.ndarray,
    stop: np.ndarray,
    dead: np.ndarray,
    hsct: np.ndarray,
    who: np.ndarray,
    conf_level: float,
) -> StateCurve:
    rows = hsct == state
    km = kaplan_meier_intervals(start[rows], stop[rows], dead[rows], "log-log", conf_level)
    median, low, high = quantile(km, 0.5) if rows.any() else (None, None, None)

    return StateCurve(
        state=STATES[state],
        patients=len(set(who[rows])),
        events=int(dead[rows].sum()),
        curve=curve_points(km),
        median=Median(time=median, lower=low, upper=high, reached=median is not None),
    )
