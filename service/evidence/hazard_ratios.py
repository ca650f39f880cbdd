"""Printed hazard ratios across studies, pooled on the log scale by inverse variance (metafor
rma(yi, sei)), with the same study selection, access scope and sensitivity views as the pooled
proportions (service.evidence.pooling)."""

from functools import partial
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.analytics.pooling.meta import Tau2Method
from service.analytics.pooling.ratios import RatioPool, pool_log_ratios, standard_error
from service.common.heavy import offload
from service.common.schemas import Provenance
from service.db import models
from service.evidence.duplicates import study_year
from service.evidence.pooling import (
    CASE_REPORT_GUARD,
    MIN_STUDIES,
    MIN_STUDIES_PREDICTION,
    TAU2_NAMES,
    Selection,
    studies_in,
    uses_agent,
)
from service.evidence.schemas import HazardRatioEvidence, HazardRatioRow, PooledEstimate, PooledHazardRatio
from service.evidence.sensitivity import Views, sensitivity

NO_INTERVAL = "no confidence interval printed: the standard error of its log cannot be derived"


def _several(count: int, endpoint: str) -> str:
    return (
        f"one of {count} hazard ratios of {endpoint} this study reports: pooling more than one would count its "
        "patients twice (choose one with `comparison`)"
    )


async def hazard_ratio_evidence(
    session: AsyncSession,
    selection: Selection,
    *,
    endpoint: str,
    comparison: str | None,
    conf_level: float,
    tau2_method: Tau2Method,
    hartung_knapp: bool,
    include_case_reports: bool,
) -> HazardRatioEvidence:
    studies = await studies_in(session, selection)
    ids = [s.id for s in studies]
    planned = await uses_agent(session, selection, ids)
    results = await _hazard_ratios(session, [i for i in ids if i in planned], endpoint, comparison)
    rows: list[HazardRatioRow] = []
    for study in studies:
        found = results.get(study.id, [])
        for result in found:
            level = result.ci_level or 0.95
            interval = result.ci_lower is not None and result.ci_upper is not None
            reason = (
                NO_INTERVAL
                if not interval
                else _several(len(found), endpoint)
                if len(found) > 1
                else CASE_REPORT_GUARD
                if study.design == "case_report" and not include_case_reports
                else None
            )
            rows.append(
                HazardRatioRow(
                    study_id=study.id,
                    study_title=study.title,
                    design=study.design,
                    reported_result_id=result.id,
                    comparison=result.definition["comparison"],
                    hazard_ratio=result.value,
                    ci_lower=result.ci_lower,
                    ci_upper=result.ci_upper,
                    ci_level=level,
                    standard_error=standard_error(result.ci_lower, result.ci_upper, level)
                    if interval
                    else None,
                    provenance=[msgspec.convert(p, Provenance) for p in result.provenance],
                    weight_percent=None,
                    not_pooled=reason,
                    year=study_year(study),
                )
            )
    pooled_rows = [r for r in rows if r.not_pooled is None]
    warnings: list[str] = []
    without = sum(1 for r in rows if r.not_pooled == NO_INTERVAL)
    if without:
        warnings.append(f"{without} hazard ratio(s) without an interval shown but not pooled")
    if any(r.not_pooled and r.not_pooled.startswith("one of") for r in rows):
        warnings.append(
            "a study reports several hazard ratios of this endpoint: none of them pooled (choose with `comparison`)"
        )
    if any([selection.diagnosis, selection.disease_status, selection.marker, selection.treatment_phase]):
        warnings.append(
            "hazard ratios are printed figures: the patient-level filters could not be applied to them"
        )
    not_computable = (
        f"{len(pooled_rows)} hazard ratio(s) to pool: a pooled estimate needs at least {MIN_STUDIES}"
        if len(pooled_rows) < MIN_STUDIES
        else None
    )
    pool = partial(pool_log_ratios, tau2_method=tau2_method, hksj=hartung_knapp, conf_level=conf_level)
    pooled, views = (None, None) if not_computable else await offload(_pool_with_views, pooled_rows, pool)
    if pooled is not None:
        weights = iter(pooled.weights)
        rows = [r if r.not_pooled else msgspec.structs.replace(r, weight_percent=next(weights)) for r in rows]
    else:
        warnings.append(f"no pooled estimate: {not_computable}")
    prediction_reason = (
        f"a prediction interval needs at least {MIN_STUDIES_PREDICTION} studies ({len(pooled_rows)} pooled)"
        if pooled is not None and len(pooled_rows) < MIN_STUDIES_PREDICTION
        else None
    )
    return HazardRatioEvidence(
        endpoint=endpoint,
        comparison=comparison,
        rows=rows,
        pooled=_pooled(pooled, len(pooled_rows), tau2_method, hartung_knapp, prediction_reason)
        if pooled
        else None,
        not_computable=not_computable,
        method={
            "selection": selection.describe(),
            "rows": f"reported results with a hazard_ratio definition of {endpoint}"
            + (f" and comparison '{comparison}'" if comparison else "")
            + "; a study's patient-level data are not used (a printed ratio is not recomputed)",
            "standard_error": "(log upper − log lower) / (2·z) at the interval's printed level (Cochrane Handbook 6.3.2)",
            "random_effects": TAU2_NAMES[tau2_method]
            + (
                ", Hartung–Knapp–Sidik–Jonkman interval (t, k - 1 df)"
                if hartung_knapp
                else ", Wald (z) interval"
            )
            + " on the log hazard-ratio scale, exponentiated (metafor rma(yi, sei))",
            "fixed_effect": "inverse-variance weighted mean of the log ratios",
            "prediction_interval": "mu ± crit·sqrt(tau² + se²) on the log scale, exponentiated; with 3 or more studies",
            "studies": "one hazard ratio per study: a study printing several of the endpoint pools none unless `comparison` selects one",
        },
        warnings=warnings,
        leave_one_out=views[0] if views else [],
        cumulative=views[1] if views else [],
        cumulative_not_computable=views[2] if views else None,
    )


