"""Cox proportional-hazards models of a time-to-event endpoint on arm and patient covariates:
the analysis set of service.analytics.estimands.endpoints, patients without a covariate value left out
(counted by covariate), hazard ratios with Wald intervals, the three global tests, and the
Schoenfeld-residual test of proportional hazards."""

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.endpoints import Endpoint, Stratum
from service.analytics.estimands.time_scale import elapsed
from service.analytics.estimands.undated import UndatedEvents, UndatedRule, rule_for_rows
from service.analytics.lazy_scipy import stats
from service.analytics.regression.cox import cox_fit, cox_zph
from service.analytics.regression.cox_firth import firth_cox_fit
from service.analytics.regression.design import (
    CODING,
    Covariate,
    design,
    missing,
    parse_interactions,
    parse_references,
)
from service.analytics.regression.response_model import Firth
from service.analytics.regression.terms import firth_terms, global_tests, hazard_terms
from service.analytics.schemas import ChiSquareTest, CoxModel, CoxTerm
from service.common.heavy import offload
from service.errors import RuleViolation

EVENTS_PER_VARIABLE = 10
MONOTONE = "the likelihood has no finite maximum (monotone likelihood: e.g. every event in one group), so a hazard ratio is infinite; firth=auto or always fits Firth's penalised likelihood, whose maximum is finite"
FIRTH_METHOD = {
    "estimation": "Firth's penalised partial likelihood l(beta) + ½·log|I(beta)| with Breslow ties, as R coxphf (Heinze & Schemper 2001): a finite estimate under monotone likelihood",
    "intervals": "profile penalised-likelihood intervals; p-values of the penalised likelihood-ratio test of each coefficient (coxphf's defaults); se from the inverse information",
    "tests": "penalised likelihood-ratio test of all coefficients = 0, 2·(l*(beta) − l*(0))",
}

METHOD = {
    "model": "Cox proportional hazards, Efron's approximation for ties, Newton–Raphson to full convergence, as R coxph(ties = 'efron')",
    "coding": CODING,
    "intervals": "hazard ratio exp(coef ± z·se) (Wald), p from z = coef/se",
    "tests": "likelihood ratio, Wald and score (log-rank) tests of all coefficients = 0, as summary(coxph)",
    "proportional_hazards": "score test of a time-varying coefficient g(t)·x with g the Kaplan–Meier transform, per covariate (a factor's columns jointly, as R's default terms = TRUE) and global, as R cox.zph(transform = 'km')",
    "strata": "with strata: a separate baseline hazard per stratum (R strata())",
    "missing": "patients without a value of a covariate or of the stratifying attribute are left out, counted by reason",
}


async def cox_model(
    session: AsyncSession,
    study_id: UUID,
    *,
    endpoint: Endpoint,
    covariates: list[Covariate],
    strata: Stratum | None,
    conf_level: float,
    undated_events: UndatedEvents = "withhold",
    references: Sequence[str] = (),
    interactions: Sequence[str] = (),
    firth: Firth = "never",
) -> CoxModel:
    if firth != "never" and strata:
        raise RuleViolation(
            "Firth's penalised fit takes no strata (as R coxphf): drop strata, or fit without firth",
            field="strata",
        )
    await queries.require_study(session, study_id)
    chosen = parse_references(references, covariates)
    pairs = parse_interactions(interactions, covariates)
    attributes = tuple(dict.fromkeys([*(c for c in covariates if c != "arm"), *([strata] if strata else [])]))
    rows = await estimands.fetch_analysis_rows(session, study_id, endpoint, attributes)
    arms = await queries.fetch_arms(session, study_id)
    # An undated patient who lacks a covariate would be left out anyway: they change nothing.
    rule = await rule_for_rows(
        session,
        study_id,
        endpoint,
        undated_events,
        rows,
        lambda r: None if missing(r, [*covariates, *([strata] if strata else [])]) else "all",
    )
    return await offload(
        _model, study_id, rows, arms, rule, endpoint, covariates, strata, conf_level, chosen, pairs, firth
    )


