"""Logistic regression of response on arm and patient covariates: who responded is decided by the
response definition every response rate uses (service.analytics.proportions.analysis), patients
without a covariate value are left out (counted by covariate), and separated data, the rule in
case series (every patient of a group responded), are fitted with Firth's penalised likelihood
rather than reported with the diverging estimates of maximum likelihood."""

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.estimands import endpoints as estimands
from service.analytics.lazy_scipy import stats
from service.analytics.parameters import ResponseDefinition
from service.analytics.proportions.analysis import tally_responses
from service.analytics.regression.design import (
    CODING,
    Covariate,
    design,
    missing,
    parse_interactions,
    parse_references,
)
from service.analytics.regression.logistic import (
    LogisticFit,
    firth_likelihood_ratio,
    firth_profile_interval,
    logistic_fit,
    separated,
)
from service.analytics.schemas import ChiSquareTest, FitStatistics, ModelTerm, ResponseModel
from service.common.heavy import offload

Firth = Literal["auto", "always", "never"]
NOT_EVALUABLE = "not evaluable (no counted response assessment in the window)"
SEPARATED = (
    "the responses are separated (e.g. every patient of one group responded, or none did): "
    "maximum-likelihood estimates are infinite; ask firth=auto or firth=always"
)
EVENTS_PER_VARIABLE = 10

METHOD = {
    "outcome": "a responder meets the response definition of the response rates (categories, mrd, by_day, treatment_scope); with denominator=evaluable only evaluable patients are modelled",
    "model": "logistic regression, logit P(response) = intercept + covariates",
    "coding": CODING,
    "maximum_likelihood": "Newton-Raphson (IRLS) to full convergence, as R glm(family = binomial); Wald z tests and intervals exp(coef ± z·se)",
    "firth": "Firth's penalised likelihood (Jeffreys prior), as R logistf: standard errors from the inverse information at the estimate, p values from penalised likelihood-ratio tests, profile penalised-likelihood intervals",
    "separation": "detected exactly by the linear programme of Konis (2007); firth=auto fits Firth's model then (and only then)",
    "missing": "patients without a value of a covariate are left out, counted by covariate",
}


async def response_model(
    session: AsyncSession,
    study_id: UUID,
    *,
    response: ResponseDefinition,
    covariates: list[Covariate],
    references: Sequence[str] = (),
    interactions: Sequence[str] = (),
    firth: Firth = "auto",
    conf_level: float = 0.95,
) -> ResponseModel:
    await queries.require_study(session, study_id)
    chosen = parse_references(references, covariates)
    pairs = parse_interactions(interactions, covariates)
    attributes = [c for c in covariates if c != "arm"]
    patients = await queries.fetch_patient_attributes(session, study_id, attributes)
    arms = await queries.fetch_arms(session, study_id)
    assessments = await estimands.fetch_response_assessments(session, study_id)
    # The tally and the fit are CPU work: off the event loop.
    tally = await offload(
        tally_responses,
        assessments,
        set(response.categories),
        response.mrd,
        response.by_day,
        None,
        response.scope,
    )
    return await offload(
        _model,
        study_id,
        response,
        patients,
        arms,
        tally.evaluable,
        tally.responders,
        covariates,
        chosen,
        pairs,
        firth,
        conf_level,
    )


