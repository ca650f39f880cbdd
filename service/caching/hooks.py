"""The hooks of the analysis routes (statistics, plots, evidence, reconciliation): each answer
carries a weak ETag made of the data's version (service.caching.versions) and the normalised
request (path, query parameters sorted by name, the caller's scope), so that

- a repeat of a request whose data has not changed is served from this process's store
  without computing again;
- `If-None-Match` with the current ETag is answered 304, without a body;
- any committed write to the study (or, across studies, to any study) changes the version, and
  so the ETag and the store key: nothing stale is served.

The version is read before the answer is computed: a write committed in between can make the
answer newer than its version says, never older. It is also written into each JSON answer
(`data_version`), so that a number can be traced to its data. With `data_cut=<id>` the answer is
computed on the cut's frozen data (service.data_cuts.reading), its version is the cut's, and the
answer is kept for the cut's release package (service.data_cuts.analyses)."""

import hashlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response
from litestar.datastructures import ResponseHeader, State
from litestar.serialization import get_serializer

from service.access.scope import current_scope
from service.access.statement import state_scope
from service.caching.schemas import DataVersion
from service.caching.store import Answer, AnswerStore
from service.caching.versions import data_version
from service.common.request_checks import check_request
from service.data_cuts import analyses, reading
from service.data_cuts.analyses import AnalysisRequest
from service.observability import metrics

DATA_VERSION = "Data-Version"
DOCUMENTED = [
    ResponseHeader(
        name="ETag",
        description="Weak validator of this answer: the data's version and the normalised request. Send it back "
        "in `If-None-Match` to get 304 while no write has changed the data.",
        documentation_only=True,
    ),
    ResponseHeader(
        name=DATA_VERSION,
        description="The version of the data the answer was computed on: `s<n>.c<m>` (the last audit record of "
        "the study, and of the shared catalogues), `a<n>` (the last audit record, for answers across studies) or "
        "`cut:<id>:<sha256>` (a data cut).",
        documentation_only=True,
    ),
]


@dataclass(frozen=True, slots=True)
class _Pending:
    store: AnswerStore
    key: str
    etag: str
    version: DataVersion
    not_modified: bool
    # On a data cut: the request as its release package lists it, and where to keep the answer.
    on_cut: tuple[State, AnalysisRequest] | None


_PENDING: ContextVar[_Pending | None] = ContextVar("analysis_answer", default=None)


def _scope_signature() -> str:
    """Everything about the caller that can change an answer: for a grant holder, the sites open
    to it for rows and for analyses (whether counts are withheld follows from them) and the
    minimum count; a global role sees everything."""
    scope = current_scope()
    if scope.everything:
        return f"{scope.purpose}|all"
    parts = [scope.purpose, str(scope.min_count), ",".join(sorted(map(str, scope.studies)))]
    for purpose in ("rows", "analysis"):
        for study, sites in sorted(scope.sites(purpose).items(), key=lambda item: str(item[0])):
            opened = "all" if sites is None else ",".join(sorted(map(str, sites)))
            parts.append(f"{purpose}:{study}={opened}")
    return "|".join(parts)


def _request_key(request: Request[Any, Any, Any]) -> str:
    query = sorted(request.query_params.multi_items(), key=lambda item: item[0])  # stable: repeats keep order
    return f"{request.url.path}?{urlencode(query)}|{_scope_signature()}"


def _matches(header: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match against the current ETag."""
    if header is None:
        return False
    opaque = etag.removeprefix("W/")
    tags = (t.strip() for t in header.split(","))
    return any(t == "*" or t.removeprefix("W/") == opaque for t in tags)


async def before_analysis(request: Request[Any, Any, Any]) -> Response[Any] | None:
    _PENDING.set(None)
    await check_request(request)  # this hook replaces the app's: its checks first
    if request.method not in ("GET", "HEAD"):
        return None
    cut = await reading.enter(request)
    if cut is not None:
        version = DataVersion(
            source="cut",
            version=cut.version,
            audit_head=cut.audit_head,
            audit_records=cut.audit_records,
            data_cut=cut.id,
            sha256=cut.sha256,
        )
    else:
        study_id = request.path_params.get("study_id")
        async with request.app.state.session_factory() as session:
            version = await data_version(session, study_id if isinstance(study_id, UUID) else None)
    key = _request_key(request)
    etag = f'W/"{version.version}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"'
    store: AnswerStore = request.app.state.analysis_answers
    pending = _Pending(
        store,
        f"{version.version}\n{key}",
        etag,
        version,
        _matches(request.headers.get("if-none-match"), etag),
        (request.app.state, analyses.describe(request, cut.id)) if cut is not None else None,
    )
    _PENDING.set(pending)
    answer = store.get(pending.key)
    if answer is None:
        metrics.ANALYSIS_ANSWERS.labels("computed").inc()
        return None
    metrics.ANALYSIS_ANSWERS.labels("stored").inc()
    return Response(answer.body, media_type=answer.media_type)


async def after_analysis(response: Response[Any]) -> Response[Any]:
    response = await state_scope(response)
    pending = _PENDING.get()
    _PENDING.set(None)
    if pending is None:
        return response
    response.headers[DATA_VERSION] = pending.version.version
    if (response.status_code or 200) != 200 or type(response) is not Response:
        return response  # problems, redirects and streams are not stored and carry no validator
    content = response.content
    if hasattr(content, "data_version"):
        content.data_version = pending.version
    if not isinstance(content, bytes):
        # Encoded here as Litestar would (its serializer knows numpy's scalars), to be stored.
        media_type = str(response.media_type)
        content = response.render(content, media_type, get_serializer(response.response_type_encoders))
        response.content = content
    response.headers["ETag"] = pending.etag
    # Answers depend on the caller's grants: a shared cache must not keep them for others.
    response.headers["Cache-Control"] = "private, no-cache"
    pending.store.put(pending.key, Answer(content, str(response.media_type)))
    if pending.on_cut is not None:
        await analyses.record(*pending.on_cut, content, str(response.media_type))
    if pending.not_modified:
        metrics.ANALYSIS_ANSWERS.labels("not_modified").inc()
        return Response(b"", status_code=304, headers=dict(response.headers))
    return response
