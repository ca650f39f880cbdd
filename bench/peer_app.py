"""The peer: the benchmark's requests answered the way a typical FastAPI + SQLModel application
would answer them — what a team would otherwise write — so that the service is measured against
it as well as against the raw limit (bench/raw_app.py).

It is written as the FastAPI and SQLModel tutorials teach: an async engine, a session per request
through a dependency, the token checked by a dependency, ORM entities selected and returned
through a `response_model`, the page's total by a second `count()` query, the create as an entity
added and committed (with the same audit record and idempotency key as the raw app writes, so
that the work is the same), and the analyses as ORM column queries aggregated in Python with the
service's own estimators. Same tables (service.db.models), same data, same answers' content.

Run: python bench/peer_app.py DATABASE_URL PORT (a URL as the service takes it)."""

import hashlib
import json
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Response
from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlmodel import Field, SQLModel, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.analytics.survival.estimators import kaplan_meier, log_rank
from service.db.models import AdverseEvent, ApiToken, AuditRecord, Outcome, Patient

engine = create_async_engine(sys.argv[1] if len(sys.argv) > 1 else "sqlite+aiosqlite://", pool_size=5)
app = FastAPI()


async def get_session() -> AsyncIterator[AsyncSession]:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


async def current_user(session: Session, authorization: Annotated[str, Header()] = "") -> str:
    digest = hashlib.sha256(authorization.partition(" ")[2].encode()).hexdigest()
    token = (await session.execute(select(ApiToken).where(ApiToken.token_hash == digest))).scalars().first()
    if token is None or token.revoked_at is not None:
        raise HTTPException(401)
    return token.name


User = Annotated[str, Depends(current_user)]


class PatientPublic(SQLModel):
    id: uuid.UUID
    study_id: uuid.UUID
    arm_id: uuid.UUID | None
    subject_code: str
    age_years: float | None
    sex: str | None
    diagnosis: str
    diagnosis_subtype: str | None
    disease_status: str | None
    ecog: int | None
    risk_group: str | None
    wbc_10e9_per_l: float | None
    hemoglobin_g_per_l: float | None
    platelets_10e9_per_l: float | None
    marrow_blasts_pct: float | None
    peripheral_blasts_pct: float | None
    genetic_findings: list[str]
    markers: list[dict[str, Any]]
    notes: str | None
    icd10_code: str | None
    icdo3_morphology: str | None
    age_capped: bool
    version: int
    created_at: datetime
    updated_at: datetime
    provenance: list[dict[str, Any]]


class PatientPage(SQLModel):
    items: list[PatientPublic]
    total: int
    limit: int
    offset: int


class AdverseEventCreate(SQLModel):
    patient_id: uuid.UUID
    term: str = Field(min_length=1, max_length=200)
    grade: int | None = Field(default=None, ge=1, le=5)
    grading_system: str | None = None
    onset_day: int | None = None
    resolution_day: int | None = None
    outcome: str | None = None


class AdverseEventPublic(AdverseEventCreate):
    id: uuid.UUID
    version: int


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/patients/{patient_id}", response_model=PatientPublic)
async def read_patient(patient_id: uuid.UUID, session: Session, user: User) -> Patient:
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise HTTPException(404)
    return patient


