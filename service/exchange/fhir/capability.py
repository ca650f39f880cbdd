"""The CapabilityStatement of the FHIR export: which resources it writes and the profiles each
claims, so a FHIR client can tell what to expect before it exports a study."""

from typing import Any

from service.exchange.fhir.terminology import REGISTRY, Profile

# Resource type → the profiles its resources name in `meta.profile` (the core definition where
# the record lacks what a published profile requires; service.exchange.fhir.resources says when).
SUPPORTED: dict[str, list[str]] = {
    "ResearchStudy": [],
    "Group": [],
    "Location": [],
    "Patient": [Profile.CANCER_PATIENT],
    "ResearchSubject": [],
    "Condition": [Profile.PRIMARY_CANCER_CONDITION],
    "Procedure": [],
    "AdverseEvent": [Profile.AE_CLINICAL_RESEARCH],
    "Observation": [Profile.CANCER_DISEASE_STATUS, Profile.US_CORE_LAB],
    "Provenance": [],
}


def capability_statement(version: str, released: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "id": "leukemia-outcomes-registry",
        "url": f"{REGISTRY}/fhir/CapabilityStatement/leukemia-outcomes-registry",
        "version": version,
        "name": "LeukemiaOutcomesRegistryExport",
        "title": "Leukemia outcomes registry: FHIR export",
        "status": "active",
        "date": released,
        "publisher": "leukemia outcomes registry",
        "description": "Studies are exported whole as FHIR R4 (4.0.1) resources that also validate as R4B: "
        "`GET /api/v1/studies/{id}/export?format=fhir` (a Bundle of type collection) or `format=ndjson` "
        "(bulk-data NDJSON). The export is read-only: the registry's own API writes.",
        "kind": "instance",
        "implementation": {"description": "FHIR export of the leukemia outcomes registry"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+ndjson"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Resources are obtained by exporting a study; there is no FHIR search API.",
                "security": {
                    "description": "Bearer token of the registry (`Authorization: Bearer lor_…`); the export "
                    "needs access to the study's patient-level rows."
                },
                "resource": [
                    {
                        "type": kind,
                        "profile": Profile.core(kind),
                        **({"supportedProfile": profiles} if profiles else {}),
                    }
                    for kind, profiles in SUPPORTED.items()
                ],
            }
        ],
    }
