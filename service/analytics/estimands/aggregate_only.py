"""Endpoints whose events a study reports only in aggregate.

Case series often print "median OS 7.9 months" or "1-year OS 83.3 %" without saying which
patient died. A figure like that implies events (a median reached, a landmark below 100 %, a
cumulative incidence above 0); when not one event of those kinds is recorded for any patient of
the study, the patient rows are silent about events that happened, and an estimate from them
would report "no deaths". Such an endpoint is not computable from the patient rows; the
reconciliation endpoint shows the printed figure instead."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from service.analytics.estimands.endpoints import ENDPOINTS
from service.analytics.queries import _of_study, _rows
from service.db.models import Outcome, ReportedResult

# The event kinds a printed figure implies at least one of.
_SURVIVAL_KINDS = {name: frozenset(d.events) - {"gvhd"} for name, d in ENDPOINTS.items()}
_INCIDENCE_KINDS = {
    "relapse": frozenset({"relapse", "progression"}),
    "non_relapse_mortality": frozenset({"death"}),
}


def implied_kinds(definition: dict[str, Any] | None, value: float | None) -> frozenset[str]:
    """The event kinds of which a reported figure implies at least one (empty when none)."""
    if not definition or value is None:
        return frozenset()
    if definition.get("type") == "survival":
        kinds = _SURVIVAL_KINDS.get(definition.get("endpoint", ""), frozenset())
        if definition.get("statistic") == "median" or value < 100:
            return kinds
    if definition.get("type") == "cumulative_incidence" and value > 0:
        return _INCIDENCE_KINDS.get(definition.get("cause", ""), frozenset())
    return frozenset()


def unrecorded_reason(endpoint: str, reported: Sequence[Any], recorded: set[str]) -> str | None:
    """Why `endpoint` is not computable from the patient rows: a reported figure implies events
    of kinds the endpoint counts, and no patient of the study has a record of any of them."""
    counted = set(ENDPOINTS[endpoint].events)
    for result in reported:
        kinds = implied_kinds(result.definition, result.value)
        if kinds & counted and not kinds & recorded:
            unit = f" {result.unit}" if result.unit and result.unit != "%" else (result.unit or "")
            return (
                f"the study reports '{result.measure}' ({result.value:g}{unit}) only in aggregate: no "
                f"{' or '.join(sorted(kinds))} is recorded for any of its patients, so the patient rows cannot "
                "give this endpoint (zero recorded events is not zero events)"
            )
    return None


async def aggregate_only(session: AsyncSession, study_id: UUID, endpoint: str) -> str | None:
    """`unrecorded_reason` for the study, read in two small queries."""
    reported = await _rows(
        session,
        select(
            col(ReportedResult.measure),
            col(ReportedResult.value),
            col(ReportedResult.unit),
            col(ReportedResult.definition),
        )
        .where(col(ReportedResult.study_id) == study_id)
        .order_by(col(ReportedResult.id)),
    )
    if not any(implied_kinds(r.definition, r.value) for r in reported):
        return None
    recorded = await _rows(
        session,
        select(col(Outcome.event_type))
        .where(col(Outcome.kind) == "event", _of_study(col(Outcome.patient_id), study_id))
        .distinct(),
    )
    return unrecorded_reason(endpoint, reported, {r.event_type for r in recorded})
