"""Builds the five CRUD operations of a collection from its `Resource` description.

Every collection behaves the same way (paging, Link header, Location, 204 on delete, cascade
rule), so the handlers are written once here; each area supplies its structs, its repository,
its list filters (a dependency whose query parameters appear in the OpenAPI document) and the
fields it can be sorted by."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlmodel import col

from service.access.scope import current_scope
from service.audit.queries import audit_filters, list_entries
from service.audit.schemas import AuditPage
from service.auth.middleware import requires
from service.common.filters import Condition
from service.common.idempotency import IdempotencyKeyHeader, remember, replay_or_claim
from service.common.preconditions import (
    ChangeReason,
    IfMatch,
    IfNoneMatch,
    etag_headers,
    not_modified,
    require_reason,
)
from service.common.repository import Repository
from service.common.schemas import page_struct
from service.common.structs import ONLY_WHEN_ASKED, RESPONSE_STRUCTS
from service.db.session import DbSession, Reads, ReadSession, provide_list_read_session, read_session
from service.errors import NotFound

MAX_OFFSET = 1_000_000_000
READ, ROWS, WRITE = requires("reader"), requires("rows"), requires("curator")
# Reading a page takes plain statements: on Postgres, no transaction round trips (an item's
# read too: get_item opens them itself).
LIST_READ = {"db_session": Provide(provide_list_read_session)}

Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Page size (1–500).")]
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="Items to skip.")]


@dataclass(frozen=True)
class Include:
    """Records of another collection that a list can carry with each item (`include=`)."""

    read: Any
    repository: Repository[Any]
    parent: Any  # the child's column holding the listed record's id


# A page of 500 patients with all their records stays far below this; it bounds a pathological one.
MAX_INCLUDED = 200_000


@dataclass(frozen=True)
class Resource:
    path: str  # "/studies"
    tag: str  # "Studies"
    singular: str  # "Study": operation ids getStudy, createStudy, ...
    plural: str  # "Studies": listStudies
    read: Any
    create: Any
    update: Any
    repository: Repository[Any]
    filters: Callable[..., list[Condition]]
    sort_columns: dict[str, Any]  # sort key -> column; "created" (id order) is always available
    default_id_column: Any
    cascade: bool = True  # whether DELETE offers ?cascade=true
    reason_required: bool = False  # patient-level records: PATCH and DELETE need X-Change-Reason
    patient_level: bool = False  # rows about patients: never shown to an aggregate grant
    # Who creates, and who changes or deletes: "curator" admits curator grants (the scope then
    # decides which records); "global curator" does not (new studies, the shared catalogues).
    create_level: str = "curator"
    change_level: str = "curator"
    delete_note: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    includes: dict[str, Include] = field(default_factory=dict)


def next_link(request: Request[Any, Any, Any], limit: int, offset: int, total: int) -> dict[str, str]:
    if offset + limit >= total:
        return {}
    query = dict(request.query_params)
    query.update({"limit": str(limit), "offset": str(offset + limit)})
    return {"Link": f'<{request.url.path}?{urlencode(query)}>; rel="next"'}


def build_controller(res: Resource) -> type[Controller]:
    sort_keys = ["created", "-created"]
    for key in res.sort_columns:
        sort_keys += [key, f"-{key}"]
    SortKey = Literal[tuple(sort_keys)]  # type: ignore[valid-type]
    item = res.read
    if res.includes:
        # The listed struct plus one list per include, present only when asked for.
        item = msgspec.defstruct(
            f"{res.singular}WithRecords",
            [(name, list[spec.read] | None, None) for name, spec in res.includes.items()],  # type: ignore[name-defined]
            bases=(res.read,),
            kw_only=True,
        )
        RESPONSE_STRUCTS.add(item.__name__)
        ONLY_WHEN_ASKED[item.__name__] = set(res.includes)
    Page = page_struct(item, f"{res.singular}Page")
    include_names = "|".join(res.includes)
    IncludeParam = Annotated[
        str | None,
        QueryParameter(
            pattern=rf"^({include_names})(,({include_names}))*$",
            description=f"Comma-separated: each item then carries its {', '.join(res.includes)} "
            "(in one statement per kind, whatever the page size).",
        ),
    ]

    variants = get_args(res.read) or (res.read,)  # a tagged union (outcomes) lists each kind's fields
    tags = [v.__struct_config__.tag_field for v in variants if v.__struct_config__.tag_field]
    fields_of = [f.name for v in variants for f in msgspec.structs.fields(v) if f.name != "id"]
    field_names = list(dict.fromkeys([*tags, *fields_of]))
    FieldsParam = Annotated[
        str | None,
        QueryParameter(
            pattern=rf"^({'|'.join(field_names)})(,({'|'.join(field_names)}))*$",
            description="Comma-separated fields each item carries (`id` always, and what `include` adds); "
            "the others are left out.",
        ),
    ]

    async def list_page(
        request: Request[Any, Any, Any],
        db_session: Reads,
        filters: list[Condition],
        limit: int,
        offset: int,
        sort: str,
        include: str | None,
        fields: str | None,
    ) -> Response[Any]:
        items, total = await res.repository.list(db_session, filters, order_by(sort), limit, offset)
        if include and items:
            items = await with_included(db_session, items, dict.fromkeys(include.split(",")))
        if fields:
            kept = {"id", *fields.split(","), *(include.split(",") if include else ())}
            items = [
                {k: v for k, v in (i if isinstance(i, dict) else msgspec.to_builtins(i)).items() if k in kept}
                for i in items
            ]
        return Response(
            Page(items=items, total=total, limit=limit, offset=offset),
            headers=next_link(request, limit, offset, total),
        )

    async def with_included(session: Reads, items: list[Any], wanted: dict[str, None]) -> list[Any]:
        ids = [i.id for i in items]
        grouped: dict[str, dict[Any, list[Any]]] = {}
        for name in wanted:
            spec = res.includes[name]
            children, _ = await spec.repository.list(
                session, [col(spec.parent).in_(ids)], [col(spec.repository.model.id)], MAX_INCLUDED, 0
            )
            grouped[name] = {}
            for child in children:
                grouped[name].setdefault(getattr(child, spec.parent.key), []).append(child)
        # Plain objects: an item carries only the lists it was asked for.
        return [
            {**msgspec.to_builtins(i), **{n: msgspec.to_builtins(grouped[n].get(i.id, [])) for n in wanted}}
            for i in items
        ]

    read_guard = ROWS if res.patient_level else READ
    create_guard, change_guard = requires(res.create_level), requires(res.change_level)
    label = " ".join(res.repository.label.split("_"))
    a = "an" if label[:1] in "aeiou" else "a"  # "an arm", "an adverse event"

    def order_by(sort: str) -> list[Any]:
        descending = sort.startswith("-")
        key = sort.lstrip("-")
        id_column = res.default_id_column
        if key == "created":
            return [id_column.desc() if descending else id_column.asc()]
        column = res.sort_columns[key]
        return [column.desc() if descending else column.asc(), id_column.asc()]

    SortParam = Annotated[SortKey, QueryParameter(description="Sort key; `-` for descending.")]  # type: ignore[valid-type]

    async def list_with_includes(
        self: Controller,
        request: Request[Any, Any, Any],
        db_session: ReadSession,
        filters: NamedDependency[list[Condition]],
        limit: Limit = 50,
        offset: Offset = 0,
        sort: SortParam = "created",
        include: IncludeParam = None,
        fields: FieldsParam = None,
    ) -> Response[Page]:  # type: ignore[valid-type]
        return await list_page(request, db_session, filters, limit, offset, sort, include, fields)

    async def list_plain(
        self: Controller,
        request: Request[Any, Any, Any],
        db_session: ReadSession,
        filters: NamedDependency[list[Condition]],
        limit: Limit = 50,
        offset: Offset = 0,
        sort: SortParam = "created",
        fields: FieldsParam = None,
    ) -> Response[Page]:  # type: ignore[valid-type]
        return await list_page(request, db_session, filters, limit, offset, sort, None, fields)

    class ResourceController(Controller):
        path = res.path
        tags = [res.tag]

        list_route = get(
            "/",
            guards=[read_guard],
            operation_id=f"list{res.plural}",
            summary=f"List {res.plural.lower()}",
            description=f"Pages of {res.plural.lower()} in creation order unless `sort` says otherwise. {res.description}",
            dependencies={"filters": Provide(res.filters, sync_to_thread=False), **LIST_READ},
            response_headers=[
                ResponseHeader(
                    name="Link",
                    description='`rel="next"` when more items remain',
                    required=False,
                    documentation_only=True,
                )
            ],
        )
        list_items = list_route(list_with_includes if res.includes else list_plain)
        del list_route

        @post(
            "/",
            guards=[create_guard],
            operation_id=f"create{res.singular}",
            summary=f"Create {a} {label}",
            response_headers=[
                ResponseHeader(name="Location", description="URL of the new record", documentation_only=True),
                ResponseHeader(
                    name="ETag",
                    description="The record's version; send it back in If-Match",
                    documentation_only=True,
                ),
            ],
        )
        async def create_item(
            self,
            request: Request[Any, Any, Any],
            db_session: DbSession,
            data: JSONBody[res.create],  # type: ignore[name-defined]
            idempotency_key: IdempotencyKeyHeader = None,
        ) -> Response[res.read]:  # type: ignore[name-defined]
            replay = await replay_or_claim(request, db_session, idempotency_key)
            if replay is not None:
                return replay
            created = await res.repository.create(db_session, data)
            response = Response(
                created,
                status_code=201,
                headers={"Location": f"{request.url.path.rstrip('/')}/{created.id}", **etag_headers(created)},
            )
            if idempotency_key:
                await remember(db_session, request.scope["user"].name, idempotency_key, response)
            return response

        @get(
            "/{id:uuid}",
            guards=[read_guard],
            operation_id=f"get{res.singular}",
            summary=f"Read {a} {label}",
            response_headers=[
                ResponseHeader(
                    name="ETag",
                    description="The record's version; send it back in If-Match",
                    documentation_only=True,
                )
            ],
        )
        async def get_item(
            self,
            request: Request[Any, Any, Any],
            id: FromPath[UUID],
            if_none_match: IfNoneMatch = None,
        ) -> Response[res.read]:  # type: ignore[name-defined]
            # The reads opened here rather than by a dependency: resolving it and running its
            # cleanup group cost a record's read a tenth of its CPU (profiled). Same reads. The
            # app's state from the request: a `state` parameter is a copy made per request.
            async with read_session(request.app.state, request) as db_session:
                record = await res.repository.read(db_session, id)
            if not_modified(if_none_match, record.version):
                return Response(b"", status_code=304, headers=etag_headers(record))
            return Response(record, headers=etag_headers(record))

        @patch(
            "/{id:uuid}",
            guards=[change_guard],
            operation_id=f"update{res.singular}",
            summary=f"Change some fields of {a} {label}",
            description="Fields left out are unchanged; `null` clears an optional field. If-Match must carry the current ETag (428 without it, 412 when stale).",
            response_headers=[
                ResponseHeader(
                    name="ETag",
                    description="The record's version; send it back in If-Match",
                    documentation_only=True,
                )
            ],
        )
        async def update_item(
            self,
            db_session: DbSession,
            id: FromPath[UUID],
            data: JSONBody[res.update],  # type: ignore[name-defined]
            if_match: IfMatch = None,
            change_reason: ChangeReason = None,
        ) -> Response[res.read]:  # type: ignore[name-defined]
            require_reason(res.reason_required, change_reason)
            record = await res.repository.update(db_session, id, data, if_match)
            return Response(record, headers=etag_headers(record))

        if res.cascade:

            @delete(
                "/{id:uuid}",
                guards=[change_guard],
                operation_id=f"delete{res.singular}",
                summary=f"Delete {a} {label}",
                description=f"Refused with 409 while other records depend on it, unless `cascade=true`. {res.delete_note}",
            )
            async def delete_item(
                self,
                db_session: DbSession,
                id: FromPath[UUID],
                cascade: Annotated[
                    bool, QueryParameter(description="Also delete what depends on it.")
                ] = False,
                if_match: IfMatch = None,
                change_reason: ChangeReason = None,
            ) -> None:
                require_reason(res.reason_required, change_reason)
                await res.repository.delete(db_session, id, cascade, if_match)

        else:

            @delete(
                "/{id:uuid}",
                guards=[change_guard],
                operation_id=f"delete{res.singular}",
                summary=f"Delete {a} {label}",
                description=f"Refused with 409 while other records refer to it. {res.delete_note}",
            )
            async def delete_item(
                self,
                db_session: DbSession,
                id: FromPath[UUID],
                if_match: IfMatch = None,
                change_reason: ChangeReason = None,
            ) -> None:
                require_reason(res.reason_required, change_reason)
                await res.repository.delete(db_session, id, False, if_match)

        @get(
            "/{id:uuid}/history",
            guards=[WRITE],
            operation_id=f"get{res.singular}History",
            summary=f"Every recorded change of {a} {label}, oldest first (also after deletion)",
        )
        async def get_history(
            self,
            request: Request[Any, Any, Any],
            db_session: DbSession,
            id: FromPath[UUID],
            limit: Limit = 50,
            offset: Offset = 0,
        ) -> Response[AuditPage]:  # type: ignore[valid-type]
            if not current_scope().everything:
                # An identity with grants sees the history of the records it can see now.
                await res.repository.read(db_session, id)
            items, total = await list_entries(
                db_session, audit_filters(res.repository.label, id, None, None, None), limit, offset
            )
            if not total:
                raise NotFound(f"no {label} {id} was ever recorded")
            return Response(
                AuditPage(items=items, total=total, limit=limit, offset=offset),
                headers=next_link(request, limit, offset, total),
            )

    ResourceController.__name__ = f"{res.plural}Controller"
    ResourceController.__qualname__ = ResourceController.__name__
    return ResourceController


__all__ = ["Resource", "build_controller"]
