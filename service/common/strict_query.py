"""Strict query parameters. Litestar ignores a query parameter a handler does not declare, so a
typo (`studyid=`, `categorie=`) silently gives the unfiltered list or the default analysis with
status 200. Every operation refuses, with 400 problem details, a parameter it does not know
(naming the closest known one) and a single-valued parameter given more than once.

What each operation accepts is read once, at start, from the OpenAPI document the app serves,
so the contract and the check cannot disagree."""

import difflib
import re
from typing import Any

from litestar import Request
from litestar.exceptions import ValidationException

# operationId (and "METHOD /path") -> query parameter name -> whether it may repeat (an array parameter)
QueryParameters = dict[str, dict[str, bool]]
STATE_KEY = "query_parameters"
OPERATION_IDS_KEY = "operation_ids"


def _is_array(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(_is_array(s) for s in (*schema.get("oneOf", ()), *schema.get("anyOf", ())))


def accepted_query_parameters(document: dict[str, Any]) -> QueryParameters:
    """Every operation's query parameters, from the OpenAPI document."""
    table: QueryParameters = {}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            accepted = {
                p["name"]: _is_array(p.get("schema", {}))
                for p in operation.get("parameters", [])
                if p.get("in") == "query"
            }
            table[operation["operationId"]] = accepted
            # also by method and path, for a handler serving two paths (an SVG plot and its .png)
            table[f"{method.upper()} {path}"] = accepted
    return table


def operation_of(request: Request[Any, Any, Any]) -> str:
    """The request's operationId, also for a handler serving two paths (whose id is made per path)."""
    operation = request.route_handler.operation_id
    if isinstance(operation, str):
        return operation
    ids: dict[str, str] = request.app.state.get(OPERATION_IDS_KEY) or {}
    return ids.get(_method_and_path(request), _method_and_path(request))


def _method_and_path(request: Request[Any, Any, Any]) -> str:
    """ "METHOD /path" as the contract writes the path."""
    template = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", request.scope.get("path_template", ""))
    return f"{request.method} {template}"


def operation_ids(document: dict[str, Any]) -> dict[str, str]:
    """ "METHOD /path" -> operationId, from the OpenAPI document."""
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in document.get("paths", {}).items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def check_query(request: Request[Any, Any, Any]) -> None:
    """Refuse unknown and repeated single-valued query parameters (400)."""
    table: QueryParameters | None = request.app.state.get(STATE_KEY)
    operation = request.route_handler.operation_id
    if not isinstance(operation, str):  # an operation id made per path: look the path up
        operation = _method_and_path(request)
    if table is None or operation not in table:
        return  # not in the contract (the docs pages): nothing declared to hold it to
    accepted = table[operation]
    params = request.query_params
    for name in params:
        if name not in accepted:
            close = difflib.get_close_matches(name, list(accepted), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(accepted)) or "none"
            shown = _printable(name)
            message = f"Unknown query parameter '{shown}'{hint} (this operation accepts: {known})"
            raise ValidationException(message, extra=[{"message": message, "key": shown, "source": "query"}])
        if not accepted[name] and len(params.getall(name)) > 1:
            message = (
                f"Query parameter '{name}' is given {len(params.getall(name))} times; it takes one value"
            )
            raise ValidationException(message, extra=[{"message": message, "key": name, "source": "query"}])


def _printable(name: str, limit: int = 64) -> str:
    """The name as echoed back: control characters escaped, at most `limit` characters."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in name)
    return shown if len(shown) <= limit else shown[:limit] + "…"
