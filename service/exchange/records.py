"""The study document's records, typed: each is its create struct without the ids the document
replaces by keys local to it (`study_id`, `patient_id`, `arm_id`, `treatment_id`, `agent_id`),
with those keys instead, and with its children nested. Derived from the create structs, so a
field added to an API body is a field of the document too.

A mistyped value anywhere in a record (a string for a list, a list for a key, `[1]` for an
adverse event) is refused by msgspec with its path, which becomes the JSON pointer of the 422,
instead of reaching code that expected a dict."""

import functools
import operator
from typing import Annotated, Any, get_type_hints

import msgspec
from msgspec import Meta

from service.adverse_events.schemas import AdverseEventCreate
from service.agents.schemas import AgentCreate
from service.arms.schemas import ArmCreate
from service.common.schemas import Provenance
from service.common.types import NO_NUL, Name
from service.outcomes.schemas import VARIANTS
from service.patients.schemas import PatientCreate
from service.reported_results.schemas import ReportedResultCreate
from service.sites.schemas import SiteCreate
from service.studies.schemas import StudyCreate
from service.treatments.schemas import Component, TreatmentCreate

# Keys local to the document: `arm-1`, `t1`.
Key = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]


def _fields(create: type[msgspec.Struct], drop: tuple[str, ...], provenance: Any = None) -> list[Any]:
    hints = get_type_hints(create, include_extras=True)
    fields: list[Any] = []
    for field in msgspec.structs.fields(create):
        if field.name in drop:
            continue
        kind = provenance if field.name == "provenance" and provenance is not None else hints[field.name]
        if field.default is not msgspec.NODEFAULT:
            fields.append((field.name, kind, field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            fields.append((field.name, kind, msgspec.field(default_factory=field.default_factory)))
        else:
            fields.append((field.name, kind))
    return fields


def _list(item: Any, most: int) -> Any:
    """list[item] of at most `most` elements (built at run time: the records are)."""
    return Annotated[list[item], Meta(max_length=most)]


def _optional(kind: Any) -> Any:
    return kind | None


def _struct(name: str, fields: list[Any], **config: Any) -> Any:
    return msgspec.defstruct(
        name, fields, kw_only=True, forbid_unknown_fields=True, module=__name__, **config
    )


# A document's provenance may leave out `source_document`: the document's own is filled in.
ProvenanceEntry = _struct(
    "ProvenanceEntry",
    [("source_document", _optional(Name), None), *_fields(Provenance, ("source_document",))],
)
PROVENANCE = _list(ProvenanceEntry, 50)


def record(
    create: type[msgspec.Struct],
    name: str,
    drop: tuple[str, ...] = (),
    extra: list[Any] | None = None,
    **config: Any,
) -> Any:
    """The document's record of a create struct: its fields but `drop`, plus `extra`."""
    return _struct(name, [*_fields(create, drop, PROVENANCE), *(extra or [])], **config)


AgentRecord = record(AgentCreate, "AgentRecord")
StudyRecord = record(StudyCreate, "StudyRecord", drop=("source_document",))
ArmRecord = record(
    ArmCreate,
    "ArmRecord",
    drop=("study_id", "agent_ids"),
    extra=[("key", Key), ("agents", _list(Name, 100), [])],
)
# A site is named by its code, unique in the study; patients name their site by it (`site`).
SiteRecord = record(SiteCreate, "SiteRecord", drop=("study_id",))
ComponentRecord = record(Component, "ComponentRecord", drop=("agent_id",), extra=[("agent", Name)])
TreatmentRecord = record(
    TreatmentCreate,
    "TreatmentRecord",
    drop=("patient_id", "components"),
    extra=[("key", _optional(Key), None), ("components", _list(ComponentRecord, 30), [])],
)
AdverseEventRecord = record(
    AdverseEventCreate,
    "AdverseEventRecord",
    drop=("patient_id", "treatment_id"),
    extra=[("treatment", _optional(Key), None)],
)
OutcomeRecords = tuple(
    record(
        variant,
        f"{variant.__name__.removesuffix('Create')}Record",
        drop=("patient_id", "treatment_id"),
        extra=[("treatment", _optional(Key), None)] if "treatment_id" in variant.__struct_fields__ else [],
        tag_field="kind",
        tag=variant.__struct_config__.tag,
    )
    for variant in VARIANTS
)
OutcomeRecord = functools.reduce(operator.or_, OutcomeRecords)
PatientRecord = record(
    PatientCreate,
    "PatientRecord",
    drop=("study_id", "arm_id", "site_id"),
    extra=[
        ("arm", _optional(Key), None),
        ("site", _optional(Key), None),
        ("treatments", _list(TreatmentRecord, 1000), []),
        ("adverse_events", _list(AdverseEventRecord, 10_000), []),
        ("outcomes", _list(OutcomeRecord, 10_000), []),
    ],
)
# A comparison's definition names its arms by the document's keys (`arms`), not by ids: it is
# converted with the arm ids filled in, under the record's pointer.
ReportedResultRecord = record(
    ReportedResultCreate,
    "ReportedResultRecord",
    drop=("study_id", "arm_id", "definition"),
    extra=[("arm", _optional(Key), None), ("definition", dict[str, Any] | None, None)],
)
