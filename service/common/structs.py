"""Derives the PATCH and response bodies from a create body, so the three never drift apart."""

from datetime import datetime
from typing import Any, get_type_hints
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from service.common.schemas import Input

# Names of response structs: the OpenAPI post-processing marks all their fields required,
# since responses always carry every field (null where unknown).
RESPONSE_STRUCTS: set[str] = set()
# Response struct name -> fields present only when the request asked for them (`include=`).
ONLY_WHEN_ASKED: dict[str, set[str]] = {}


def update_struct(create: type[msgspec.Struct], name: str, exclude: tuple[str, ...] = ()) -> Any:
    """Every field of `create` (but `exclude`) made optional: UNSET leaves it unchanged."""
    hints = get_type_hints(create, include_extras=True)
    fields = [
        (field, hints[field] | UnsetType, UNSET) for field in create.__struct_fields__ if field not in exclude
    ]
    return msgspec.defstruct(name, fields, bases=(Input,), kw_only=True, module=create.__module__)


def read_struct(
    create: type[msgspec.Struct], name: str, extra: list[tuple[Any, ...]] | None = None, **config: Any
) -> Any:
    """The stored record: the create fields plus the server-owned id, version and timestamps."""
    fields: list[Any] = [
        ("id", UUID),
        ("version", int),
        ("created_at", datetime),
        ("updated_at", datetime),
        *(extra or []),
    ]
    struct = msgspec.defstruct(
        name,
        fields,
        bases=(create,),
        kw_only=True,
        forbid_unknown_fields=False,
        module=create.__module__,
        **config,
    )
    RESPONSE_STRUCTS.add(name)
    return struct


def merged_update_struct(
    creates: tuple[type[msgspec.Struct], ...], name: str, exclude: tuple[str, ...] = ()
) -> Any:
    """One PATCH body covering the fields of several variants of a tagged union."""
    fields: dict[str, Any] = {}
    for create in creates:
        hints = get_type_hints(create, include_extras=True)
        for field in create.__struct_fields__:
            if field not in exclude and field not in fields:
                fields[field] = hints[field]
    return msgspec.defstruct(
        name,
        [(field, hint | UnsetType, UNSET) for field, hint in fields.items()],
        bases=(Input,),
        kw_only=True,
        module=creates[0].__module__,
    )
