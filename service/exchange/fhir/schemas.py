"""The CapabilityStatement's shape in the contract (the elements the service writes)."""

from typing import Any

import msgspec


class CapabilityResource(msgspec.Struct, kw_only=True):
    type: str
    profile: str
    supportedProfile: list[str] = []


class CapabilityRest(msgspec.Struct, kw_only=True):
    mode: str
    documentation: str
    security: dict[str, Any]
    resource: list[CapabilityResource]


class CapabilityStatement(msgspec.Struct, kw_only=True):
    """FHIR R4 CapabilityStatement."""

    resourceType: str
    id: str
    url: str
    version: str
    name: str
    title: str
    status: str
    date: str
    publisher: str
    description: str
    kind: str
    implementation: dict[str, str]
    fhirVersion: str
    format: list[str]
    rest: list[CapabilityRest]