@app.get("/api/v1/patients", response_model=PatientPage)
async def list_patients(
    session: Session, user: User, study_id: uuid.UUID, diagnosis: str, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    where = (Patient.study_id == study_id, Patient.diagnosis == diagnosis)
    total = (await session.execute(select(func.count()).select_from(Patient).where(*where))).scalar_one()
    items = (
        (
            await session.execute(
                select(Patient).where(*where).order_by(col(Patient.id)).offset(offset).limit(limit)
            )
        )
        .scalars()
        .all()
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@app.post("/api/v1/adverse-events", response_model=AdverseEventPublic, status_code=201)
async def create_adverse_event(
    body: AdverseEventCreate,
    session: Session,
    user: User,
    response: Response,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> AdverseEvent:
    if await session.get(Patient, body.patient_id) is None:
        raise HTTPException(422)
    event = AdverseEvent.model_validate(body)
    session.add(event)
    await session.flush()
    record = AdverseEventPublic.model_validate(event, from_attributes=True).model_dump(mode="json")
    changes = {k: [None, v] for k, v in record.items() if v is not None}
    if engine.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(7300421)"))
    previous = (
        await session.execute(select(AuditRecord.hash).order_by(col(AuditRecord.seq).desc()).limit(1))
    ).scalar()
    prev = previous or "0" * 64
    content = json.dumps({"changes": changes, "prev_hash": prev, "actor": user}, sort_keys=True).encode()
    session.add(
        AuditRecord(
            recorded_at=datetime.now(UTC),
            actor=user,
            actor_role="curator",
            action="create",
            resource_type="adverse_event",
            resource_id=event.id,
            changes=changes,
            prev_hash=prev,
            hash=hashlib.sha256(content).hexdigest(),
            hash_alg="sha256",
        )
    )
    if idempotency_key:
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (actor, key, request_hash, status_code, response_body, created_at) "
                "VALUES (:actor, :key, :hash, 201, :body, :at)"
            ),
            {
                "actor": user,
                "key": idempotency_key,
                "hash": hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
                "body": json.dumps(record),
                "at": datetime.now(UTC),
            },
        )
    await session.commit()
    response.headers["Location"] = f"/api/v1/adverse-events/{event.id}"
    return event


@app.get("/api/v1/studies/{study_id}/adverse-event-incidence")
async def incidence(study_id: uuid.UUID, session: Session, user: User) -> list[list[Any]]:
    rows = await session.execute(
        select(AdverseEvent.patient_id, AdverseEvent.term, AdverseEvent.grade, Patient.arm_id)
        .join(Patient, col(Patient.id) == col(AdverseEvent.patient_id))
        .where(Patient.study_id == study_id)
    )
    worst: dict[tuple[uuid.UUID, str], tuple[Any, int]] = {}
    for patient_id, term, grade, arm_id in rows:
        key = (patient_id, term.lower())
        grade = grade or 0
        if key not in worst or grade > worst[key][1]:
            worst[key] = (arm_id, grade)
    counts = Counter((term, str(arm), grade) for (_, term), (arm, grade) in worst.items())
    return [[term, arm, grade, n] for (term, arm, grade), n in counts.items()]


@app.get("/api/v1/studies/{study_id}/survival")
async def survival(study_id: uuid.UUID, session: Session, user: User) -> dict[str, Any]:
    patients = await session.execute(
        select(Patient.id, Patient.arm_id, Patient.last_recorded_day).where(Patient.study_id == study_id)
    )
    deaths = dict(
        (
            await session.execute(
                select(Outcome.patient_id, func.min(Outcome.study_day))
                .join(Patient, col(Patient.id) == col(Outcome.patient_id))
                .where(
                    Patient.study_id == study_id,
                    Outcome.kind == "event",
                    Outcome.event_type == "death",
                    col(Outcome.study_day).is_not(None),
                )
                .group_by(col(Outcome.patient_id))
            )
        ).all()
    )
    groups: dict[Any, tuple[list[float], list[bool]]] = {}
    for patient_id, arm_id, last_day in patients:
        end = deaths.get(patient_id, last_day)
        if end is None:
            continue
        times, events = groups.setdefault(arm_id, ([], []))
        times.append(float(end) - 1.0)
        events.append(patient_id in deaths)
    samples = [(np.array(t), np.array(e)) for t, e in groups.values()]
    curves = []
    for times_, events_ in samples:
        km = kaplan_meier(times_, events_)
        curves.append({"time": km.time.tolist(), "surv": km.surv.tolist(), "lower": km.lower.tolist()})
    test = log_rank(samples)
    return {"curves": curves, "p": test.p_value if test else None}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