def _model(
    study_id: UUID,
    response: ResponseDefinition,
    patients: Sequence[Any],
    arms: Sequence[Any],
    evaluable: set[Any],
    responders: set[Any],
    covariates: list[Covariate],
    references: dict[str, str],
    interactions: list[tuple[str, str]],
    firth: Firth,
    conf_level: float,
) -> ResponseModel:
    excluded: Counter[str] = Counter()
    kept = []
    for row in patients:
        if response.denominator == "evaluable" and row.id not in evaluable:
            excluded[NOT_EVALUABLE] += 1
        elif lacking := missing(row, covariates):
            excluded[f"no {lacking}"] += 1
        else:
            kept.append(row)
    y = np.array([1.0 if r.id in responders else 0.0 for r in kept])
    warnings = [f"{n} patient(s) not in the model: {reason}" for reason, n in sorted(excluded.items())]
    matrix = design(kept, arms, covariates, references, interactions)

    def result(
        reason: str | None,
        estimation: str | None = None,
        split: bool | None = None,
        terms: list[ModelTerm] | None = None,
        tests: list[ChiSquareTest] | None = None,
        statistics: FitStatistics | None = None,
    ) -> ResponseModel:
        return ResponseModel(
            study_id=study_id,
            outcome=response.as_outcome(),
            covariates=list(covariates),
            conf_level=conf_level,
            estimation=estimation,
            separated=split,
            n=len(kept),
            responders=int(y.sum()),
            excluded=sum(excluded.values()),
            excluded_by_reason=dict(excluded),
            not_computable=reason,
            terms=terms or [],
            tests=tests or [],
            fit_statistics=statistics,
            method={**METHOD, "outcome_definition": _describe(response)},
            warnings=warnings + ([f"model not computable: {reason}"] if reason else []),
        )

    reason = matrix.not_computable or _not_estimable(matrix.columns, matrix.names, y)
    if reason:
        return result(reason)
    x = np.column_stack([np.ones(len(kept)), *matrix.columns])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return result("the design is collinear (a covariate is a combination of others)")
    split = separated(x, y)
    use_firth = firth == "always" or (firth == "auto" and split)
    if split and not use_firth:
        return result(SEPARATED, None, True)
    if split:
        warnings.append("the responses are separated: Firth's penalised likelihood was fitted (firth=auto)")
    events = min(int(y.sum()), len(y) - int(y.sum()))
    if events < EVENTS_PER_VARIABLE * (x.shape[1] - 1):
        warnings.append(
            f"{events} patients in the smaller outcome class for {x.shape[1] - 1} coefficient(s): fewer than {EVENTS_PER_VARIABLE} per coefficient, maximum-likelihood estimates are biased away from 0"
            + ("" if use_firth else " (firth=always reduces the bias)")
        )
    try:
        with np.errstate(all="ignore"):
            fit = logistic_fit(x, y, firth=use_firth)
    except np.linalg.LinAlgError:
        return result("the information matrix is singular", None, split)
    if not fit.converged or not np.all(np.isfinite(fit.coef)) or not np.all(np.isfinite(fit.se)):
        return result("the fit did not converge", None, split)
    terms = _terms(x, y, fit, ["(intercept)", *matrix.names], conf_level)
    overall = 2 * ((fit.penalised_loglik if use_firth else fit.loglik) - fit.null_loglik)  # type: ignore[operator]
    df = x.shape[1] - 1
    tests = [
        ChiSquareTest(
            test="penalised_likelihood_ratio" if use_firth else "likelihood_ratio",
            chi_square=float(max(overall, 0.0)),
            df=df,
            p_value=float(stats.chi2.sf(max(overall, 0.0), df)),
        )
    ]
    statistics = FitStatistics(
        log_likelihood=fit.loglik,
        penalised_log_likelihood=fit.penalised_loglik,
        deviance=-2 * fit.loglik,
        null_deviance=-2 * float(logistic_fit(x[:, :1], y).loglik),
        aic=-2 * fit.loglik + 2 * x.shape[1],
        iterations=fit.iterations,
    )
    return result(None, "firth" if use_firth else "maximum_likelihood", split, terms, tests, statistics)


def _terms(
    x: np.ndarray, y: np.ndarray, fit: LogisticFit, names: list[str], conf_level: float
) -> list[ModelTerm]:
    z = float(stats.norm.isf((1 - conf_level) / 2))
    terms = []
    for j, name in enumerate(names):
        coef, se = float(fit.coef[j]), float(fit.se[j])
        if fit.firth:
            chi = firth_likelihood_ratio(x, y, fit, j)
            lower, upper = firth_profile_interval(x, y, fit, j, conf_level)
        else:
            chi = (coef / se) ** 2
            lower, upper = coef - z * se, coef + z * se
        terms.append(
            ModelTerm(
                term=name,
                coef=coef,
                se=se,
                odds_ratio=_exp(coef),  # type: ignore[arg-type]
                lower=_exp(lower),
                upper=_exp(upper),
                chi_square=chi,
                p_value=float(stats.chi2.sf(chi, 1)),
            )
        )
    return terms


def _exp(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        return math.exp(value)
    except OverflowError:
        return None


def _not_estimable(columns: list[np.ndarray], names: list[str], y: np.ndarray) -> str | None:
    if not len(y):
        return "no patients in the model"
    if not columns:
        return "no coefficient to estimate (an arm covariate needs patients in at least two arms)"
    if y.sum() in (0, len(y)):
        return "every patient in the model responded, or none did: no odds ratio can be estimated"
    for column, name in zip(columns, names, strict=True):
        if np.ptp(column) == 0:
            return f"'{name}' takes one value in the model"
    return None


def _describe(response: ResponseDefinition) -> str:
    categories = ", ".join(response.categories) or "any category"
    parts = [f"categories {categories}", f"mrd {response.mrd}", f"denominator {response.denominator}"]
    if response.by_day is not None:
        parts.append(f"by study day {response.by_day}")
    return "; ".join([*parts, f"treatment_scope {response.scope}"])
