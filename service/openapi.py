"""Completes the OpenAPI document Litestar generates, so that it states the whole contract:

- every error an operation can give, as `application/problem+json` (Litestar documents errors
  only for handlers that list them, and as `application/json`);
- `additionalProperties: false` on bodies (Litestar does not emit msgspec's
  `forbid_unknown_fields`) and constraints on list items (Litestar drops them);
- every field of a response as required (responses always carry each field, null if unknown);
- links from each create operation to read, update and delete, for stateful testing.
"""

import re
import sys
from typing import Any, Literal, get_args, get_origin

import msgspec

from service.auth.middleware import WHY as ACCESS_RULES
from service.common.schemas import Input, Output
from service.common.structs import ONLY_WHEN_ASKED, RESPONSE_STRUCTS
from service.common.types import STUDY_DAY_DESCRIPTION
from service.errors import PROBLEM_JSON, ProblemDetails

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}
DESCRIPTIONS = {
    "400": "Malformed request or invalid parameters/body; `errors` names each offending field.",
    "404": "The record named in the path (or the data cut named by `data_cut`) does not exist or is not visible to the caller.",
    "409": "Conflicts with stored data: duplicate, or dependants still refer to the record.",
    "401": "Missing, malformed, unknown, expired or revoked bearer token (`WWW-Authenticate: Bearer`).",
    "403": "The token's role or grants may not do this (reader < curator < admin; an aggregate grant reads no patient-level row; a grant writes only inside its studies and sites).",
    "413": "The body is larger than 1 MiB.",
    "412": "If-Match does not match the current ETag: the record changed since it was read.",
    "428": "If-Match is required on PATCH and DELETE.",
    "503": "The database did not answer in time (statement timeout) or is unavailable; retry after `Retry-After` seconds.",
    "429": "More requests with this token in the last minute than the limit (`RATE_LIMIT_PER_MINUTE`, counted per replica); retry after `Retry-After` seconds.",
    "422": "Well-formed but breaks a data rule (e.g. resolution before onset, grade 5 not fatal, a direct identifier in free text or in X-Change-Reason) or refers to a record that does not exist.",
}
METHODS = ("get", "post", "patch", "put", "delete")
PLOT_OPERATIONS = {
    "getSurvivalPlot",
    "getSwimmerPlot",
    "getCumulativeIncidencePlot",
    "getEvidenceResponseRatesForestPlot",
}
# One media type per export operation (service.exchange.controller.EXPORTS): (media type, schema, suffix).
EXPORT_OPERATIONS = {
    "exportStudy": ("application/json", {"$ref": "#/components/schemas/StudyDocument"}, "json"),
    "exportStudyFhir": ("application/fhir+json", {"type": "object"}, "fhir.json"),
    "exportStudyFhirNdjson": ("application/fhir+ndjson", {"type": "string"}, "ndjson"),
    "exportStudyCsv": ("application/zip", {"type": "string", "format": "binary"}, "csv.zip"),
    "exportStudyClinicalTrialsGov": (
        "application/json",
        {"$ref": "#/components/schemas/CtgovStudy"},
        "ctgov.json",
    ),
}
IMPORT_BODIES = {"importStudy": "StudyDocument", "importClinicalTrialsGovStudy": "CtgovStudy"}
BINARY = {"schema": {"type": "string", "format": "binary"}}
# Patient-level records: changing or deleting them needs a reason (service/common/controller.py).
REASON_REQUIRED = re.compile(r"^/api/v1/(patients|treatments|adverse-events|outcomes)/\{id\}$")


