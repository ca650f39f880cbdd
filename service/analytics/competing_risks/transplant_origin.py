"""Cumulative incidence from the transplant: graft-versus-host disease with relapse and death
competing, and non-relapse mortality with relapse competing, timed from each patient's first
dated allogeneic transplant (Aalen–Johansen, Gray's variance and test, as R cmprsk::cuminc on
those times).

Conventions (echoed in the method block):
- the origin is the first dated `hsct` event; patients never transplanted are not in the
  analysis set (counted); one whose transplant has no study day has an undated origin, and one
  whose only qualifying event after it has no day has an undated event: both follow the
  undated-event rule (withheld by default, or excluded and named);
- events on or after the transplant day count (a death on the day of transplant is a
  non-relapse death at time 0); earlier ones are history;
- GVHD: the first acute GVHD of grade ≥ `gvhd_grade_min` (default 2: grade II–IV), or with
  `gvhd_kind=chronic` any chronic GVHD, or with `any` either; relapse, progression or death first
  compete; on one day relapse comes before GVHD and GVHD before death (the registry's order);
- non-relapse mortality: death with no relapse or progression before it or on its day;
- no event: censored at the last recorded study day."""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics import queries
from service.analytics.competing_risks.analysis import incidence_result
from service.analytics.estimands import endpoints as estimands
from service.analytics.estimands.groups import Groups, GroupSpec, group_patients, resolve, without_landmark
from service.analytics.estimands.time_scale import TimeUnit
from service.analytics.estimands.undated import UndatedEvents, undated_rule
from service.analytics.schemas import CumulativeIncidence
from service.common.heavy import offload

TransplantOutcome = Literal["gvhd", "non_relapse_mortality"]
GvhdKind = Literal["acute", "chronic", "any"]
NOT_TRANSPLANTED = "no transplant recorded (the origin of this analysis)"
UNDATED_TRANSPLANT = "the transplant has no study day: the origin is undated"
NO_FOLLOW_UP = "no record on or after the transplant day"
RELAPSE = ("relapse", "progression")
PRIORITY = ("relapse", "progression", "gvhd", "death")


@dataclass(frozen=True)
class Row:
    """One patient on the transplant's time scale, shaped as the rows the incidence reads."""

    id: Any
    subject_code: str
    group_value: Any
    origin_day: int
    end_day: int
    event: bool
    event_type: str | None
    reason: str | None


async def transplant_incidence(
    session: AsyncSession,
    study_id: UUID,
    *,
    outcome: TransplantOutcome,
    gvhd_kind: GvhdKind,
    gvhd_grade_min: int,
    landmark_days: list[float],
    conf_level: float,
    time_unit: TimeUnit,
    group_by: GroupSpec,
    undated_events: UndatedEvents = "withhold",
) -> CumulativeIncidence:
    await queries.require_study(session, study_id)
    groups = await resolve(
        session, study_id, without_landmark(group_by, "cumulative incidence from transplant")
    )
    patients = await queries.fetch_patient_follow_up(session, study_id, group_by.column())
    transplants = await queries.fetch_transplants(session, study_id)
    events = await queries.fetch_events(session, study_id, (*RELAPSE, "death", "gvhd"))
    # Building 100,000 patients' rows is CPU work: off the event loop with the estimates.
    return await offload(
        _incidence,
        study_id,
        patients,
        transplants,
        events,
        groups,
        outcome,
        gvhd_kind,
        gvhd_grade_min,
        landmark_days,
        conf_level,
        time_unit,
        group_by.method(),
        undated_events,
    )


