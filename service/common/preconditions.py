"""Optimistic concurrency: every record's ETag is its version; PATCH and DELETE must send it
back in If-Match (RFC 9110 §13.1.1). Missing → 428 (RFC 6585), stale → 412."""

from typing import Annotated, Any

from litestar.exceptions import HTTPException
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_412_PRECONDITION_FAILED, HTTP_428_PRECONDITION_REQUIRED

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        max_length=200,
        description="The ETag of the version being changed (from GET, POST or a previous PATCH); `*` matches any.",
    ),
]


IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        max_length=200,
        description="ETags the client holds; 304 Not Modified, without a body, when the record's current ETag is one of them (or `*`).",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    if if_match is None or not if_match.strip():
        raise HTTPException(
            status_code=HTTP_428_PRECONDITION_REQUIRED,
            detail="If-Match is required: send the ETag of the version you are changing.",
        )
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if "*" not in tags and etag(current_version) not in tags:
        raise HTTPException(
            status_code=HTTP_412_PRECONDITION_FAILED,
            detail=f"The record has changed: its ETag is now {etag(current_version)}. Read it again and retry.",
            headers={"ETag": etag(current_version)},
        )


def not_modified(if_none_match: str | None, current_version: int) -> bool:
    """RFC 9110 §13.1.2: weak comparison, so `W/"3"` matches `"3"`."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag(current_version) in tags


def etag_headers(record: Any) -> dict[str, str]:
    return {"ETag": etag(record.version)}


ChangeReason = Annotated[
    str | None,
    HeaderParameter(
        name="X-Change-Reason",
        max_length=500,
        description="Why the record changes (kept in the audit trail).",
    ),
]


def require_reason(required: bool, reason: str | None) -> None:
    if required and not (reason or "").strip():
        raise HTTPException(
            status_code=HTTP_428_PRECONDITION_REQUIRED,
            detail="X-Change-Reason is required to change or delete patient-level records.",
        )