def _all_subclasses(cls: type) -> list[type]:
    found: list[type] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    has_params = bool(operation.get("parameters"))
    statuses: list[str] = []
    if has_params or "requestBody" in operation:
        statuses.append("400")
    on_cut = any(
        p.get("name") == "data_cut" and p.get("in") == "query" for p in operation.get("parameters", [])
    )
    if "{" in path or on_cut:
        statuses.append("404")
    if method in ("post", "patch", "delete") or on_cut:  # a cut frozen in a format no longer loaded
        statuses.append("409")
    if method in ("post", "patch"):
        statuses += ["413", "422"]
    elif method == "delete":
        # Every write reads X-Change-Reason into the append-only audit trail, and refuses one
        # that holds a direct identifier (an e-mail address, a record number) with 422.
        statuses.append("422")
    elif method == "get" and has_params:
        statuses.append("422")  # e.g. a date-time of the right shape that is not on the calendar
    statuses.append("503")
    return statuses


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _problem_response(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    if status in ("429", "503"):
        response["headers"] = RETRY_AFTER
    return response


# Litestar drops a zero bound of an optional query parameter (it tests the bound for truth);
# these parameters are declared with ge=0 and validated as such.
_ZERO_MINIMUM_PARAMETERS = {"age_min", "age_max", "marker_min"}


def _struct_components(components: dict[str, Any]) -> dict[str, Any]:
    """msgspec's own JSON Schema for every struct Litestar put in the document.

    msgspec validates the bodies, so its schema is the exact one: Litestar's drops list-item
    constraints, zero bounds and `forbid_unknown_fields`."""
    structs = {cls.__name__: cls for cls in _all_subclasses(Input) + _all_subclasses(Output)}
    structs[ProblemDetails.__name__] = ProblemDetails
    used = [structs[name] for name in components if name in structs]
    _, generated = msgspec.json.schema_components(used, ref_template="#/components/schemas/{name}")
    for name, component in generated.items():
        struct = structs.get(name)
        if component.get("type") == "object":
            component["additionalProperties"] = False
            if struct is not None and (name in RESPONSE_STRUCTS or issubclass(struct, Output)):
                # Responses carry every field, null where unknown.
                asked = ONLY_WHEN_ASKED.get(name, set())
                component["required"] = sorted(set(component["properties"]) - asked)
    return generated


# Parent -> children created with the parent's id in the body: lets stateful tests build
# study -> arm -> patient -> treatment / adverse event / outcome chains.
CHILD_LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "createStudy": {
        "createArm": {"study_id": "$response.body#/id"},
        "createPatient": {"study_id": "$response.body#/id"},
        "createReportedResult": {"study_id": "$response.body#/id"},
    },
    "createTreatment": {
        "createAdverseEvent": {
            "patient_id": "$response.body#/patient_id",
            "treatment_id": "$response.body#/id",
        }
    },
    "createArm": {"createPatient": {"study_id": "$response.body#/study_id", "arm_id": "$response.body#/id"}},
    "createPatient": {
        "createTreatment": {"patient_id": "$response.body#/id", "components": []},
        "createAdverseEvent": {"patient_id": "$response.body#/id", "treatment_id": None},
        "createOutcome": {"patient_id": "$response.body#/id"},
    },
}


def _add_child_links(schema: dict[str, Any]) -> None:
    operations = {
        operation["operationId"]: operation
        for item in schema.get("paths", {}).values()
        for method, operation in item.items()
        if method in METHODS
    }
    for parent, children in CHILD_LINKS.items():
        links = operations[parent]["responses"]["201"].setdefault("links", {})
        for child, body in children.items():
            links[child] = {"operationId": child, "requestBody": body}


def _no_day_zero(node: Any) -> None:
    """Say in the contract that study day 0 does not exist (`not: {const: 0}`), so that clients
    and generated tests know the rule the service enforces: Litestar's schema generation drops a
    Meta's extra JSON Schema, so it is added here to every integer carrying the study-day
    description."""
    if isinstance(node, dict):
        if node.get("description") == STUDY_DAY_DESCRIPTION and node.get("type") == "integer":
            node["not"] = {"const": 0}
        for value in node.values():
            _no_day_zero(value)
    elif isinstance(node, list):
        for value in node:
            _no_day_zero(value)


