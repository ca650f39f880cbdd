"""Who a request acts as, once authenticated: the token's (or principal's) name, and its global
role or its grants."""

import msgspec

from service.access.grants import Grant


class Identity(msgspec.Struct, frozen=True):
    name: str
    role: str | None  # None: the identity holds grants instead
    grants: tuple[Grant, ...] = ()

    @property
    def actor_role(self) -> str:
        """The role as the audit trail records it."""
        return self.role or "grants"