def _pool_with_views(rows: list[HazardRatioRow], pool: Any) -> tuple[RatioPool, Views]:
    """The pooled ratio and its sensitivity views (in a worker process)."""

    def pool_rows(subset: list[HazardRatioRow]) -> RatioPool:
        return pool([r.hazard_ratio for r in subset], [r.standard_error for r in subset])  # type: ignore[no-any-return]

    return pool_rows(rows), sensitivity(rows, pool_rows, lambda r: True)


def _pooled(
    pooled: RatioPool, k: int, tau2_method: Tau2Method, hartung_knapp: bool, prediction_reason: str | None
) -> PooledHazardRatio:
    def estimate(p: Any) -> PooledEstimate:
        return PooledEstimate(estimate=p.estimate, ci_lower=p.lower, ci_upper=p.upper)

    return PooledHazardRatio(
        tau2_method=tau2_method,
        hartung_knapp=hartung_knapp,
        studies=k,
        random_effects=estimate(pooled.random),
        fixed_effect=estimate(pooled.fixed),
        prediction_interval=None if prediction_reason else estimate(pooled.prediction),
        prediction_interval_not_computable=prediction_reason,
        p_value=pooled.p_value,
        tau2=pooled.tau2,
        i2=pooled.i2,
        q=pooled.q,
        df=pooled.df,
        p_heterogeneity=pooled.p_heterogeneity,
    )


async def _hazard_ratios(
    session: AsyncSession, study_ids: list[UUID], endpoint: str, comparison: str | None
) -> dict[UUID, list[Any]]:
    r = models.ReportedResult
    found: dict[UUID, list[Any]] = {}
    for result in (
        await session.scalars(select(r).where(col(r.study_id).in_(study_ids)).order_by(col(r.id)))
    ).all():
        definition = result.definition or {}
        if definition.get("type") != "hazard_ratio" or definition.get("endpoint") != endpoint:
            continue
        if comparison and definition["comparison"].casefold() != comparison.casefold():
            continue
        found.setdefault(result.study_id, []).append(result)
    return found
