"""Whole studies in and out: `GET /studies/{id}/export` (and `/export/{format}`) and `POST /studies/import`."""

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader, State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Stream

from service.auth.middleware import requires
from service.common.idempotency import IdempotencyKeyHeader
from service.common.repository import get_visible
from service.data_cuts import reading
from service.db import models
from service.errors import NotFound
from service.exchange import export_csv, export_json, snapshot
from service.exchange.ctgov import overlay, sources
from service.exchange.ctgov import record as clinicaltrials_gov
from service.exchange.ctgov.record import CtgovStudy
from service.exchange.fhir import resources as fhir_resources
from service.exchange.importing import import_document, registry_json, study_json
from service.exchange.schemas import ImportResult, StudyDocument

# An export holds patient-level rows; an import creates a study, which grants cannot.
READ, WRITE = requires("rows"), requires("global curator")
# A whole study in one body: far above the 1 MiB of a single record.
MAX_IMPORT_BYTES = 64 * 1024 * 1024

ExportFormat = Literal["json", "fhir", "ndjson", "csv", "ctgov"]
# Each format is an operation of its own with one media type, so that a generated client decodes
# each body as what it is; `/export?format=` redirects there (the path each format had first).
EXPORTS: dict[str, tuple[str, str, str]] = {  # format → (path under /export, media type, file suffix)
    "json": ("", "application/json", "json"),
    "fhir": ("/fhir", "application/fhir+json", "fhir.json"),
    "ndjson": ("/fhir-ndjson", "application/fhir+ndjson", "ndjson"),
    "csv": ("/csv", "application/zip", "csv.zip"),
    "ctgov": ("/ctgov", "application/json", "ctgov.json"),
}
SNAPSHOT = (
    "The export is taken as a snapshot (one read transaction into a temporary file), then sent: the body is "
    "complete before the status line, carries `Content-Length` and `Repr-Digest: sha-256=:<base64>:` (RFC 9530) "
    "to verify it, and a slow reader holds no database connection. At most `EXPORT_BUILDS` exports build at once "
    "per process (429 with `Retry-After` beyond)."
)
EXPORT_HEADERS = [
    ResponseHeader(
        name="Repr-Digest",
        description="`sha-256=:<base64>:` of the body (RFC 9530): a client verifies the export is complete",
        documentation_only=True,
    ),
    ResponseHeader(name="Content-Length", description="the body's length in bytes", documentation_only=True),
]


async def _one_chunk(open_session: Any, study_id: UUID) -> AsyncIterator[bytes]:
    async with open_session() as session:
        tree = await export_json.read_tree(session, study_id)
        if tree is not None:
            # An imported study: the record as received with the registry's fields written over it
            # (results as posted: rebuilding them from reported results would lose detail).
            record = overlay.merge(
                await sources.received(session, study_id), clinicaltrials_gov.from_tree(tree)
            )
            yield msgspec.json.encode(record)


