"""Token management (admin only). The secret is in the create response and nowhere else."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, JSONBody
from msgspec import Meta
from sqlmodel import col, func, select

from service.access.grants import Grant, GrantList
from service.auth.middleware import requires
from service.auth.tokens import Role, issue, revoke
from service.common.controller import Limit, Offset, next_link
from service.common.schemas import Input, Output, page_struct
from service.db.models import ApiToken, as_utc
from service.db.session import DbSession
from service.errors import NotFound

TokenName = Annotated[
    str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$", examples=["curator-alice"])
]


class TokenCreate(Input):
    """A global `role`, or `grants` on studies (and their sites): exactly one of the two."""

    name: TokenName
    role: Role | None = None
    grants: GrantList | None = None
    expires_in_days: (
        Annotated[int, Meta(ge=1, le=3650, description="Omit for a token that does not expire.")] | None
    ) = None


class Token(Output):
    id: UUID
    name: str
    role: str | None
    grants: list[Grant] | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


TokenPage = page_struct(Token, "TokenPage")


class IssuedToken(Token):
    token: Annotated[str, Meta(description="The secret: shown once, never stored.")]


T = TypeVar("T", bound=Token)


def _view(row: ApiToken, cls: type[T], **extra: str) -> T:
    return cls(
        id=row.id,
        name=row.name,
        role=row.role,
        grants=None if row.grants is None else msgspec.convert(row.grants, list[Grant]),
        created_at=as_utc(row.created_at),
        expires_at=None if row.expires_at is None else as_utc(row.expires_at),
        revoked_at=None if row.revoked_at is None else as_utc(row.revoked_at),
        **extra,
    )


class TokenController(Controller):
    path = "/tokens"
    tags = ["Tokens"]
    guards = [requires("admin")]

    @post(
        "/",
        operation_id="createToken",
        summary="Issue a token (the secret is shown once)",
        response_headers=[
            ResponseHeader(name="Location", description="URL of the token", documentation_only=True)
        ],
    )
    async def create_token(
        self, request: Request[Any, Any, Any], db_session: DbSession, data: JSONBody[TokenCreate]
    ) -> Response[IssuedToken]:
        expires = datetime.now(UTC) + timedelta(days=data.expires_in_days) if data.expires_in_days else None
        row, secret = await issue(db_session, data.name, data.role, expires, data.grants)
        return Response(
            _view(row, IssuedToken, token=secret),
            status_code=201,
            headers={"Location": f"{request.url.path.rstrip('/')}/{row.id}"},
        )

    @get("/", operation_id="listTokens", summary="List tokens (never their secrets)")
    async def list_tokens(
        self, request: Request[Any, Any, Any], db_session: DbSession, limit: Limit = 50, offset: Offset = 0
    ) -> Response[TokenPage]:  # type: ignore[valid-type]
        # A handful of tokens: a count and a page, two statements.
        total = int(await db_session.scalar(select(func.count()).select_from(ApiToken)) or 0)
        page = select(ApiToken).order_by(col(ApiToken.id)).limit(limit).offset(offset)
        rows = (await db_session.scalars(page)).all()
        return Response(
            TokenPage(items=[_view(row, Token) for row in rows], total=total, limit=limit, offset=offset),
            headers=next_link(request, limit, offset, total),
        )

    @delete("/{id:uuid}", operation_id="revokeToken", summary="Revoke a token (kept, marked revoked)")
    async def revoke_token(
        self, request: Request[Any, Any, Any], db_session: DbSession, id: FromPath[UUID]
    ) -> None:
        row = await db_session.get(ApiToken, id)
        if row is None:
            raise NotFound(f"token {id} does not exist")
        await revoke(db_session, row)
        # This process stops accepting it now; other processes within TOKEN_CACHE_SECONDS.
        request.app.state.token_cache.clear()