def finalize(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "API token: `python -m service tokens create` or POST /api/v1/tokens (admin).",
        }
    }
    schema["security"] = [{"bearerAuth": []}]
    components = schema["components"].setdefault("schemas", {})
    components[ProblemDetails.__name__] = {}
    components.update(_struct_components(components))
    _no_day_zero(components)

    create_ops: dict[str, tuple[str, dict[str, Any]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["name"] in _ZERO_MINIMUM_PARAMETERS:
                    parameter["schema"]["minimum"] = 0
            responses = operation.setdefault("responses", {})
            if "307" in responses:
                responses["307"].setdefault("headers", {})["Location"] = {
                    "schema": {"type": "string"},
                    "description": "The operation answering the format asked for",
                }
            if operation["operationId"] in PLOT_OPERATIONS:
                responses["200"]["content"] = {"image/svg+xml": {"schema": {"type": "string"}}}
                responses["200"]["description"] = "The figure as SVG (text kept as text)"
            if operation["operationId"].removesuffix("Png") in PLOT_OPERATIONS and operation[
                "operationId"
            ].endswith("Png"):
                responses["200"]["content"] = {"image/png": BINARY}
                responses["200"]["description"] = "The figure as PNG"
            if operation["operationId"] in EXPORT_OPERATIONS:
                media_type, body, suffix = EXPORT_OPERATIONS[operation["operationId"]]
                responses["200"] = {
                    "description": "The export, as an attachment",
                    "headers": {
                        "Content-Disposition": {
                            "schema": {"type": "string"},
                            "description": f'attachment; filename="study-{{id}}.{suffix}"',
                        },
                        "Content-Length": {
                            "schema": {"type": "integer"},
                            "description": "The body's length in bytes",
                        },
                        "Repr-Digest": {
                            "schema": {"type": "string"},
                            "description": "`sha-256=:<base64>:` of the body (RFC 9530): a client verifies the export is complete",
                        },
                    },
                    "content": {media_type: {"schema": body}},
                }
            if operation["operationId"] in IMPORT_BODIES:
                # The import reads its body itself (decoded off the event loop, record by record):
                # the contract still says what it takes.
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "$ref": f"#/components/schemas/{IMPORT_BODIES[operation['operationId']]}"
                            }
                        }
                    },
                }
            statuses = _error_statuses(path, method, operation)
            if path.startswith("/api/"):
                statuses += ["401", "403", "429"]
            else:
                operation["security"] = []  # the health check needs no token
            for parameter in operation.get("parameters", []):
                if (
                    parameter["in"] == "header"
                    and parameter["name"] == "X-Change-Reason"
                    and REASON_REQUIRED.match(path)
                ):
                    parameter["required"] = True
                    statuses.append("428")
                if parameter["in"] == "header" and parameter["name"] == "If-None-Match":
                    responses["304"] = {
                        "description": "Not modified: If-None-Match holds the record's current ETag (no body).",
                        "headers": {"ETag": {"description": "The current ETag", "schema": STRING}},
                    }
                if parameter["in"] == "header" and parameter["name"] == "If-Match":
                    # Declared optional to Litestar so that a missing header is our 428, not its 400.
                    parameter["required"] = True
                    statuses += ["412", "428"]
            for status in dict.fromkeys(statuses):
                responses[status] = _problem_response(status)
            if method == "post" and "201" in responses:
                create_ops[path.rstrip("/")] = (operation["operationId"], responses["201"])

    _add_child_links(schema)
    _partial_pages(schema)
    for collection, (_, created) in create_ops.items():
        item_path = next(
            (p for p in schema["paths"] if re.fullmatch(re.escape(collection) + r"/\{id\}", p)), None
        )
        if item_path is None:
            continue
        links = {}
        for method in ("get", "patch", "delete"):
            operation = schema["paths"][item_path].get(method)
            if operation:
                parameters = {"id": "$response.body#/id"}
                if method != "get":
                    parameters["header.If-Match"] = "$response.header.ETag"
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                }
        created.setdefault("links", {}).update(links)
    # Last: both rebuild operations (the links above were added to the operations in place).
    _name_vocabularies(schema)
    _document_headers(schema)
    return schema


def _literal_aliases() -> dict[frozenset[Any], str]:
    """Every module-level `Name = Literal[...]` of the service, by its set of values."""
    found: dict[frozenset[Any], str] = {}
    for module_name in sorted(m for m in sys.modules if m == "service" or m.startswith("service.")):
        for name, value in sorted(vars(sys.modules[module_name]).items()):
            if get_origin(value) is Literal and name[:1].isupper():
                found.setdefault(frozenset(get_args(value)), name)
    return found