class ExportController(Controller):
    """Whole studies out, live or on a data cut (`data_cut=`)."""

    tags = ["Exchange"]
    parameters = reading.PARAMETER
    before_request = reading.enter_hook  # type: ignore[assignment]

    @get(
        "/studies/{id:uuid}/export",
        guards=[READ],
        operation_id="exportStudy",
        summary="Export a whole study as its JSON document",
        description="The document `POST /studies/import` takes (`StudyDocument`; ids become keys local to the "
        "document). The other formats are operations of their own, one media type each: `/export/fhir`, "
        "`/export/fhir-ndjson`, `/export/csv`, `/export/ctgov`; `format=` other than `json` answers 307 with their "
        "`Location` (kept for clients written against it). " + SNAPSHOT,
        responses={
            200: ResponseSpec(
                data_container=StudyDocument, description="The study's document", generate_examples=False
            ),
            307: ResponseSpec(
                data_container=None,
                description="`format` names another format: its operation is at `Location`",
            ),
        },
        response_headers=EXPORT_HEADERS,
    )
    async def export_study(
        self,
        request: Request[Any, Any, Any],
        state: State,
        id: FromPath[UUID],
        format: Annotated[
            ExportFormat,
            QueryParameter(
                description="json (default); fhir, ndjson, csv or ctgov redirect (307) to their own operations"
            ),
        ] = "json",
    ) -> Stream | Redirect:
        if format != "json":
            return Redirect(
                f"/api/v1/studies/{id}/export{EXPORTS[format][0]}", status_code=307, media_type="text/plain"
            )
        return await _export(request, state, id, "json")

    @get(
        "/studies/{id:uuid}/export/fhir",
        guards=[READ],
        operation_id="exportStudyFhir",
        summary="Export a whole study as a coded FHIR R4 Bundle (collection)",
        description="ResearchStudy with its arms and sites (Location), Group, ResearchSubject, de-identified Patient "
        "(mCODE CancerPatient), the leukaemia as mCODE PrimaryCancerCondition (ICD-10, ICD-O-3), AdverseEvent "
        "(MedDRA, CTCAE/ASTCT grade), responses as mCODE CancerDiseaseStatus and MRD as laboratory Observations "
        "(LOINC, SNOMED CT), Procedure for treatments, Provenance; each names its profile in `meta.profile` "
        "(`GET /fhir/metadata` lists them). References `urn:uuid:` resolve inside the bundle. " + SNAPSHOT,
        media_type="application/fhir+json",
        response_headers=EXPORT_HEADERS,
    )
    async def export_study_fhir(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID]
    ) -> Stream:
        return await _export(request, state, id, "fhir")

    @get(
        "/studies/{id:uuid}/export/fhir-ndjson",
        guards=[READ],
        operation_id="exportStudyFhirNdjson",
        summary="Export a whole study as FHIR NDJSON (bulk data: one resource per line)",
        description="The resources of `/export/fhir`, one per line, references `Type/id`. " + SNAPSHOT,
        media_type="application/fhir+ndjson",
        response_headers=EXPORT_HEADERS,
    )
    async def export_study_fhir_ndjson(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID]
    ) -> Stream:
        return await _export(request, state, id, "ndjson")

    @get(
        "/studies/{id:uuid}/export/csv",
        guards=[READ],
        operation_id="exportStudyCsv",
        summary="Export a whole study as a zip of CSV files",
        description="One CSV per table and the time-to-event rows. " + SNAPSHOT,
        media_type="application/zip",
        response_headers=EXPORT_HEADERS,
    )
    async def export_study_csv(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID]
    ) -> Stream:
        return await _export(request, state, id, "csv")

    @get(
        "/studies/{id:uuid}/export/ctgov",
        guards=[READ],
        operation_id="exportStudyClinicalTrialsGov",
        summary="Export a study as a ClinicalTrials.gov API v2 record",
        description="The study as a ClinicalTrials.gov API v2 record (`protocolSection`), which "
        "`POST /studies/import/clinicaltrials-gov` takes back. " + SNAPSHOT,
        responses={
            200: ResponseSpec(
                data_container=CtgovStudy, description="The registry record", generate_examples=False
            )
        },
        response_headers=EXPORT_HEADERS,
    )
    async def export_study_ctgov(
        self, request: Request[Any, Any, Any], state: State, id: FromPath[UUID]
    ) -> Stream:
        return await _export(request, state, id, "ctgov")


