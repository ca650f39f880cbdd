"""Possible duplicate patients: the same person reported in two studies (a case report and a
later series, say). Pairs from different studies with the same diagnosis are scored on the
fields that agree and disagree; a curator records the decision as a patient link."""

from collections import defaultdict
from itertools import combinations
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.access.scope import current_scope
from service.db import models
from service.evidence.schemas import DuplicateCandidate, DuplicateCandidates, FieldMatch

WEIGHTS = {
    "sex": 1.0,
    "age": 2.0,
    "diagnosis_subtype": 1.0,
    "genetic_findings": 2.0,
    "agents": 1.0,
    "institution": 1.0,
    "dates": 1.0,
}


def study_year(study: Any) -> int | None:
    for value in (study.start_date, (study.publication or {}).get("year"), study.end_date):
        if value:
            return int(str(value)[:4])
    return None


def _period(study: Any) -> tuple[int, int] | None:
    start = study.start_date or study.end_date
    end = study.end_date or study.start_date
    return (int(start[:4]), int(end[:4])) if start and end else None


def compare(a: Any, b: Any, agents: dict[Any, set[str]]) -> tuple[list[FieldMatch], list[FieldMatch]]:
    """Fields that match and fields that conflict between two patients (with their studies)."""
    matched: list[FieldMatch] = []
    conflicting: list[FieldMatch] = []

    def record(field: str, same: bool, left: Any, right: Any) -> None:
        (matched if same else conflicting).append(
            FieldMatch(
                field=field, a=None if left is None else str(left), b=None if right is None else str(right)
            )
        )

    pa, pb, sa, sb = a.patient, b.patient, a.study, b.study
    if pa.sex and pb.sex and "unknown" not in (pa.sex, pb.sex):
        record("sex", pa.sex == pb.sex, pa.sex, pb.sex)
    if pa.age_years is not None and pb.age_years is not None:
        ya, yb = study_year(sa), study_year(sb)
        drift = abs(ya - yb) + 1 if ya is not None and yb is not None else 3
        record("age", abs(pa.age_years - pb.age_years) <= drift, pa.age_years, pb.age_years)
    if pa.diagnosis_subtype and pb.diagnosis_subtype:
        record(
            "diagnosis_subtype",
            pa.diagnosis_subtype.lower() == pb.diagnosis_subtype.lower(),
            pa.diagnosis_subtype,
            pb.diagnosis_subtype,
        )
    ga = {g.lower() for g in pa.genetic_findings or []}
    gb = {g.lower() for g in pb.genetic_findings or []}
    if ga and gb:
        record("genetic_findings", bool(ga & gb), ", ".join(sorted(ga)), ", ".join(sorted(gb)))
    aa, ab = agents.get(pa.id, set()), agents.get(pb.id, set())
    if aa & ab:
        record("agents", True, ", ".join(sorted(aa)), ", ".join(sorted(ab)))
    ia, ib = sa.institution or sa.sponsor, sb.institution or sb.sponsor
    if ia and ib:
        record("institution", ia.lower() == ib.lower(), ia, ib)
    period_a, period_b = _period(sa), _period(sb)
    if period_a and period_b:
        gap = max(period_a[0], period_b[0]) - min(period_a[1], period_b[1])
        record("dates", gap <= 3, f"{period_a[0]}-{period_a[1]}", f"{period_b[0]}-{period_b[1]}")
    return matched, conflicting


async def possible_duplicates(session: AsyncSession, min_score: float) -> DuplicateCandidates:
    p, s = models.Patient, models.Study
    rows = (
        await session.execute(
            select(p, s)
            .join(s, col(s.id) == col(p.study_id))
            .where(current_scope().patient_condition("rows"))
            .order_by(col(p.id))
        )
    ).all()
    agent_rows = (
        await session.execute(
            select(models.Treatment.patient_id, models.Agent.name)
            .join(
                models.TreatmentComponent,
                col(models.TreatmentComponent.treatment_id) == col(models.Treatment.id),
            )
            .join(models.Agent, col(models.Agent.id) == col(models.TreatmentComponent.agent_id))
        )
    ).all()
    agents: dict[Any, set[str]] = defaultdict(set)
    for patient_id, name in agent_rows:
        agents[patient_id].add(name.lower())
    links = {
        frozenset((link.patient_a_id, link.patient_b_id)): link.decision
        for link in (await session.scalars(select(models.PatientLink))).all()
    }
    blocks: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        blocks[row.Patient.diagnosis].append(_Pair(row.Patient, row.Study))
    candidates = []
    for members in blocks.values():
        for a, b in combinations(members, 2):
            if a.study.id == b.study.id:
                continue
            matched, conflicting = compare(a, b, agents)
            if any(c.field == "sex" for c in conflicting):
                continue  # a different sex rules the pair out
            score = max(
                0.0, sum(WEIGHTS[m.field] for m in matched) - sum(WEIGHTS[c.field] for c in conflicting)
            ) / sum(WEIGHTS.values())
            if score < min_score:
                continue
            candidates.append(
                DuplicateCandidate(
                    patient_a_id=a.patient.id,
                    patient_b_id=b.patient.id,
                    study_a_id=a.study.id,
                    study_b_id=b.study.id,
                    subject_code_a=a.patient.subject_code,
                    subject_code_b=b.patient.subject_code,
                    score=round(score, 4),
                    matched=matched,
                    conflicting=conflicting,
                    decision=links.get(frozenset((a.patient.id, b.patient.id))),
                )
            )
    candidates.sort(key=lambda c: (-c.score, str(c.patient_a_id), str(c.patient_b_id)))
    return DuplicateCandidates(
        items=candidates,
        method={
            "blocking": "pairs of patients in different studies with the same diagnosis; a conflicting sex rules a pair out",
            "score": "(matched weights - conflicting weights) / all weights, floored at 0; weights: "
            + ", ".join(f"{k} {v:g}" for k, v in WEIGHTS.items()),
            "age": "ages may differ by the years between the studies (start date, else publication year) plus one",
            "dates": "study periods within three years of each other",
        },
    )


class _Pair:
    __slots__ = ("patient", "study")

    def __init__(self, patient: Any, study: Any) -> None:
        self.patient, self.study = patient, study
