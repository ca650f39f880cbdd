"""Cross-study evidence: per-study rows (patient-level where the study has patients, else a
reported result whose definition matches) and a pooled proportion."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, exists, func
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.access.scope import current_scope
from service.analytics import queries
from service.analytics.pooling import glmm
from service.analytics.pooling.meta import (
    MetaResult,
    Pool,
    Tau2Method,
    Transform,
    pool_glmm,
    pool_proportions,
)
from service.analytics.proportions.analysis import count_outcome
from service.analytics.proportions.intervals import CI_METHOD_NAMES, CiMethod, proportion_ci
from service.common.filters import json_list_has
from service.common.heavy import offload
from service.common.schemas import Provenance
from service.db import models
from service.evidence.duplicates import study_year
from service.evidence.labels import study_label
from service.evidence.schemas import Evidence, EvidenceRow, PooledEstimate, Pooling, RowSource
from service.evidence.sensitivity import Views, sensitivity

CASE_REPORT_GUARD = "a case report: not pooled with cohorts unless include_case_reports=true"
TAU2_NAMES = {
    "DL": "DerSimonian–Laird tau²",
    "REML": "restricted maximum-likelihood tau²",
    "PM": "Paule–Mandel tau²",
}
PoolingModel = Literal["inverse-variance", "glmm"]
MIN_STUDIES = 2  # a pooled estimate
MIN_STUDIES_PREDICTION = 3  # a prediction interval


@dataclass(frozen=True)
class Selection:
    """Which studies and patients an evidence query is about."""

    agent: str | None = None
    target: str | None = None
    diagnosis: str | None = None
    disease_status: str | None = None
    treatment_phase: str | None = None
    design: str | None = None
    study_ids: tuple[UUID, ...] = ()
    marker: str | None = None
    marker_min: float | None = None

    def treatment_condition(self, patient_id: Any) -> ColumnElement[bool] | None:
        if not (self.agent or self.target or self.treatment_phase):
            return None
        t, c, a = models.Treatment, models.TreatmentComponent, models.Agent
        conditions: list[Any] = [t.patient_id == patient_id]
        if self.treatment_phase:
            conditions.append(t.phase == self.treatment_phase)
        if self.agent or self.target:
            conditions += [c.treatment_id == t.id, c.agent_id == a.id]
            if self.agent:
                conditions.append(func.lower(a.name) == self.agent.lower())
            if self.target:
                conditions.append(json_list_has(a.targets, self.target))
        return exists().where(*conditions)

    def describe(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in msgspec.structs.asdict(_Echo(**self.__dict__)).items()
            if v not in (None, ())
        ]
        return ", ".join(parts) or "all studies and patients"


class _Echo(msgspec.Struct):
    agent: str | None
    target: str | None
    diagnosis: str | None
    disease_status: str | None
    treatment_phase: str | None
    design: str | None
    study_ids: tuple[UUID, ...]
    marker: str | None
    marker_min: float | None


async def studies_in(session: AsyncSession, selection: Selection) -> Sequence[Any]:
    s = models.Study
    # Only the studies the request may see are pooled (service.access.scope).
    statement = (
        sa_select(
            col(s.id), col(s.title), col(s.design), col(s.start_date), col(s.end_date), col(s.publication)
        )
        .where(current_scope().study_condition(s.id))
        .order_by(col(s.id))
    )
    if selection.design:
        statement = statement.where(col(s.design) == selection.design)
    if selection.study_ids:
        statement = statement.where(col(s.id).in_(selection.study_ids))
    return (await session.execute(statement)).all()


async def _selected_patients(
    session: AsyncSession, selection: Selection, study_ids: list[UUID]
) -> dict[UUID, list[Any]]:
    """Raw ids of the selected patients, by study (marker thresholds applied here, on the JSON list)."""
    p = models.Patient
    statement = (
        select(queries.raw(p.id), p.study_id, p.markers)
        .where(col(p.study_id).in_(study_ids), current_scope().patient_condition("analysis"))
        .order_by(col(p.id))
    )
    if selection.diagnosis:
        statement = statement.where(p.diagnosis == selection.diagnosis)
    if selection.disease_status:
        statement = statement.where(p.disease_status == selection.disease_status)
    treated = selection.treatment_condition(p.id)
    if treated is not None:
        statement = statement.where(treated)
    by_study: dict[UUID, list[Any]] = defaultdict(list)
    for row in (await (await session.connection()).execute(statement)).all():
        if selection.marker and not _marker_at_least(row.markers, selection.marker, selection.marker_min):
            continue
        by_study[row.study_id].append(row.id)
    return by_study


def _marker_at_least(markers: list[dict[str, Any]], name: str, minimum: float | None) -> bool:
    for marker in markers or []:
        if str(marker.get("marker", "")).lower() != name.lower():
            continue
        if minimum is None:
            return marker.get("status") != "negative" and marker.get("percent_positive") != 0
        if marker.get("percent_positive") is not None and marker["percent_positive"] >= minimum:
            return True
    return False


async def _same_person_duplicates(session: AsyncSession, selected: set[Any]) -> set[Any]:
    """Raw ids to drop so that patients linked as the same person count once (the later record goes)."""
    link = models.PatientLink
    rows = (
        await (await session.connection()).execute(
            select(
                queries.raw(link.patient_a_id).label("a"), queries.raw(link.patient_b_id).label("b")
            ).where(link.decision == "same")
        )
    ).all()
    drop: set[Any] = set()
    for a, b in rows:
        if a in selected and b in selected:
            drop.add(max(a, b, key=str))
    return drop


async def _studies_with_patients(session: AsyncSession, study_ids: list[UUID]) -> set[UUID]:
    p = models.Patient
    return set(
        (
            await session.execute(
                select(p.study_id)
                .where(col(p.study_id).in_(study_ids), current_scope().patient_condition("analysis"))
                .distinct()
            )
        ).scalars()
    )


async def uses_agent(session: AsyncSession, selection: Selection, study_ids: list[UUID]) -> set[UUID]:
    """Studies without patients count as giving the agent/target when an arm plans it."""
    if not (selection.agent or selection.target):
        return set(study_ids)
    arm, link, a = models.Arm, models.ArmAgent, models.Agent
    statement = select(arm.study_id).where(
        arm.id == link.arm_id, link.agent_id == a.id, col(arm.study_id).in_(study_ids)
    )
    if selection.agent:
        statement = statement.where(func.lower(a.name) == selection.agent.lower())
    if selection.target:
        statement = statement.where(json_list_has(a.targets, selection.target))
    return set((await session.execute(statement)).scalars())


def _row(
    study: Any, source: RowSource, x: int, n: int, ci: CiMethod, level: float, result: Any = None
) -> EvidenceRow:
    interval = proportion_ci(x, n, ci, level)
    return EvidenceRow(
        study_id=study.id,
        study_title=study.title,
        study_label=study_label(study),
        design=study.design,
        source=source,
        events=x,
        total=n,
        rate=x / n if n else None,
        ci_lower=interval[0] if interval else None,
        ci_upper=interval[1] if interval else None,
        reported_result_id=result.id if result is not None else None,
        provenance=[msgspec.convert(p, Provenance) for p in result.provenance] if result is not None else [],
        weight_percent=0.0,
        not_pooled=None,
        year=study_year(study),
    )


async def evidence(
    session: AsyncSession,
    selection: Selection,
    outcome: dict[str, Any],
    *,
    ci: CiMethod,
    conf_level: float,
    transform: Transform,
    tau2_method: Tau2Method = "DL",
    hartung_knapp: bool = False,
    include_case_reports: bool = False,
    model: PoolingModel = "inverse-variance",
) -> Evidence:
    """`outcome` is a reported-result definition (response_rate or adverse_event_incidence)."""
    studies = await studies_in(session, selection)
    ids = [s.id for s in studies]
    selected = await _selected_patients(session, selection, ids)
    all_selected = {pid for pids in selected.values() for pid in pids}
    drop = await _same_person_duplicates(session, all_selected)
    with_patients = await _studies_with_patients(session, ids)
    planned = await uses_agent(session, selection, ids)
    warnings: list[str] = []
    rows: list[EvidenceRow] = []
    for study in studies:
        if study.id in with_patients:
            patients = [p for p in selected.get(study.id, []) if p not in drop]
            if not patients:
                continue
            x, n = await count_outcome(session, study.id, patients, outcome)
            rows.append(_row(study, "patient_level", x, n, ci, conf_level))
        elif study.id in planned:
            result = await _matching_reported_result(session, study.id, outcome)
            if result is not None:
                rows.append(
                    _row(
                        study, "reported_result", result.numerator, result.denominator, ci, conf_level, result
                    )
                )
                if any(
                    [
                        selection.diagnosis,
                        selection.disease_status,
                        selection.marker,
                        selection.treatment_phase,
                    ]
                ):
                    warnings.append(
                        f"study '{study.title}': aggregate row from a reported result, patient-level filters could not be applied"
                    )
    cohorts = [r for r in rows if r.design != "case_report"]
    if cohorts and len(cohorts) < len(rows) and not include_case_reports:
        # A case report is selected for being remarkable: pooled with cohorts it pulls the
        # estimate towards its outcome with the weight of a study.
        rows = [
            r if r.design != "case_report" else msgspec.structs.replace(r, not_pooled=CASE_REPORT_GUARD)
            for r in rows
        ]
        warnings.append(
            f"{len(rows) - len(cohorts)} case report(s) shown but not pooled with the cohorts (include_case_reports=true to pool them)"
        )
    pooled_rows = [r for r in rows if r.not_pooled is None]
    # Pooling needs at least two studies with patients; one study is its own estimate, not a pool
    # (a random-effects model of one study has no between-study variance to estimate).
    poolable = [r for r in pooled_rows if r.total > 0]
    not_computable = (
        f"{len(poolable)} stud{'y' if len(poolable) == 1 else 'ies'} with patients to pool: a pooled estimate needs at least {MIN_STUDIES}"
        if len(poolable) < MIN_STUDIES
        else glmm.not_computable([r.events for r in poolable], [r.total for r in poolable])
        if model == "glmm"
        else None
    )
    pool: Pool = (
        partial(pool_glmm, conf_level=conf_level)
        if model == "glmm"
        else partial(
            pool_proportions,
            transform=transform,
            conf_level=conf_level,
            tau2_method=tau2_method,
            hksj=hartung_knapp,
        )
    )
    # The GLMM fits by numerical optimisation, once more per study for the sensitivity views:
    # CPU work, off the event loop.
    pooled, views = (None, None) if not_computable else await offload(_pool_with_views, pooled_rows, pool)
    if pooled is not None:
        weights = iter(pooled.weights) if pooled.weights else None
        rows = [
            r
            if r.not_pooled
            else msgspec.structs.replace(r, weight_percent=next(weights) if weights else None)
            for r in rows
        ]
    if views is not None and views[3]:
        warnings.append(
            f"{views[3]} sensitivity estimate(s) left out: the studies they pool have no event, or all events (the GLMM has no finite estimate)"
        )
    total = sum(r.total for r in pooled_rows)
    if not_computable:
        warnings.append(f"no pooled estimate: {not_computable}")
    prediction_reason = (
        f"a prediction interval needs at least {MIN_STUDIES_PREDICTION} studies ({len(poolable)} pooled): with fewer its t or z spread rests on a between-study variance estimated from one or no degree of freedom"
        if pooled is not None and len(poolable) < MIN_STUDIES_PREDICTION
        else None
    )
    if prediction_reason:
        warnings.append(f"no prediction interval: {prediction_reason}")
    if total < 10:
        warnings.append(f"pooling is not meaningful with {total} patients in all (< 10)")
    if pooled is not None and hartung_knapp and pooled.df < 2:
        warnings.append("the Hartung–Knapp interval with one degree of freedom is very wide (t with 1 df)")
    if drop:
        warnings.append(
            f"{len(drop)} patient(s) linked as the same person as another selected patient were counted once"
        )
    return Evidence(
        outcome=_describe(outcome),
        rows=rows,
        pooled=Pooling(
            model=model,
            transform=transform,
            tau2_method=pooled.tau2_method,
            hartung_knapp=hartung_knapp,
            random_effects=PooledEstimate(
                estimate=pooled.random.estimate, ci_lower=pooled.random.lower, ci_upper=pooled.random.upper
            ),
            prediction_interval=None
            if prediction_reason
            else PooledEstimate(
                estimate=pooled.prediction.estimate,
                ci_lower=pooled.prediction.lower,
                ci_upper=pooled.prediction.upper,
            ),
            prediction_interval_not_computable=prediction_reason,
            studies=len(poolable),
            fixed_effect=PooledEstimate(
                estimate=pooled.fixed.estimate, ci_lower=pooled.fixed.lower, ci_upper=pooled.fixed.upper
            ),
            tau2=pooled.tau2,
            i2=pooled.i2,
            q=pooled.q,
            df=pooled.df,
            p_heterogeneity=pooled.p_heterogeneity,
            continuity_corrected_rows=pooled.corrected_rows,
        )
        if pooled
        else None,
        not_computable=not_computable,
        patients_counted_once=len(drop),
        method={
            "selection": selection.describe(),
            "rows": "patient-level counts where the study has patients (the same responder and incidence rules as the per-study endpoints); otherwise a reported result whose definition matches the outcome",
            "study_ci": CI_METHOD_NAMES[ci],
            **(
                _GLMM_METHOD
                if model == "glmm"
                else _inverse_variance_method(transform, tau2_method, hartung_knapp)
            ),
            "case_reports": "pooled with the cohorts"
            if include_case_reports
            else "case reports are not pooled with cohorts unless include_case_reports=true",
            "linked_patients": "patients linked as the same person are counted once",
        },
        warnings=warnings,
        leave_one_out=views[0] if views else [],
        cumulative=views[1] if views else [],
        cumulative_not_computable=views[2] if views else None,
    )


def _inverse_variance_method(transform: Transform, tau2_method: Tau2Method, hksj: bool) -> dict[str, str]:
    return {
        "random_effects": TAU2_NAMES[tau2_method]
        + (", Hartung–Knapp–Sidik–Jonkman interval (t, k - 1 df)" if hksj else ", Wald (z) interval")
        + " on the "
        + (
            "logit scale, 0.5 added to both cells of 0% and 100% rows"
            if transform == "logit"
            else "Freeman–Tukey double-arcsine scale as metafor's PFT (half the sum of the two arcsines, variance 1/(4n + 2)), back-transformed (Miller 1978) at the harmonic mean n"
        ),
        "tau2_scale": "tau² is on the analysis scale: "
        + ("log odds" if transform == "logit" else "metafor's PFT (half the double arcsine)"),
        "fixed_effect": "inverse-variance weighted mean on the same scale",
        "prediction_interval": "mu ± crit·sqrt(tau² + se²) on the same scale, crit as the pooled interval's (metafor predict.rma), back-transformed; with 3 or more studies",
    }


_GLMM_METHOD = {
    "random_effects": "binomial-normal generalised linear mixed model (metafor rma.glmm, measure PLO): logit(p_i) = mu + u_i, u_i ~ N(0, tau²), each study's binomial likelihood as it is (no continuity correction), mu and tau² by maximum likelihood with 7-point adaptive Gauss–Hermite quadrature (lme4 glmer, nAGQ = 7); Wald (z) interval, the standard error from the observed information",
    "tau2_scale": "tau² is on the log-odds scale",
    "fixed_effect": "equal-effects logistic model (glm): the log odds of all patients pooled",
    "heterogeneity": "q is the likelihood-ratio statistic of the saturated against the equal-effects model (metafor QE.LRT); I² is tau² against the typical within-study variance of the logits (0.5 added to 0/n and n/n cells for this only), as metafor",
    "weights": "none: a GLMM has no inverse-variance weights (weight_percent is null)",
    "prediction_interval": "mu ± z·sqrt(tau² + se²) on the log-odds scale (metafor predict), back-transformed; with 3 or more studies",
    "no_estimate": "with no event, or only events, in all pooled studies the log odds is infinite: not computable",
}


def _pool_with_views(rows: list[EvidenceRow], pool: Pool) -> tuple[MetaResult | None, Views | None]:
    """The pooled estimate and its sensitivity views (in a worker process)."""

    def pool_rows(subset: list[EvidenceRow]) -> MetaResult | None:
        return pool([r.events for r in subset], [r.total for r in subset])

    pooled = pool_rows(rows)
    return pooled, sensitivity(rows, pool_rows, lambda r: r.total > 0) if pooled else None


async def _matching_reported_result(session: AsyncSession, study_id: UUID, outcome: dict[str, Any]) -> Any:
    r = models.ReportedResult
    results = (
        await session.scalars(
            select(r).where(r.study_id == study_id, col(r.arm_id).is_(None)).order_by(col(r.id))
        )
    ).all()
    for result in results:
        definition = result.definition or {}
        if result.numerator is None or not result.denominator or definition.get("type") != outcome["type"]:
            continue
        if (
            outcome["type"] == "response_rate"
            and set(definition["categories"]) == set(outcome["categories"])
            and definition["mrd"] == outcome["mrd"]
            and definition.get("treatment_scope", "study_treatment")
            == outcome.get("treatment_scope", "study_treatment")
        ):
            return result
        if (
            outcome["type"] == "adverse_event_incidence"
            and definition["term"].lower() == outcome["term"].lower()
            and definition.get("grade_min") == outcome.get("grade_min")
        ):
            return result
    return None


def _describe(outcome: dict[str, Any]) -> str:
    if outcome["type"] == "response_rate":
        categories = "/".join(outcome["categories"]) or "any category"
        return f"response: {categories}" + (" with MRD negativity" if outcome["mrd"] == "negative" else "")
    grade = f" grade >= {outcome['grade_min']}" if outcome.get("grade_min") else " any grade"
    return f"adverse event: {outcome['term']}{grade}"