def _incidence(
    study_id: UUID,
    patients: Sequence[Any],
    transplant_rows: Sequence[Any],
    event_rows: Sequence[Any],
    groups: Groups,
    outcome: TransplantOutcome,
    gvhd_kind: GvhdKind,
    gvhd_grade_min: int,
    landmark_days: list[float],
    conf_level: float,
    time_unit: TimeUnit,
    groups_method: str,
    undated_events: UndatedEvents,
) -> CumulativeIncidence:
    transplants = {t.patient_id: t for t in transplant_rows}
    events: dict[Any, list[Any]] = defaultdict(list)
    for e in event_rows:
        events[e.patient_id].append(e)
    rows = [
        _row(p, transplants.get(p.id), events[p.id], outcome, gvhd_kind, gvhd_grade_min) for p in patients
    ]
    grouping = group_patients(rows, groups)
    name = "GVHD" if outcome == "gvhd" else "non-relapse mortality"
    rule = undated_rule(
        undated_events,
        f"{name} after transplant",
        ((grouping.group_of[r.id], r.subject_code) for r in rows if r.reason in estimands.UNDATED),
    )
    causes = (
        {1: "gvhd", 2: "relapse_or_death"}
        if outcome == "gvhd"
        else {1: "non_relapse_mortality", 2: "relapse"}
    )
    return incidence_result(
        study_id,
        rows,
        grouping,
        rule,
        landmark_days,
        conf_level,
        time_unit,
        groups_method,
        None,
        causes,
        _cause_of(outcome),
        _method(outcome, gvhd_kind, gvhd_grade_min),
    )


def _qualifies(event: Any, outcome: TransplantOutcome, kind: GvhdKind, grade_min: int) -> bool:
    if event.event_type != "gvhd":
        return True
    if outcome != "gvhd":
        return False  # GVHD neither causes nor competes with non-relapse mortality
    acute = bool(event.gvhd_kind == "acute" and (event.gvhd_grade or 0) >= grade_min)
    chronic = bool(event.gvhd_kind == "chronic")
    return {"acute": acute, "chronic": chronic, "any": acute or chronic}[kind]


def _row(
    patient: Any,
    transplant: Any,
    events: list[Any],
    outcome: TransplantOutcome,
    kind: GvhdKind,
    grade_min: int,
) -> Row:
    def row(origin: int, end: int, event: Any, reason: str | None) -> Row:
        return Row(
            patient.id,
            patient.subject_code,
            patient.group_value,
            origin,
            end,
            event is not None,
            None if event is None else event.event_type,
            reason,
        )

    if transplant is None:
        return row(0, 0, None, NOT_TRANSPLANTED)
    if transplant.first_day is None:
        return row(0, 0, None, estimands.UNDATED_ORIGIN)
    origin = int(transplant.first_day)
    counted = [e for e in events if _qualifies(e, outcome, kind, grade_min)]
    dated = sorted(
        (e for e in counted if e.study_day is not None and e.study_day >= origin),
        key=lambda e: (e.study_day, PRIORITY.index(e.event_type)),
    )
    if dated:
        return row(origin, int(dated[0].study_day), dated[0], None)
    if any(e.study_day is None for e in counted):
        return row(origin, origin, None, estimands.UNDATED_EVENT)
    last = patient.last_recorded_day
    if last is None or last < origin:
        return row(origin, origin, None, NO_FOLLOW_UP)
    return row(origin, int(last), None, None)


def _cause_of(outcome: TransplantOutcome) -> Callable[[Any], int]:
    """The cause code of a row: 1 the outcome, 2 the competing event, 0 censored."""
    first = "gvhd" if outcome == "gvhd" else "death"

    def cause(row: Any) -> int:
        if not row.event:
            return 0
        return 1 if row.event_type == first else 2

    return cause


def _method(outcome: TransplantOutcome, kind: GvhdKind, grade_min: int) -> dict[str, str]:
    gvhd = {
        "acute": f"acute GVHD of grade >= {grade_min}",
        "chronic": "chronic GVHD (any severity)",
        "any": f"acute GVHD of grade >= {grade_min} or chronic GVHD",
    }[kind]
    return {
        "origin": "the first dated allogeneic transplant (outcome event `hsct`); patients never transplanted are not in the analysis set",
        "causes": (
            f"gvhd = a first event that is {gvhd}; relapse_or_death = relapse, progression or death before it (on one day: relapse, then GVHD, then death)"
            if outcome == "gvhd"
            else "non_relapse_mortality = death with no relapse or progression before it or on its day; relapse = relapse or progression first"
        )
        + "; events on or after the transplant day count; no event = censored at the last recorded study day",
        "estimator": "Aalen–Johansen cumulative incidence with Gray's variance, as R cmprsk::cuminc",
        "confidence_interval": "pointwise log(-log) interval F^exp(±z·se/(F·log F)); null at 0 and 1",
        "gray_test": "Gray's (1988) test of equal cumulative incidence across groups, rho = 0, as cuminc's Tests",
        "landmarks": "the estimate of the step function at each landmark day after the transplant; null beyond the last follow-up",
    }
