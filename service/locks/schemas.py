from datetime import datetime
from typing import Annotated

from msgspec import Meta

from service.common.schemas import Input, Output
from service.common.types import NO_NUL


class LockRequest(Input):
    reason: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=500,
            pattern=NO_NUL,
            description="Why the study is locked (kept in the audit trail), e.g. the data cut of a paper.",
        ),
    ]


class StudyLock(Output):
    """Who locked the study, when and why: writes to it and its records answer 409 meanwhile."""

    reason: str
    locked_at: datetime
    locked_by: str
