"""Estimands: for every statistic, which patients and assessments count, and why the others do
not. Survival, time-to-event rows, plots, response rates, reconciliation and evidence all read
their decisions from here, so one rule set decides.

Time-to-event endpoints (per patient: event, censored, or excluded with a reason), each defined
once in ENDPOINTS and read by survival, time-to-event rows, plots, competing risks, Cox models and
reconciliation:
- OS: origin study day 1; event = the first dated death; otherwise censored at the last recorded
  study day (latest day of any outcome, adverse event or treatment).
- RFS: origin = the first dated CR/CRi/CRh assessment of the study treatment (see below); event =
  the first dated relapse, progression or death after it; otherwise censored at the last
  recorded study day. A patient whose only CR/CRi/CRh assessments of the study treatment are
  undated reached remission on an unknown day: the origin is undated (`UNDATED_ORIGIN`), which
  follows the undated-event rule below.
- EFS: origin study day 1; events = induction failure (response assessments of the study
  treatment, dated or not, none of them CR/CRi/CRh: an event on day 1, the ELN convention),
  relapse, progression or death on or after day 1. A response assessment is one with a category
  (or candidate categories): an MRD-only assessment says nothing about remission. A CR whose day
  is unknown still means the patient reached CR, so it rules out induction failure. A patient
  with no response assessment and no other event is excluded: induction failure can be neither
  counted nor ruled out.
- GRFS: origin study day 1; events = relapse, progression, death, grade 3–4 acute GVHD, or
  chronic GVHD needing systemic therapy, on or after day 1 (Holtan et al. 2015).
- CRD (duration of CR): origin = the first dated CR/CRi assessment of the study treatment;
  events = relapse or progression after it; a death without relapse is censored (at the last
  recorded day, which is the death's).
- An event that counts for the endpoint but has no study day (and no dated event of the endpoint
  before it) is never turned into a censoring: the patient is marked `UNDATED_EVENT`, and every
  method applies one rule to such patients (service.analytics.estimands.undated): by default every
  estimate they could change is withheld as not computable; on request they are excluded,
  counted and named, with a warning. Leaving them out silently would drop an event and bias
  S(t) upward by an amount the data cannot bound.

Response assessments (which ones a response rate counts, with `treatment_scope=study_treatment`):
- an assessment that names the treatment it evaluates counts when that treatment is on study;
- otherwise it is placed by its study day: it counts from day 1 up to the start of the first
  dated off-study treatment (salvage, later lines); before day 1, after that start, or with no
  study day at all it does not count, and each is counted by reason in the response's warnings."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import String, and_, case, cast, func, literal, literal_column, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.analytics.queries import _of_study, _rows, as_text, raw, study_patients, uncast_raw
from service.db.models import Outcome, Patient, Treatment

Scope = Literal["study_treatment", "any_treatment"]
Endpoint = Literal["OS", "RFS", "EFS", "GRFS", "CRD"]
# Patient attributes a test may be stratified by.
Stratum = Literal["sex", "diagnosis", "disease_status", "risk_group"]
REMISSION = ("CR", "CRh", "CRi")
RFS_EVENTS = ("relapse", "progression", "death")
# Which event a patient's first event is when several fall on one day: relapse first (a death on
# the day of relapse is a death from relapse, not a non-relapse death).
EVENT_PRIORITY = ("relapse", "progression", "gvhd", "death")
INDUCTION_FAILURE = "induction_failure"


@dataclass(frozen=True)
class EndpointDefinition:
    origin: Literal["day_1", "remission"]
    events: tuple[str, ...]  # event types counted
    remission: tuple[str, ...] = REMISSION  # the response categories that start a remission origin
    induction_failure: bool = False
    description: str = ""


ENDPOINTS = {
    "OS": EndpointDefinition(
        "day_1", ("death",), description="origin study day 1; event = first dated death"
    ),
    "RFS": EndpointDefinition(
        "remission",
        RFS_EVENTS,
        description="origin = first dated CR/CRi/CRh assessment of the study treatment; event = first dated relapse, progression or death after it",
    ),
    "EFS": EndpointDefinition(
        "day_1",
        RFS_EVENTS,
        induction_failure=True,
        description="origin study day 1; events = induction failure (response assessments of the study treatment with a category, dated or not, none CR/CRi/CRh: an event on day 1, as ELN; MRD-only assessments are not response assessments, an undated CR rules induction failure out), relapse, progression or death on or after day 1; patients with no response assessment and no other event are excluded",
    ),
    "GRFS": EndpointDefinition(
        "day_1",
        (*RFS_EVENTS, "gvhd"),
        description="origin study day 1; events = relapse, progression, death, grade 3-4 acute GVHD or chronic GVHD needing systemic therapy, on or after day 1",
    ),
    "CRD": EndpointDefinition(
        "remission",
        ("relapse", "progression"),
        remission=("CR", "CRi"),
        description="duration of CR: origin = first dated CR/CRi assessment of the study treatment; event = first dated relapse or progression after it; a death without relapse is censored at the last recorded day",
    ),
}
EVENTS_OF = {name: definition.events for name, definition in ENDPOINTS.items()}

# Time-to-event exclusions.
NEVER_IN_REMISSION = "never reached the endpoint's remission (CR/CRi/CRh; CR/CRi for CRD) on an assessment of the study treatment"
DEATH_BEFORE_DAY_1 = "death recorded before study day 1"
UNDATED_EVENT = "an event of the endpoint has no study day (it would otherwise be censored)"
NO_DAY = "no record with a study day"
NOTHING_AFTER_ORIGIN = "no record on or after the origin day"
NOT_ASSESSED = (
    "no response assessment of the study treatment: induction failure can be neither counted nor ruled out"
)
UNDATED_ORIGIN = (
    "reached the endpoint's remission only on assessments without a study day: the origin is undated"
)
CENSORED = "censored at last recorded study day"

# Response-assessment exclusions (scope=study_treatment).
OFF_STUDY_TREATMENT = "assessment of an off-study treatment"
BEFORE_DAY_1 = "assessment before study day 1 (before the study treatment)"
AFTER_OFF_STUDY = "assessment after the start of off-study therapy"
NOT_PLACEABLE = "assessment with neither a study day nor a treatment it evaluates"


def assessment_exclusion(on_study: Any, study_day: Any, off_study_from: Any) -> Any:
    """SQL: why an assessment does not evaluate the study treatment (null when it does)."""
    return case(
        (on_study.is_(True), null()),
        (on_study.is_(False), literal(OFF_STUDY_TREATMENT)),
        (study_day.is_(None), literal(NOT_PLACEABLE)),
        (study_day < 1, literal(BEFORE_DAY_1)),
        (and_(off_study_from.is_not(None), study_day > off_study_from), literal(AFTER_OFF_STUDY)),
        else_=null(),
    )


def assessment_in_scope(on_study: Any, study_day: Any, off_study_from: Any) -> Any:
    """SQL: the assessment evaluates the study treatment, i.e. `assessment_exclusion` is null,
    written as plain comparisons (never null). Postgres cannot estimate a filter on a CASE and
    guesses that 1 row in 200 passes: at 100,000 patients it took the study's ~50,000 patients
    in remission for a few hundred, joined them by a nested loop, and RFS's rows took 158 s
    instead of about 3 (CRD's 58 s). The two forms agree on every combination
    (tests/integration/test_estimands.py)."""
    return or_(
        on_study.is_(True),
        and_(
            on_study.is_(None),
            study_day.is_not(None),
            study_day >= 1,
            or_(off_study_from.is_(None), study_day <= off_study_from),
        ),
    )


def _off_study_starts() -> Any:
    """Per patient, the first study day >= 1 on which an off-study treatment started."""
    return (
        select(col(Treatment.patient_id).label("pid"), func.min(col(Treatment.start_day)).label("day"))
        .where(col(Treatment.on_study).is_(False), col(Treatment.start_day) >= 1)
        .group_by(col(Treatment.patient_id))
        .subquery()
    )


async def fetch_response_assessments(session: AsyncSession, study_id: UUID) -> Sequence[Any]:
    """Every response assessment of the study: (patient_id, study_day, category,
    possible_categories, mrd_status, timepoint_label, scope_exclusion), where `scope_exclusion`
    says why it does not evaluate the study treatment (null when it does)."""
    off_study = _off_study_starts()
    statement = (
        select(
            raw(col(Outcome.patient_id)),
            col(Outcome.study_day),
            col(Outcome.category),
            col(Outcome.possible_categories),
            col(Outcome.mrd_status),
            col(Outcome.timepoint_label),
            assessment_exclusion(col(Treatment.on_study), col(Outcome.study_day), off_study.c.day).label(
                "scope_exclusion"
            ),
        )
        .outerjoin(Treatment, col(Treatment.id) == col(Outcome.treatment_id))
        .outerjoin(off_study, off_study.c.pid == col(Outcome.patient_id))
        .where(col(Outcome.kind) == "response", _of_study(col(Outcome.patient_id), study_id))
    )
    return await _rows(session, statement)


def in_categories(categories: Sequence[str]) -> Any:
    """SQL: the assessment's category is in the set, or it is uncertain and every candidate is.

    Candidates are a JSON list stored as the service serialises it (`["CR", "CRi"]`): removing
    each wanted quoted name and the separators leaves `[]` exactly when all are wanted."""
    text = cast(col(Outcome.possible_categories), String)
    stripped: Any = text
    for category in categories:
        stripped = func.replace(stripped, f'"{category}"', "")
    stripped = func.replace(func.replace(stripped, ",", ""), " ", "")
    return or_(
        col(Outcome.category).in_(categories),
        and_(
            col(Outcome.category).is_(None),
            text != literal_column("'[]'"),
            stripped == literal_column("'[]'"),
        ),
    )


def _qualifying(kinds: tuple[str, ...]) -> Any:
    """SQL: an event the endpoint counts; a GVHD event only when grade 3-4 acute or chronic
    needing systemic therapy (GRFS, Holtan et al. 2015)."""
    plain = [k for k in kinds if k != "gvhd"]
    conditions: list[Any] = [col(Outcome.event_type).in_(plain)]
    if "gvhd" in kinds:
        conditions.append(
            and_(
                col(Outcome.event_type) == "gvhd",
                or_(
                    and_(col(Outcome.gvhd_kind) == "acute", col(Outcome.gvhd_grade) >= 3),
                    and_(col(Outcome.gvhd_kind) == "chronic", col(Outcome.gvhd_systemic_therapy).is_(True)),
                ),
            )
        )
    return or_(*conditions)


# _first_event's key: day * RANKS + the event's rank (at most RANKS kinds, EVENT_PRIORITY and an
# induction failure, with room for more).
RANKS = 8


def _first_event(after: Any) -> Any:
    """Per patient, the first event day (`event_day`) and its type (`event_type`; relapse before
    progression, GVHD and death on the same day, see EVENT_PRIORITY), in one grouped pass over
    `after`: the smallest of day * RANKS + rank, which orders (day, rank) as written for every
    whole day, negative ones too, while the rank stays below RANKS; the day is its own minimum,
    the rank what the key adds to it.
    Both other forms took minutes at 100,000 patients on one of the two databases: the events
    joined back to their own minimum computed `after` twice, and Postgres, which cannot estimate
    a join on an aggregate, nested one computation inside the other; numbered per patient by a
    window instead, SQLite scanned the numbered rows once for every patient they were joined
    to (no index on a window's result)."""
    order = (INDUCTION_FAILURE, *EVENT_PRIORITY)
    assert len(order) <= RANKS
    rank = case(*((after.c.kind == kind, i) for i, kind in enumerate(order)), else_=len(order))
    grouped = (
        select(
            after.c.pid,
            func.min(after.c.day).label("day"),
            func.min(after.c.day * RANKS + rank).label("key"),
        )
        .group_by(after.c.pid)
        .subquery()
    )
    first_rank = grouped.c.key - grouped.c.day * RANKS
    kind = case(*((first_rank == i, literal(k)) for i, k in enumerate(order)))
    return select(grouped.c.pid, grouped.c.day.label("event_day"), kind.label("event_type")).subquery()


def _assessments_in_scope(pts: Any, *columns: Any) -> Any:
    """SELECT `columns` FROM the response assessments of `pts`' patients that assess the study
    treatment (assessment_in_scope): the base of the per-patient remission and
    response statements, which add their own conditions and group by patient."""
    off_study = _off_study_starts()
    in_scope = assessment_in_scope(col(Treatment.on_study), col(Outcome.study_day), off_study.c.day)
    return (
        select(*columns)
        .join(pts, pts.c.id == col(Outcome.patient_id))
        .outerjoin(Treatment, col(Treatment.id) == col(Outcome.treatment_id))
        .outerjoin(off_study, off_study.c.pid == col(Outcome.patient_id))
        .where(col(Outcome.kind) == "response", in_scope)
    )


def _remission_origins(pts: Any, categories: tuple[str, ...]) -> Any:
    """Per patient who reached `categories` on an assessment of the study treatment: the first
    study day of such an assessment (null when every one of them is undated)."""
    first: Any = func.min(col(Outcome.study_day)).label("origin_day")
    return (
        _assessments_in_scope(pts, col(Outcome.patient_id).label("pid"), first)
        .where(in_categories(categories))
        .group_by(col(Outcome.patient_id))
        .subquery()
    )


def has_category() -> Any:
    """SQL: the assessment states a response category, definite or uncertain. An assessment with
    only an MRD result is not a response assessment: it cannot tell remission from failure."""
    candidates = func.coalesce(cast(col(Outcome.possible_categories), String), literal_column("'[]'"))
    return or_(col(Outcome.category).is_not(None), candidates != literal_column("'[]'"))


def _response_assessed(pts: Any) -> Any:
    """Per patient with a response assessment of the study treatment (dated or not: a CR on an
    unknown day is still a CR): whether any of them is CR/CRi/CRh (1) or none (0)."""
    remission = func.max(case((in_categories(REMISSION), 1), else_=0)).label("remission")
    return (
        _assessments_in_scope(pts, col(Outcome.patient_id).label("pid"), remission)
        .where(has_category())
        .group_by(col(Outcome.patient_id))
        .subquery()
    )


# Patient attributes an analysis may stratify or adjust by.
PATIENT_COLUMNS = {
    "sex": Patient.sex,
    "diagnosis": Patient.diagnosis,
    "disease_status": Patient.disease_status,
    "risk_group": Patient.risk_group,
    "age_years": Patient.age_years,
    "wbc_10e9_per_l": Patient.wbc_10e9_per_l,
    "hemoglobin_g_per_l": Patient.hemoglobin_g_per_l,
    "platelets_10e9_per_l": Patient.platelets_10e9_per_l,
    "marrow_blasts_pct": Patient.marrow_blasts_pct,
}


def _analysis_statement(
    study_id: UUID, endpoint: str, attributes: tuple[str, ...] = (), group_value: Any = None
) -> Any:
    """One row per patient with everything a time-to-event analysis needs, computed in SQL:
    (id, subject_code, arm_id, group_value, origin_day, end_day, event, event_type, reason_code,
    *attributes), ids raw. `reason_code` indexes EXCLUSIONS: why a patient is left out (null
    when in). `group_value`: SQL over Patient placing the patient in a group (default: the arm)."""
    definition = ENDPOINTS[endpoint]
    # last_recorded_day is kept by the database on every write of outcomes, adverse events and
    # treatments (see the Patient model).
    patient_columns = select(
        col(Patient.id),
        col(Patient.subject_code),
        col(Patient.arm_id),
        col(Patient.last_recorded_day),
        (raw(col(Patient.arm_id)) if group_value is None else group_value).label("group_value"),
        *(col(PATIENT_COLUMNS[a]) for a in attributes),
    ).where(study_patients(study_id))
    qualifying = _qualifying(definition.events)
    # Counted over the table itself, not `pts`: for OS `pts` is an aggregate, which a join
    # would compute a second time.
    undated = (
        select(col(Outcome.patient_id).label("pid"))
        .join(Patient, col(Patient.id) == col(Outcome.patient_id))
        .where(
            study_patients(study_id),
            col(Outcome.kind) == "event",
            qualifying,
            col(Outcome.study_day).is_(None),
        )
        .group_by(col(Outcome.patient_id))
        .subquery()
    )
    dated_events = and_(col(Outcome.kind) == "event", col(Outcome.study_day).is_not(None))
    not_assessed: Any = literal(False)
    never_in_remission: Any = literal(False)
    pts = patient_columns.subquery()
    if endpoint == "OS":
        # Each patient's first dated death in the same pass over the study's patients that reads
        # them (grouped by the patient's key). Measured at 100,000 patients on Postgres (median
        # of 9): 91 ms, against 113 ms for the deaths grouped apart and joined, which scanned and
        # hashed the study's patients twice; on SQLite the same (240-250 ms either way).
        deaths_of_patient = and_(
            col(Outcome.patient_id) == col(Patient.id), dated_events, col(Outcome.event_type) == "death"
        )
        pts = (
            patient_columns.add_columns(func.min(col(Outcome.study_day)).label("event_day"))
            .outerjoin(Outcome, deaths_of_patient)
            .group_by(col(Patient.id))
            .subquery()
        )
        first: Any = pts
        origin: Any = literal(1)
        event_type: Any = case((first.c.event_day.is_not(None), literal("death")))
        joins: list[Any] = []
        early = first.c.event_day < 1
    elif definition.origin == "remission":
        origins = _remission_origins(pts, definition.remission)
        after = (
            select(
                col(Outcome.patient_id).label("pid"),
                col(Outcome.study_day).label("day"),
                col(Outcome.event_type).label("kind"),
            )
            .join(origins, origins.c.pid == col(Outcome.patient_id))
            .where(dated_events, qualifying, col(Outcome.study_day) > origins.c.origin_day)
            .subquery()
        )
        first = _first_event(after)
        origin = origins.c.origin_day
        never_in_remission = origins.c.pid.is_(None)
        event_type = first.c.event_type
        joins = [(origins, origins.c.pid == pts.c.id), (first, first.c.pid == pts.c.id)]
        early = literal(False)
    else:
        # Composite endpoints from day 1: events before day 1 are history, not outcomes.
        events: Any = (
            select(
                col(Outcome.patient_id).label("pid"),
                col(Outcome.study_day).label("day"),
                col(Outcome.event_type).label("kind"),
            )
            .join(pts, pts.c.id == col(Outcome.patient_id))
            .where(dated_events, qualifying, col(Outcome.study_day) >= 1)
        )
        joins = []
        if definition.induction_failure:
            assessed = _response_assessed(pts)
            failures = select(
                assessed.c.pid, literal(1).label("day"), literal(INDUCTION_FAILURE).label("kind")
            ).where(assessed.c.remission == 0)
            events = events.union_all(failures)
            joins.append((assessed, assessed.c.pid == pts.c.id))
            not_assessed = assessed.c.pid.is_(None)
        after = events.subquery()
        first = _first_event(after)
        origin = literal(1)
        event_type = first.c.event_type
        joins.append((first, first.c.pid == pts.c.id))
        early = literal(False)
    last_day = pts.c.last_recorded_day
    has_event = first.c.event_day.is_not(None)
    # Why a patient is left out, as a small number (sorted and grouped cheaply; the text of
    # each is put back by `reason_text`), null when the patient is in.
    reason = case(
        (never_in_remission, 0),
        (origin.is_(None), 6),
        (and_(has_event, early), 1),
        (and_(~has_event, undated.c.pid.is_not(None)), 2),
        (and_(~has_event, not_assessed), 5),
        (and_(~has_event, last_day.is_(None)), 3),
        (and_(~has_event, last_day < origin), 4),
    )
    statement = select(
        raw(pts.c.id),
        pts.c.subject_code,
        raw(pts.c.arm_id),
        pts.c.group_value,
        origin.label("origin_day"),
        func.coalesce(first.c.event_day, last_day).label("end_day"),
        case((has_event, 1), else_=0).label("event"),
        event_type.label("event_type"),
        reason.label("reason_code"),
        *(pts.c[a] for a in attributes),
    ).select_from(pts)
    for table, condition in joins:
        statement = statement.outerjoin(table, condition)
    return statement.outerjoin(undated, undated.c.pid == pts.c.id)


EXCLUSIONS = (
    NEVER_IN_REMISSION,
    DEATH_BEFORE_DAY_1,
    UNDATED_EVENT,
    NO_DAY,
    NOTHING_AFTER_ORIGIN,
    NOT_ASSESSED,
    UNDATED_ORIGIN,
)
# The exclusions of a patient known to be in the analysis set whose time is unknown.
UNDATED = (UNDATED_EVENT, UNDATED_ORIGIN)


def reason_text(code: Any) -> Any:
    """SQL: the text of an exclusion code of `_analysis_statement` (null stays null)."""
    return case(*((code == i, literal(text)) for i, text in enumerate(EXCLUSIONS))).label("reason")


async def fetch_analysis_rows(
    session: AsyncSession,
    study_id: UUID,
    endpoint: str,
    attributes: tuple[str, ...] = (),
    group_value: Any = None,
) -> Sequence[Any]:
    """The per-patient analysis rows (see `_analysis_statement`) in creation order, with the
    exclusion reason as text (`reason`) and the patient `attributes` asked for."""
    rows = _analysis_statement(study_id, endpoint, attributes, group_value).subquery()
    statement = select(*(c for c in rows.c if c.key != "reason_code"), reason_text(rows.c.reason_code))
    return await _rows(session, statement.order_by(rows.c.id))


async def fetch_analysis_counts(
    session: AsyncSession, study_id: UUID, endpoint: str, stratum: str | None = None, group_value: Any = None
) -> Sequence[Any]:
    """The same rows counted by (group_value, origin_day, end_day, event, reason[, stratum]): a
    Kaplan–Meier curve needs only these counts, so 100,000 patients come back as a few thousand
    rows. With `stratum`, each row also carries that patient attribute (column `stratum`)."""
    attributes = (stratum,) if stratum else ()
    group_value, was_text = uncast_raw(raw(col(Patient.arm_id)) if group_value is None else group_value)
    rows = _analysis_statement(study_id, endpoint, attributes, group_value).subquery()
    key = [rows.c.group_value, rows.c.origin_day, rows.c.end_day, rows.c.event, rows.c.reason_code]
    if stratum:
        key.append(rows.c[stratum].label("stratum"))
    counted = select(*key, func.count().label("n")).group_by(*key).subquery()
    statement = select(
        as_text(counted.c.group_value, was_text),
        counted.c.origin_day,
        counted.c.end_day,
        counted.c.event,
        reason_text(counted.c.reason_code),
        counted.c.n,
        *([counted.c.stratum] if stratum else []),
    )
    return await _rows(session, statement, counted=True)


async def fetch_undated_patients(
    session: AsyncSession, study_id: UUID, endpoint: str, group_value: Any = None
) -> Sequence[Any]:
    """(id, subject_code, group_value) of the patients whose time on the endpoint is unknown (an
    undated event or origin), ids raw, in creation order."""
    rows = _analysis_statement(study_id, endpoint, (), group_value).subquery()
    undated_codes = [EXCLUSIONS.index(reason) for reason in UNDATED]
    statement = (
        select(rows.c.id, rows.c.subject_code, rows.c.group_value)
        .where(rows.c.reason_code.in_(undated_codes))
        .order_by(rows.c.id)
    )
    return await _rows(session, statement)
