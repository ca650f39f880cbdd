"""The RO-Crate 1.3 metadata (`ro-crate-metadata.json`) of a cut's release package: the root
dataset (the cut: label, note, time, licence, identifier, creators from its studies — sponsor,
else institution — and their publications), the studies it covers, every file with its media
type, size and SHA-256, and each analysis run on the cut as a CreateAction (the registry as its
instrument, the frozen content and the request's parameters as its object, the answer as its
result), as RO-Crate describes the provenance of a file."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service.db import models
from service.db.models import as_utc

ROCRATE = "https://w3id.org/ro/crate/1.3"
CONTEXT = f"{ROCRATE}/context"


@dataclass(frozen=True, slots=True)
class PackedFile:
    path: str
    name: str
    media_type: str
    size: int
    sha256: str
    about: str | None = None  # the study it is of


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "x"


def _organisations(studies: Iterable[models.Study]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for study in studies:
        name = study.sponsor or study.institution
        if name:
            found.setdefault(
                name, {"@id": f"#organization-{_slug(name)}", "@type": "Organization", "name": name}
            )
    return found


def _publication(study: models.Study) -> dict[str, Any] | None:
    """The study's publication, when it has an address (a DOI, else a PubMed id)."""
    publication = study.publication or {}
    doi, pmid = publication.get("doi"), publication.get("pmid")
    if not doi and not pmid:
        return None
    entity: dict[str, Any] = {
        "@id": f"https://doi.org/{doi}" if doi else f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
        "@type": "ScholarlyArticle",
        "name": publication.get("citation") or doi or f"PMID {pmid}",
    }
    if publication.get("year"):
        entity["datePublished"] = str(publication["year"])
    return entity


def _study(study: models.Study, organisations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entity: dict[str, Any] = {"@id": f"#study-{study.id}", "@type": "MedicalStudy", "name": study.title}
    identifiers = [str(study.id), *study.registry_ids]
    entity["identifier"] = identifiers if len(identifiers) > 1 else identifiers[0]
    owner = study.sponsor or study.institution
    if owner:
        entity["sponsor"] = {"@id": organisations[owner]["@id"]}
    publication = _publication(study)
    if publication is not None:
        entity["citation"] = {"@id": publication["@id"]}
    elif (study.publication or {}).get("citation"):
        entity["citation"] = study.publication["citation"]  # type: ignore[index]
    return entity


def _file(packed: PackedFile) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "@id": packed.path,
        "@type": "File",
        "name": packed.path.rsplit("/", 1)[-1],
        "description": packed.name,
        "encodingFormat": packed.media_type,
        "contentSize": str(packed.size),
        "sha256": packed.sha256,
    }
    if packed.about:
        entity["about"] = {"@id": f"#study-{packed.about}"}
    return entity


def _analysis(
    n: int, analysis: models.DataCutAnalysis, answer: PackedFile, registry_url: str
) -> list[dict[str, Any]]:
    """The CreateAction of one analysis and the PropertyValue of each of its parameters."""
    action_id = f"#analysis-{n}"
    values = [
        {"@id": f"{action_id}-parameter-{i}", "@type": "PropertyValue", "name": name, "value": value}
        for i, (name, value) in enumerate(analysis.parameters, start=1)
    ]
    query = "&".join(f"{name}={value}" for name, value in analysis.parameters)
    action = {
        "@id": action_id,
        "@type": "CreateAction",
        "name": analysis.operation,
        "description": f"GET {analysis.path}{'?' + query if query else ''} with data_cut set to this cut",
        "instrument": {"@id": registry_url},
        "object": [{"@id": "data-cut.json"}, *({"@id": v["@id"]} for v in values)]
        if values
        else {"@id": "data-cut.json"},
        "result": {"@id": answer.path},
        "endTime": as_utc(analysis.created_at).isoformat(),
    }
    return [action, *values]


def metadata(
    cut: models.DataCut,
    studies: list[models.Study],
    files: list[PackedFile],
    analyses: list[tuple[models.DataCutAnalysis, PackedFile]],
    license_url: str,
    version: str,
    registry_url: str,
) -> dict[str, Any]:
    organisations = _organisations(studies)
    publications = [p for p in (_publication(s) for s in studies) if p is not None]
    answers = [packed for _, packed in analyses]
    actions = [
        entity
        for n, (a, packed) in enumerate(analyses, start=1)
        for entity in _analysis(n, a, packed, registry_url)
    ]
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        "name": cut.label,
        "description": cut.note
        or f"Data cut {cut.id} of the leukemia outcomes registry: {len(studies)} studies as they stood when it was taken.",
        "identifier": f"urn:uuid:{cut.id}",
        "datePublished": as_utc(cut.created_at).isoformat(),
        "license": {"@id": license_url},
        "creator": [{"@id": o["@id"]} for o in organisations.values()],
        "about": [{"@id": f"#study-{s.id}"} for s in studies],
        "citation": [{"@id": p["@id"]} for p in publications],
        "hasPart": [{"@id": f.path} for f in (*files, *answers)],
        "mentions": [{"@id": a["@id"]} for a in actions if a["@type"] == "CreateAction"],
        # The audit chain when the cut was taken: its records and the last one's hash.
        "version": f"{cut.audit_records}:{cut.audit_head}",
    }
    graph: list[dict[str, Any]] = [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": ROCRATE},
            "about": {"@id": "./"},
        },
        root,
        {
            "@id": license_url,
            "@type": "CreativeWork",
            "name": license_url.rsplit("/", 1)[-1],
            "description": "The licence under which this release of the registry's data is published.",
        },
        {
            "@id": registry_url,
            "@type": "SoftwareApplication",
            "name": "Leukemia outcomes registry",
            "url": registry_url,
            "version": version,
        },
        *organisations.values(),
        *publications,
        *(_study(s, organisations) for s in studies),
        *(_file(f) for f in (*files, *answers)),
        *actions,
    ]
    return {"@context": CONTEXT, "@graph": graph}
