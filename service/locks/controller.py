"""`POST /studies/{id}/lock` and `DELETE /studies/{id}/lock` (admins)."""

from typing import Any
from uuid import UUID

from litestar import Controller, Request, delete, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from service.auth.middleware import requires
from service.common.preconditions import ChangeReason
from service.db.session import request_session
from service.locks import service
from service.locks.schemas import LockRequest
from service.studies.schemas import Study
from service.studies.service import StudyRepository

ADMIN = requires("admin")


class StudyLockController(Controller):
    path = "/studies/{id:uuid}/lock"
    tags = ["Studies"]

    @post(
        guards=[ADMIN],
        operation_id="lockStudy",
        summary="Lock a study: every write to it and its records answers 409 until it is unlocked",
        description="For a study whose results are being published (a data cut): creating, changing or deleting "
        "the study, its arms, sites, patients, treatments, adverse events, outcomes or reported results — through "
        "any route, imports included — is refused with 409 (`study-locked`, naming who locked it, when and why). "
        "Reading and analyses are unaffected. The lock (with its reason) is in the audit trail. 409 when already "
        "locked.",
        status_code=200,
    )
    async def lock_study(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID], data: JSONBody[LockRequest]
    ) -> Study:
        async with request_session(state, request, writing=True) as session:
            session.info.setdefault("reason", data.reason)
            await service.lock(session, id, data.reason, request.scope["user"].name)
            return await StudyRepository().read(session, id)

    @delete(
        guards=[ADMIN],
        operation_id="unlockStudy",
        summary="Unlock a study (audited; the reason goes in X-Change-Reason)",
        description="409 when the study is not locked.",
        status_code=200,
    )
    async def unlock_study(
        self,
        request: Request[Any, Any, Any],
        state: State,
        id: FromPath[UUID],
        # Declared so that the contract shows it; request_session reads it into the audit trail.
        change_reason: ChangeReason = None,
    ) -> Study:
        async with request_session(state, request, writing=True) as session:
            await service.unlock(session, id)
            return await StudyRepository().read(session, id)
