"""The audit trail, read-only: GET /api/v1/audit (admin). Nothing in the API writes or deletes it."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from service.audit.queries import audit_filters, list_entries, stream_entries
from service.audit.schemas import AuditPage
from service.auth.middleware import requires
from service.common.controller import Limit, Offset, next_link
from service.common.filters import Condition
from service.common.types import NO_NUL
from service.db.models import as_utc
from service.db.session import DbSession
from service.errors import RuleViolation

ISO_MOMENT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
# A string, parsed here: as a datetime, Litestar would also take a bare number as a timestamp.
Moment = Annotated[
    str | None,
    QueryParameter(
        pattern=ISO_MOMENT,
        max_length=40,
        description="ISO 8601 date or date-time; UTC unless an offset is given.",
    ),
]


def _moment(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        # as_utc inside: 9999-12-31T23:59:59-14:00 is a calendar date-time whose UTC is past year 9999.
        return as_utc(datetime.fromisoformat(value))
    except ValueError as exc:
        # The pattern fixes the shape; the calendar (no 2024-02-30) is a rule, as for partial dates.
        raise RuleViolation(f"{value} is not a calendar date-time", field=field) from exc
    except OverflowError as exc:
        raise RuleViolation(
            f"{value} is outside the representable range (years 1-9999 in UTC)", field=field
        ) from exc


Actor = Annotated[
    str | None,
    QueryParameter(
        pattern=NO_NUL, max_length=100, description="The principal: a token name or `oidc:<sub>`."
    ),
]
StudyFilter = Annotated[
    UUID | None, QueryParameter(description="Records of this study (its own, its arms', sites', patients'…).")
]
ActionFilter = Annotated[
    Literal["create", "update", "delete"] | None, QueryParameter(description="The operation.")
]
ResourceType = Annotated[
    str | None,
    QueryParameter(pattern=NO_NUL, max_length=40, description="e.g. patient, adverse_event"),
]


def selection(
    resource_type: ResourceType = None,
    resource_id: FromQuery[UUID | None] = None,
    actor: Actor = None,
    study_id: StudyFilter = None,
    action: ActionFilter = None,
    since: Moment = None,
    until: Moment = None,
) -> list[Condition]:
    """The records asked for: the same query parameters for the page and the stream."""
    return audit_filters(
        resource_type, resource_id, actor, _moment(since, "since"), _moment(until, "until"), study_id, action
    )


class AuditController(Controller):
    path = "/audit"
    tags = ["Audit"]
    guards = [requires("admin")]
    dependencies = {"selection": Provide(selection, sync_to_thread=False)}

    @get(
        "/",
        operation_id="listAuditRecords",
        summary="The audit trail, oldest first",
        description="Every create, update and delete with actor, UTC time from the database, each changed field's old and new value, the reason given in X-Change-Reason, and the hash chain.",
    )
    async def list_audit_records(
        self,
        request: Request,  # type: ignore[type-arg]
        db_session: DbSession,
        selection: NamedDependency[list[Condition]],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Response[AuditPage]:  # type: ignore[valid-type]
        items, total = await list_entries(db_session, selection, limit, offset)
        return Response(
            AuditPage(items=items, total=total, limit=limit, offset=offset),
            headers=next_link(request, limit, offset, total),
        )

    @get(
        "/stream",
        operation_id="streamAuditRecords",
        summary="The whole (filtered) audit trail as NDJSON, oldest first",
        description="The same filters as the paged list, every matching record, one JSON object per line; read in "
        "batches, so a long log streams without holding the database for the reader.",
        media_type="application/x-ndjson",
    )
    async def stream_audit_records(self, state: State, selection: NamedDependency[list[Condition]]) -> Stream:
        return Stream(stream_entries(state.session_factory, selection), media_type="application/x-ndjson")
