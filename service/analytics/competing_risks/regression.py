"""Regression of relapse or non-relapse mortality among competing causes, from the first CR (the
RFS analysis set of the cumulative incidence): Fine–Gray for the effect on the cumulative
incidence, and the cause-specific Cox model for the effect on the cause's rate. Reporting both is
the field's recommendation (Latouche et al. 2013): the two answer different questions."""

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.competing_risks.analysis import cause_of
from service.analytics.competing_risks.fine_gray import fine_gray
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.time_scale import elapsed
from service.analytics.estimands.undated import UndatedEvents, UndatedRule, rule_for_rows
from service.analytics.regression.cox import cox_fit
from service.analytics.regression.design import (
    CODING,
    Covariate,
    design,
    missing,
    parse_interactions,
    parse_references,
)
from service.analytics.regression.terms import global_tests, hazard_terms
from service.analytics.schemas import ChiSquareTest, CompetingRisksModel, CoxTerm
from service.common.heavy import offload

Cause = Literal["relapse", "non_relapse_mortality"]
CAUSE_CODE = {"relapse": 1, "non_relapse_mortality": 2}

METHOD = {
    "analysis_set": "the RFS analysis set (time from the first CR/CRi/CRh): "
    + estimands.ENDPOINTS["RFS"].description,
    "causes": "relapse = a first event that is a relapse or progression; non_relapse_mortality = death before any relapse (a relapse and a death on the same day count as relapse); no event = censored at the last recorded study day",
    "fine_gray": "Fine–Gray proportional subdistribution hazards, Breslow ties, censoring weights from the Kaplan–Meier estimate of censoring, robust sandwich variance, as R cmprsk::crr; hazard_ratio is the subdistribution hazard ratio",
    "cause_specific": "Cox model of the cause with competing events censored, Efron ties, as R coxph(Surv(time, cause == k) ~ ...); likelihood-ratio, Wald and score tests",
    "coding": CODING,
    "missing": "patients without a value of a covariate are left out, counted by covariate",
}


async def competing_risks_model(
    session: AsyncSession,
    study_id: UUID,
    *,
    cause: Cause,
    covariates: list[Covariate],
    references: Sequence[str] = (),
    interactions: Sequence[str] = (),
    conf_level: float = 0.95,
    undated_events: UndatedEvents = "withhold",
) -> CompetingRisksModel:
    await queries.require_study(session, study_id)
    chosen = parse_references(references, covariates)
    pairs = parse_interactions(interactions, covariates)
    attributes = tuple(c for c in covariates if c != "arm")
    rows = await estimands.fetch_analysis_rows(session, study_id, "RFS", attributes)
    arms = await queries.fetch_arms(session, study_id)
    rule = await rule_for_rows(
        session, study_id, "RFS", undated_events, rows, lambda r: None if missing(r, covariates) else "all"
    )
    return await offload(_model, study_id, rows, arms, rule, cause, covariates, chosen, pairs, conf_level)


def _model(
    study_id: UUID,
    rows: Sequence[Any],
    arms: Sequence[Any],
    rule: UndatedRule,
    cause: Cause,
    covariates: list[Covariate],
    references: dict[str, str],
    interactions: list[tuple[str, str]],
    conf_level: float,
) -> CompetingRisksModel:
    excluded: Counter[str] = Counter(r.reason for r in rows if r.reason is not None)
    kept = []
    for row in rows:
        if row.reason is not None:
            continue
        if lacking := missing(row, covariates):
            excluded[f"no {lacking}"] += 1
        else:
            kept.append(row)
    warnings = [f"{n} patient(s) not in the model: {reason}" for reason, n in sorted(excluded.items())]
    warnings += rule.warnings()
    code = CAUSE_CODE[cause]
    raw = np.array([cause_of(r) for r in kept], int)
    status = np.where(raw == code, 1, np.where(raw == 0, 0, 2))
    time = elapsed(
        np.array([r.origin_day for r in kept], float), np.array([r.end_day for r in kept], float), "days"
    )
    matrix = design(kept, arms, covariates, references, interactions)

    def result(
        reason: str | None,
        fine_gray_terms: list[CoxTerm] | None = None,
        terms: list[CoxTerm] | None = None,
        tests: list[ChiSquareTest] | None = None,
    ) -> CompetingRisksModel:
        return CompetingRisksModel(
            study_id=study_id,
            cause=cause,
            covariates=list(covariates),
            conf_level=conf_level,
            n=len(kept),
            events=int((status == 1).sum()),
            competing_events=int((status == 2).sum()),
            excluded=sum(excluded.values()),
            excluded_by_reason=dict(excluded),
            not_computable=reason,
            fine_gray=fine_gray_terms or [],
            terms=terms or [],
            tests=tests or [],
            undated_events=rule.handling(),
            method={**METHOD, "undated_events": rule.method()},
            warnings=warnings + ([f"model not computable: {reason}"] if reason else []),
        )

    reason = rule.withheld_across(["all"]) or matrix.not_computable
    if not reason and not matrix.columns:
        reason = "no coefficient to estimate (an arm covariate needs patients in at least two arms)"
    if not reason and not (status == 1).any():
        reason = f"no {cause.replace('_', ' ')} events in the analysis set"
    if not reason:
        for column, name in zip(matrix.columns, matrix.names, strict=True):
            if np.ptp(column) == 0:
                reason = f"'{name}' takes one value in the analysis set"
                break
    if reason:
        return result(reason)
    x = np.column_stack(matrix.columns)
    infinite = (
        "the likelihood has no finite maximum (e.g. every event in one group), so a hazard ratio is infinite"
    )
    try:
        with np.errstate(all="ignore"):
            subdistribution = fine_gray(time, status, x)
            specific = cox_fit(time, status == 1, x)
    except (np.linalg.LinAlgError, ValueError):
        return result("the information matrix is singular (a covariate is collinear with others)")
    for fit in (subdistribution, specific):
        if not fit.converged or not np.all(np.isfinite(fit.coef)) or not np.all(np.isfinite(fit.se)):
            return result(infinite)
    return result(
        None,
        hazard_terms(matrix.names, subdistribution.coef, subdistribution.se, conf_level),
        hazard_terms(matrix.names, specific.coef, specific.se, conf_level),
        global_tests(specific),
    )