def _camel(*words: str) -> str:
    return "".join(
        part[:1].upper() + part[1:] for word in words for part in re.split(r"[_\-. ]+", word) if part
    )


def _name_vocabularies(schema: dict[str, Any]) -> None:
    """Each controlled vocabulary once, as a named component that every use refers to (a client
    generator then makes one enum type per vocabulary, not one per field that uses it)."""
    components = schema["components"]["schemas"]
    named = _literal_aliases()
    registered: dict[frozenset[Any], str] = {}

    def name_for(values: list[Any], key: str, context: str) -> str:
        frozen = frozenset(values)
        if frozen in registered:
            return registered[frozen]
        name = named.get(frozen) or _camel(key)
        if name in components and components[name].get("enum") != values:
            name = _camel(context, key)
        components[name] = {"type": "string", "enum": values, "title": name}
        registered[frozen] = name
        return name

    def walk(node: Any, key: str, context: str) -> Any:
        if isinstance(node, list):
            return [walk(item, key, context) for item in node]
        if not isinstance(node, dict):
            return node
        enum = node.get("enum")
        # Litestar writes an optional enum parameter as {"enum": [..., null], "type": ["null", "string"]}.
        nullable = isinstance(enum, list) and None in enum and node.get("type") == ["null", "string"]
        values = [value for value in enum if value is not None] if isinstance(enum, list) else []
        if (
            (len(values) > 1 or frozenset(values) in named)
            and all(isinstance(value, str) for value in values)
            and (nullable or node.get("type", "string") == "string")
            and "$ref" not in node
        ):
            reference: dict[str, Any] = {"$ref": f"#/components/schemas/{name_for(values, key, context)}"}
            if nullable:
                reference = {"oneOf": [reference, {"type": "null"}]}
            for kept in ("description", "default", "examples"):
                if kept in node:
                    reference[kept] = node[kept]
            return reference
        out: dict[str, Any] = {}
        for child_key, child in node.items():
            if child_key == "properties" and isinstance(child, dict):
                out[child_key] = {prop: walk(value, prop, context) for prop, value in child.items()}
            elif child_key == "parameters" and isinstance(child, list):
                out[child_key] = [
                    {
                        **parameter,
                        "schema": walk(parameter.get("schema"), parameter.get("name", key), context),
                    }
                    if isinstance(parameter, dict) and "schema" in parameter
                    else parameter
                    for parameter in child
                ]
            else:
                out[child_key] = walk(
                    child, key if child_key in ("items", "oneOf", "anyOf", "schema") else child_key, context
                )
        return out

    for name in list(components):
        if components[name].get("enum") is None:
            components[name] = walk(components[name], name, name)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in METHODS:
                item[method] = walk(operation, method, operation.get("operationId", path))


STRING = {"type": "string"}
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {
        "description": "Requests allowed per minute with this token.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": {"type": "integer"}},
    "RateLimit-Policy": {"description": "The limit as `N;w=60`.", "schema": STRING},
}
REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id: the client's own when well formed, else a new one; every log line of the request carries it.",
        "schema": STRING,
    }
}
IDEMPOTENT_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _document_headers(schema: dict[str, Any]) -> None:
    """Every header the service sends, each with a schema: the request id on every response,
    the rate-limit headers on authenticated API answers (when the limit is on), and the replay
    flag on operations that take an Idempotency-Key."""
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            idempotent = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
            for status, response in operation.get("responses", {}).items():
                headers = response.setdefault("headers", {})
                for header in headers.values():
                    header.setdefault("schema", STRING)
                headers.update(REQUEST_ID_HEADER)
                if path.startswith("/api/") and status not in ("401",):
                    headers.update(RATE_LIMIT_HEADERS)
                if idempotent and status.startswith("2"):
                    headers.update(IDEMPOTENT_REPLAYED)


