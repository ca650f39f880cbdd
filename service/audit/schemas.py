from datetime import datetime
from typing import Any
from uuid import UUID

from service.common.schemas import Output, page_struct


class AuditEntry(Output):
    seq: int
    recorded_at: datetime
    actor: str
    actor_role: str
    action: str
    resource_type: str
    resource_id: UUID
    changes: dict[str, Any]
    reason: str | None
    study_id: UUID | None
    access_grant: dict[str, Any] | None
    prev_hash: str
    hash: str


AuditPage = page_struct(AuditEntry, "AuditPage")
