"""The reported form of a fitted proportional-hazards model (Cox, Fine–Gray, time-varying): one
term per coefficient with its hazard ratio and Wald interval, and the three global tests."""

import math
from collections.abc import Sequence

import numpy as np

from service.analytics.lazy_scipy import stats
from service.analytics.regression.cox import CoxFit
from service.analytics.regression.cox_firth import FirthCoxFit
from service.analytics.schemas import ChiSquareTest, CoxTerm


def hazard_terms(names: Sequence[str], coef: np.ndarray, se: np.ndarray, conf_level: float) -> list[CoxTerm]:
    """exp(coef) with the interval exp(coef ± z·se) and the two-sided Wald p of each coefficient."""
    z = float(stats.norm.isf((1 - conf_level) / 2))
    return [
        CoxTerm(
            term=name,
            coef=float(b),
            se=float(s),
            hazard_ratio=math.exp(b),
            lower=math.exp(b - z * s),
            upper=math.exp(b + z * s),
            z=float(b / s),
            p_value=float(2 * stats.norm.sf(abs(b / s))),
        )
        for name, b, s in zip(names, coef, se, strict=True)
    ]


def firth_terms(names: Sequence[str], fit: FirthCoxFit) -> list[CoxTerm]:
    """Firth's estimates with their profile penalised-likelihood intervals and penalised
    likelihood-ratio p-values (z stays the Wald ratio coef / se, for reference)."""
    se = np.sqrt(np.diag(fit.var))
    return [
        CoxTerm(
            term=name,
            coef=float(b),
            se=float(s),
            hazard_ratio=math.exp(b),
            lower=float(low),
            upper=float(high),
            z=float(b / s),
            p_value=float(p),
        )
        for name, b, s, low, high, p in zip(
            names, fit.coef, se, fit.ci_lower, fit.ci_upper, fit.p, strict=True
        )
    ]


def global_tests(fit: CoxFit) -> list[ChiSquareTest]:
    """Likelihood-ratio, Wald and score tests of every coefficient = 0, as summary(coxph)."""
    return [
        ChiSquareTest(test=name, chi_square=value, df=fit.df, p_value=fit.p(value))
        for name, value in (
            ("likelihood_ratio", fit.likelihood_ratio),
            ("wald", fit.wald),
            ("score", fit.score),
        )
    ]