class ExchangeController(Controller):
    """Whole studies in."""

    tags = ["Exchange"]

    @post(
        "/studies/import",
        guards=[WRITE],
        operation_id="importStudy",
        summary="Create a whole study from its JSON document, all or nothing",
        description="Takes what `GET /studies/{id}/export?format=json` gives (`StudyDocument`). Every record is "
        "checked as its own create operation would, before anything is written; if any is refused nothing is "
        "stored and the 422 lists every problem with the JSON pointer of its record (`errors[].pointer`), a "
        "repeated key naming both records. Agents the document lists and the database lacks are created (matched "
        "by name). One study per source document: a study whose `document` is already stored is refused with "
        "409, also when two imports of it race. Written with multi-row statements and audited by one record "
        "(`import`: the document's SHA-256 and the counts); honours `Idempotency-Key`.",
        request_max_body_size=MAX_IMPORT_BYTES,
    )
    async def import_study(
        self, request: Request[Any, Any, Any], state: State, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[ImportResult]:
        return await import_document(request, state, await request.body(), study_json, idempotency_key)

    @post(
        "/studies/import/clinicaltrials-gov",
        guards=[WRITE],
        operation_id="importClinicalTrialsGovStudy",
        summary="Create a study from a ClinicalTrials.gov API v2 study record",
        description="Takes a record as the ClinicalTrials.gov API v2 returns one study (`/api/v2/studies/{nctId}`) "
        "(`CtgovStudy`; no network access is made). From `protocolSection`: registry id, titles, status, phases, "
        "dates, sponsor, conditions, enrolment (actual or anticipated), eligibility, keywords, MeSH terms, secondary ids, "
        "collaborators and outcome-measure definitions (the study's `registry`), every location with a facility "
        "as a site (institution, city, country), arms with the agents of their drug and biological interventions "
        f"(agents the catalog lacks are added, at most {clinicaltrials_gov.MAX_AGENTS} per record). From "
        "`resultsSection`: every posted figure as a reported result — outcome-measure values per group (arm matched "
        "by title, else the group as population; interval, range or spread as posted), analyses (parameter, "
        "interval, p value, method) and adverse events per group (affected of at risk) — whose provenance `location` "
        "is the JSON pointer of the value in the record; a value that is not a number is kept as posted in the "
        "notes. A record none of whose conditions, keywords or MeSH terms is a leukemia is refused (422) unless "
        "`allow_non_leukemia=true`; a leukemia other than acute is imported with a warning (`warnings`). Then as "
        "`POST /studies/import`: all or nothing, audited, `Idempotency-Key`; the record is kept as received "
        "(`GET /studies/{id}/source-records`). One study per NCT id: another version of a record already imported "
        "updates its study (200, `update` says what changed) when it was last updated later "
        "(`statusModule.lastUpdatePostDateStruct`): the fields read from the record follow it, arms and sites it "
        "adds are added (those it no longer lists are kept, with a warning), the reported results read from the "
        "previous version are replaced, each change audited; the same version again, or an older one, is a 409 "
        "and changes nothing.",
        request_max_body_size=MAX_IMPORT_BYTES,
    )
    async def import_clinicaltrials_gov(
        self,
        request: Request[Any, Any, Any],
        state: State,
        idempotency_key: IdempotencyKeyHeader = None,
        allow_non_leukemia: Annotated[
            bool,
            QueryParameter(
                description="Import a record none of whose conditions, keywords or MeSH terms is a leukemia "
                "(refused with 422 otherwise)"
            ),
        ] = False,
    ) -> Response[ImportResult]:
        decoder = partial(registry_json, allow_non_leukemia=allow_non_leukemia)
        return await import_document(request, state, await request.body(), decoder, idempotency_key)


async def _export(request: Request[Any, Any, Any], state: State, id: UUID, format: ExportFormat) -> Stream:
    open_session = reading.sessions_for(state, request)
    with state.export_slots:
        async with open_session() as session:
            if await get_visible(session, models.Study, id) is None:
                raise NotFound(f"no study with id {id}")
        content: Any
        if format == "ctgov":
            content = _one_chunk(open_session, id)
        elif format == "json":
            content = export_json.stream_json(open_session, id)
        elif format == "csv":
            content = export_csv.stream_zip(open_session, id)
        else:
            content = fhir_resources.stream(open_session, id, bundle=format == "fhir")
        taken = await snapshot.take(content)
    _, media_type, suffix = EXPORTS[format]
    return Stream(
        taken.chunks(),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="study-{id}.{suffix}"',
            **taken.headers(),
            **reading.version_header(request),
        },
    )
