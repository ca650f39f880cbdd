"""`GET /fhir/metadata`: what the FHIR export writes, as FHIR says a server tells it."""

import importlib.metadata

import msgspec
from litestar import Controller, Response, get
from litestar.openapi.datastructures import ResponseSpec

from service.auth.middleware import requires
from service.exchange.fhir.capability import capability_statement
from service.exchange.fhir.schemas import CapabilityStatement

RELEASED = "2026-12-03"  # when the statement (the mapping it describes) last changed
FHIR_JSON = "application/fhir+json; fhirVersion=4.0"


class FhirController(Controller):
    tags = ["Exchange"]

    @get(
        "/fhir/metadata",
        guards=[requires("reader")],
        operation_id="getFhirCapabilityStatement",
        summary="The FHIR CapabilityStatement of the study export (resources and the profiles they claim)",
        description="FHIR R4 (4.0.1). Lists each resource type the export writes (`format=fhir` or `ndjson` on "
        "`GET /studies/{id}/export`) with the published profiles its resources name in `meta.profile`: mCODE "
        "CancerPatient, PrimaryCancerCondition and CancerDiseaseStatus, US Core laboratory result (MRD by flow), "
        "the AE research backport IG's AdverseEvent-clinical-research.",
        media_type=FHIR_JSON,
        responses={
            200: ResponseSpec(
                data_container=CapabilityStatement,
                description="CapabilityStatement",
                generate_examples=False,
                media_type=FHIR_JSON,
            )
        },
    )
    async def capability(self) -> Response[bytes]:
        statement = capability_statement(importlib.metadata.version("leukemia-registry"), RELEASED)
        return Response(msgspec.json.encode(statement), media_type=FHIR_JSON)
