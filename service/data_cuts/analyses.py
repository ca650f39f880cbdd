"""The analyses run on a cut, kept for its release package (service.data_cuts.package): the first
answer of each distinct request — its path and query parameters, sorted by name — with its media
type and SHA-256. An answer on a cut never changes, so the first is the answer.

Kept in the live database (the cut's own is read-only), in a transaction of its own after the
answer is made; not an audit record, since it changes no data (and so no data version). If the
write fails (the database is busy), the answer is still given and the next identical request
tries again."""

import hashlib
import logging
import zlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.datastructures import State
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from service.common.strict_query import operation_of
from service.data_cuts.reading import QUERY
from service.db import models
from service.db.session import begin_write, writer_turn
from service.errors import Busy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AnalysisRequest:
    cut_id: UUID
    operation: str
    path: str
    parameters: list[list[str]]
    actor: str

    @property
    def key(self) -> str:
        query = "&".join(f"{name}={value}" for name, value in self.parameters)
        return hashlib.sha256(f"{self.path}?{query}".encode()).hexdigest()


def describe(request: Request[Any, Any, Any], cut_id: UUID) -> AnalysisRequest:
    """The request as the package lists it: its operation, path and parameters but the cut."""
    parameters = sorted(
        ([name, value] for name, value in request.query_params.multi_items() if name != QUERY),
        key=lambda item: item[0],  # stable: a repeated parameter keeps its order
    )
    identity = request.scope.get("user")
    return AnalysisRequest(
        cut_id=cut_id,
        operation=operation_of(request),
        path=request.url.path,
        parameters=parameters,
        actor=identity.name if identity is not None else "anonymous",
    )


async def record(state: State, analysis: AnalysisRequest, body: bytes, media_type: str) -> None:
    seen: set[tuple[UUID, str]] = state.data_cut_analyses_kept
    key = analysis.key
    if (analysis.cut_id, key) in seen:
        return
    try:
        lock = state.sqlite_writers
        if lock is not None:
            async with writer_turn(lock, state.sqlite_write_wait_s):
                await _insert(state, analysis, key, body, media_type)
        else:
            await _insert(state, analysis, key, body, media_type)
    except (SQLAlchemyError, Busy) as exc:
        logger.warning(
            "analysis on data cut %s not kept for its package: %s", analysis.cut_id, type(exc).__name__
        )
        return
    seen.add((analysis.cut_id, key))


async def _insert(state: State, analysis: AnalysisRequest, key: str, body: bytes, media_type: str) -> None:
    async with state.session_factory() as session, session.begin():
        await begin_write(session)
        kept = await session.scalar(
            select(col(models.DataCutAnalysis.id)).where(
                col(models.DataCutAnalysis.cut_id) == analysis.cut_id,
                col(models.DataCutAnalysis.request_key) == key,
            )
        )
        if kept is None:
            session.add(
                models.DataCutAnalysis(
                    cut_id=analysis.cut_id,
                    request_key=key,
                    operation=analysis.operation,
                    path=analysis.path,
                    parameters=analysis.parameters,
                    media_type=media_type,
                    sha256=hashlib.sha256(body).hexdigest(),
                    size=len(body),
                    content=zlib.compress(body, 6),
                    created_by=analysis.actor,
                )
            )


async def kept(session: Any, cut_id: UUID) -> list[models.DataCutAnalysis]:
    """The analyses kept for a cut, in the order they were first run."""
    rows = await session.scalars(
        select(models.DataCutAnalysis)
        .where(col(models.DataCutAnalysis.cut_id) == cut_id)
        .order_by(col(models.DataCutAnalysis.id))
    )
    return list(rows)