def _model(
    study_id: UUID,
    rows: Sequence[Any],
    arms: Sequence[Any],
    rule: UndatedRule,
    endpoint: Endpoint,
    covariates: list[Covariate],
    strata: Stratum | None,
    conf_level: float,
    references: dict[str, str],
    interactions: list[tuple[str, str]],
    firth: Firth = "never",
) -> CoxModel:
    excluded: Counter[str] = Counter(r.reason for r in rows if r.reason is not None)
    kept = []
    for row in rows:
        if row.reason is not None:
            continue
        lacking = missing(row, [*covariates, *([strata] if strata else [])])
        if lacking:
            excluded[f"no {lacking}"] += 1
        else:
            kept.append(row)
    warnings = [f"{n} patient(s) not in the model: {reason}" for reason, n in sorted(excluded.items())]
    warnings += rule.warnings()
    matrix = design(kept, arms, covariates, references, interactions)
    columns, names = matrix.columns, matrix.names
    times = elapsed(
        np.array([r.origin_day for r in kept], float), np.array([r.end_day for r in kept], float), "days"
    )
    events = np.array([bool(r.event) for r in kept], bool)
    layers = None
    if strata:
        values = sorted({str(getattr(r, strata)) for r in kept})
        layers = np.array([values.index(str(getattr(r, strata))) for r in kept], int)

    def result(
        reason: str | None,
        terms: list[CoxTerm],
        tests: list[ChiSquareTest],
        ph: list[ChiSquareTest],
        ph_reason: str | None = None,
        penalised: bool = False,
    ) -> CoxModel:
        return CoxModel(
            study_id=study_id,
            endpoint=endpoint,
            covariates=list(covariates),
            strata=strata,
            conf_level=conf_level,
            n=len(kept),
            events=int(events.sum()),
            excluded=sum(excluded.values()),
            excluded_by_reason=dict(excluded),
            not_computable=reason,
            terms=terms,
            tests=tests,
            proportional_hazards=ph,
            proportional_hazards_not_computable=reason or ph_reason,
            undated_events=rule.handling(),
            method={
                **METHOD,
                **(FIRTH_METHOD if penalised else {}),
                "endpoint": estimands.ENDPOINTS[endpoint].description,
                "undated_events": rule.method(),
            },
            warnings=warnings
            + ([f"model not computable: {reason}"] if reason else [])
            + (
                [f"proportional-hazards test not computable: {ph_reason}"] if ph_reason and not reason else []
            ),
        )

    reason = rule.withheld_across(["all"]) or matrix.not_computable or _not_estimable(columns, names, events)
    if reason:
        return result(reason, [], [], [])
    x = np.column_stack(columns)
    if events.sum() < EVENTS_PER_VARIABLE * x.shape[1]:
        warnings.append(
            f"{int(events.sum())} events for {x.shape[1]} coefficient(s): fewer than {EVENTS_PER_VARIABLE} events per coefficient, the estimates may be biased and the intervals too narrow"
        )
    singular = "the information matrix is singular (a covariate is collinear with others)"

    def penalised_fit(why: str | None = None) -> CoxModel:
        try:
            firth_fit = firth_cox_fit(times, events, x, conf_level=conf_level)
        except (np.linalg.LinAlgError, ValueError):
            return result(singular, [], [], [])
        if not firth_fit.converged:
            return result("Firth's penalised likelihood did not reach its maximum", [], [], [])
        if why:
            warnings.append(why)
        statistic = firth_fit.likelihood_ratio
        return result(
            None,
            firth_terms(names, firth_fit),
            [
                ChiSquareTest(
                    test="penalised_likelihood_ratio",
                    chi_square=statistic,
                    df=len(names),
                    p_value=float(stats.chi2.sf(statistic, len(names))),
                )
            ],
            [],
            "not computed for Firth's penalised fit (R coxphf has no cox.zph): fit with firth=never for it",
            penalised=True,
        )

    if firth == "always":
        return penalised_fit()

    def monotone() -> CoxModel:
        if firth == "auto":
            return penalised_fit(
                "the likelihood is monotone (no finite maximum): Firth's penalised fit reported (firth=auto)"
            )
        return result(MONOTONE, [], [], [])

    try:
        with np.errstate(all="ignore"):
            fit = cox_fit(times, events, x, layers)
    except (np.linalg.LinAlgError, ValueError):
        return result(singular, [], [], [])
    if not fit.converged or not np.all(np.isfinite(fit.coef)):
        return monotone()
    try:
        with np.errstate(all="ignore"):
            wald = fit.wald
            se = fit.se
            ratios = np.exp(np.concatenate((fit.coef, fit.coef - 40 * se, fit.coef + 40 * se)))
    except np.linalg.LinAlgError:
        return result(singular, [], [], [])
    if not (np.all(np.isfinite(se)) and np.all(se > 0) and math.isfinite(wald) and math.isfinite(fit.score)):
        return result(singular, [], [], [])
    if not np.all(np.isfinite(ratios)):
        # R's "beta may be infinite": the log-likelihood levelled off with a standard error so
        # large that the interval leaves floating-point range
        return monotone()
    terms = hazard_terms(names, fit.coef, fit.se, conf_level)
    tests = global_tests(fit)
    with np.errstate(all="ignore"):
        zph = cox_zph(fit, times, events, x, layers, list(matrix.terms.values()))
    if zph is None or not np.all(np.isfinite(zph.chi_square)):
        return result(
            None,
            terms,
            tests,
            [],
            "the information matrix of the time-varying terms is singular (e.g. a single event time, or every event tied), where R cox.zph stops",
        )
    ph = [
        ChiSquareTest(test=name, chi_square=float(c), df=int(d), p_value=float(p))
        for name, c, d, p in zip([*matrix.terms, "GLOBAL"], zph.chi_square, zph.df, zph.p_value, strict=True)
    ]
    return result(None, terms, tests, ph)


def _not_estimable(columns: list[np.ndarray], names: list[str], events: np.ndarray) -> str | None:
    if not columns:
        return "no coefficient to estimate (an arm covariate needs patients in at least two arms)"
    if not events.any():
        return "no events in the analysis set"
    for column, name in zip(columns, names, strict=True):
        if np.ptp(column) == 0:
            return f"'{name}' takes one value in the analysis set"
    return None
