"""Strict request bodies. Litestar converts a body to its struct leniently (a string "90" for a
number, 0 for a boolean); the registry refuses both, and refuses a body that is not UTF-8 or is
nested too deeply to decode, with 400 problem details naming the problem, before any handler
runs. (Litestar's own lenient conversion then sees only bodies this check has accepted.)"""

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

BODY_METHODS = {"POST", "PUT", "PATCH"}


def _body_type(request: Request[Any, Any, Any]) -> Any:
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    return None if field is None else field.annotation


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


async def check_body(request: Request[Any, Any, Any]) -> None:
    """Before-request hook: decode the JSON body strictly into the handler's body type."""
    if request.method not in BODY_METHODS:
        return
    target = _body_type(request)
    if target is None:
        return
    body = await request.body()
    if not body:
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationException(f"The body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        # JSON Schema counts 1.0 as an integer: integral floats become ints before the strict
        # conversion, which then refuses only real type mismatches ("90" for a number, 0 for a
        # boolean, 2.5 for an integer).
        msgspec.convert(_integral(msgspec.json.decode(body)), type=target, strict=True)
    except RecursionError:
        raise ValidationException("The body is nested too deeply to decode.") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise invalid_body(exc) from None


def invalid_body(exc: msgspec.ValidationError | msgspec.DecodeError) -> ValidationException:
    """The 400 for a body msgspec refused, naming the field where it can."""
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return ValidationException(f"The body is not valid JSON: {exc}")
    message = str(exc)
    at = re.search(r" - at `\$([^`]*)`$", message)
    where = at.group(1) if at else ""
    # The value's place: its path (`$.arms[0].label`), and an unknown field's own name.
    parts = [name or index for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", where)]
    unknown = re.match(r"Object contains unknown field `([^`]*)`", message)
    if unknown:
        parts.append(unknown.group(1))
    field = where.lstrip(".") + (
        f".{unknown.group(1)}" if unknown and where else unknown.group(1) if unknown else ""
    )
    pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
    return ValidationException(
        f"Invalid body: {message}",
        extra=[{"message": message, "key": field or None, "pointer": pointer or None, "source": "body"}],
    )
