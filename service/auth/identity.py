"""Who a request acts as, once authenticated: the token's name and role."""

import msgspec


class Identity(msgspec.Struct, frozen=True):
    name: str
    role: str