def _partial_pages(schema: dict[str, Any]) -> None:
    """A list with `fields=` answers items holding only the chosen fields: its 200 is either the
    full page or a `…FieldsPage` whose items require only `id`."""
    components = schema["components"]["schemas"]
    for item in schema.get("paths", {}).values():
        operation = item.get("get")
        if operation is None or not any(p.get("name") == "fields" for p in operation.get("parameters", [])):
            continue
        content = operation["responses"]["200"]["content"]["application/json"]
        page_ref = content["schema"]["$ref"]
        page_name = page_ref.rsplit("/", 1)[-1]
        items = components[page_name]["properties"]["items"]["items"]
        refs = [items] if "$ref" in items else items.get("anyOf") or items.get("oneOf") or []
        variants: dict[str, list[Any]] = {}
        for ref in refs:  # a tagged union (outcomes): the fields of every kind
            for name, value in components[ref["$ref"].rsplit("/", 1)[-1]]["properties"].items():
                if value not in variants.setdefault(name, []):
                    variants[name].append(value)
        # A field whose schema differs between kinds (the tag `kind` itself) takes any of them.
        properties = {
            name: kinds[0] if len(kinds) == 1 else {"anyOf": kinds} for name, kinds in variants.items()
        }
        base = page_name.removesuffix("Page")
        partial_item, partial_page = f"{base}Fields", f"{base}FieldsPage"
        components[partial_item] = {
            "type": "object",
            "title": partial_item,
            "properties": properties,
            "required": ["id"],
            "additionalProperties": False,
        }
        components[partial_page] = {
            **components[page_name],
            "title": partial_page,
            "properties": {
                **components[page_name]["properties"],
                "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{partial_item}"}},
            },
        }
        content["schema"] = {"anyOf": [{"$ref": page_ref}, {"$ref": f"#/components/schemas/{partial_page}"}]}


# The contract's tags, each with what its operations are for (Spectral's operation-tag-defined).
TAGS = {
    "Studies": "Studies: design, registry ids, status, publication, eligibility; their history.",
    "Arms": "A study's arms and the agents each gives.",
    "Sites": "Centres enrolling a study's patients; grants can be limited to sites.",
    "Patients": "De-identified patients: diagnosis, disease status, baseline values, markers.",
    "Agents": "The shared catalogue of drugs and cellular products (targets, ATC codes).",
    "Treatments": "Treatment lines of a patient: phase, regimen, agents, study days.",
    "Adverse events": "Adverse events with their term, MedDRA code, CTCAE/ASTCT grade and timing.",
    "Outcomes": "Responses (with MRD), events (relapse, death, HSCT, GVHD) and other observations.",
    "Reported results": "Figures as a publication or a registry prints them, with their provenance.",
    "Statistics": "Analyses of a study's patient-level data: survival, competing risks, models, plots.",
    "Evidence": "Across studies: pooled estimates, reconciliation with printed figures, duplicates.",
    "Exchange": "Whole studies in and out: JSON, FHIR, CDISC Dataset-JSON, CSV, ClinicalTrials.gov.",
    "Data cuts": "The data frozen at a moment, with its digest and the audit head, for reproducible results.",
    "Patient links": "Curated links between records of the same patient in different studies.",
    "Tokens": "API tokens and their grants (admin).",
    "Audit": "The append-only, hash-chained audit trail (admin).",
    "Health": "Probes and version, for the platform.",
}


def describe_access(schema: dict[str, Any], levels: dict[tuple[str, str], str]) -> None:
    """Declare every tag, and give each operation its access rule (who may call it), appended to
    its description (Spectral's operation-description; the 403 says the same at run time)."""
    used = {
        tag
        for item in schema.get("paths", {}).values()
        for op in item.values()
        if isinstance(op, dict)
        for tag in op.get("tags", [])
    }
    schema["tags"] = [{"name": name, "description": TAGS[name]} for name in TAGS if name in used]
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            level = levels.get((path, method))
            rule = f"Who may call it: {ACCESS_RULES[level]}." if level else "No token needed."
            described = operation.get("description") or operation.get("summary", "")
            operation["description"] = f"{described}\n\n{rule}" if described else rule
