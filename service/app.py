"""create_app(settings) -> Litestar: routes, database, error map and the completed OpenAPI document."""

import asyncio
import re
from typing import Any

import anyio
from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Contact, License
from litestar.types import Middleware

from service.adverse_events.controller import AdverseEventController
from service.agents.controller import AgentController
from service.analytics.controller import DesignController, StatisticsController
from service.arms.controller import ArmController
from service.audit.controller import AuditController
from service.auth.controller import TokenController
from service.auth.middleware import authentication
from service.auth.oidc import oidc_verifier
from service.auth.rate_limit import SharedCounter, counter, rate_limit
from service.auth.token_cache import TokenCache
from service.caching.store import AnswerStore
from service.common import heavy
from service.common.head_requests import head_as_get
from service.common.request_checks import check_request
from service.common.strict_query import OPERATION_IDS_KEY as OPERATION_IDS
from service.common.strict_query import STATE_KEY as STRICT_QUERY
from service.common.strict_query import accepted_query_parameters, operation_ids
from service.data_cuts.controller import DataCutController
from service.data_cuts.databases import CutDatabases
from service.db.driver_reads import driver_reads
from service.db.migrate import head_revision
from service.db.session import create_engine, plain_read_engine, provide_session, session_factory
from service.docs_site import ASSETS_URL, docs_asset, docs_router
from service.errors import EXCEPTION_HANDLERS
from service.evidence.controller import DuplicatesController, EvidenceController, ReconciliationController
from service.exchange.cdisc.controller import DatasetController
from service.exchange.controller import ExchangeController, ExportController
from service.exchange.ctgov.controller import SourceRecordController
from service.exchange.fhir.controller import FhirController
from service.exchange.snapshot import ExportSlots
from service.health import health, live, prometheus_metrics, ready, version
from service.locks.controller import StudyLockController
from service.observability.logs import attach_root_handler, structlog_plugin
from service.observability.telemetry import telemetry
from service.openapi import describe_access, finalize
from service.openapi_export import openapi_document, serve_document
from service.outcomes.controller import OutcomeController
from service.patient_links.controller import PatientLinkController
from service.patients.controller import PatientController
from service.reported_results.controller import ReportedResultController
from service.settings import Settings
from service.sites.controller import SiteController
from service.studies.controller import StudyController
from service.treatments.controller import TreatmentController

API_VERSION = "1.0.0"

API_DESCRIPTION = """
Study, patient, treatment, adverse-event and outcome data of acute leukemia therapies
(CD38-, BCL-2- and CD19-directed), with provenance for every curated figure.

Timing of patient-level records is in **study days** (SDTM): day 1 is the first day of study
treatment, day -1 the day before, and there is no day 0. Errors are RFC 9457 problem details.
"""


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    engine = create_engine(settings)
    heavy.configure(settings.heavy_workers, settings.heavy_wait_seconds)

    cut_databases = CutDatabases(settings.data_cut_databases)

    async def dispose_engine() -> None:
        await engine.dispose()

    api = Router(
        "/api/v1",
        route_handlers=[
            DuplicatesController,
            StudyController,
            StudyLockController,
            DataCutController,
            ArmController,
            SiteController,
            PatientController,
            AgentController,
            TreatmentController,
            AdverseEventController,
            OutcomeController,
            ReportedResultController,
            StatisticsController,
            DesignController,
            ReconciliationController,
            EvidenceController,
            ExchangeController,
            ExportController,
            SourceRecordController,
            DatasetController,
            FhirController,
            PatientLinkController,
            TokenController,
            AuditController,
        ],
    )
    openapi = OpenAPIConfig(
        title="Leukemia outcomes registry",
        license=License(name="Proprietary", identifier="LicenseRef-Proprietary"),
        # A name only: the docs page embeds this document, and it links nowhere outside.
        contact=Contact(name="Leukemia outcomes registry maintainers"),
        version=API_VERSION,
        description=API_DESCRIPTION.strip(),
        path="/docs",
        openapi_router=docs_router(),
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_URL}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_URL}/swagger-ui-standalone-preset.js",
                favicon="",
                path="/",
            )
        ],
    )
    # Authentication comes before the rate limit, which counts per token.
    middleware: list[Middleware] = [authentication()]
    rate_counter = counter(settings.rate_limit_store_url if settings.rate_limit_per_minute > 0 else None)
    if settings.rate_limit_per_minute > 0:
        middleware.append(rate_limit(settings.rate_limit_per_minute))
    app = Litestar(
        route_handlers=[
            api,
            health,
            live,
            ready,
            version,
            prometheus_metrics,
            docs_asset,
        ],
        dependencies={"db_session": Provide(provide_session)},
        middleware=middleware,
        # 1 MiB: the largest curated record is a few kB; a bigger body is refused with 413.
        request_max_body_size=1_048_576,
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=check_request,
        openapi_config=openapi,
        state=State(
            {
                "session_factory": session_factory(engine),
                "plain_read_engine": plain_read_engine(engine),
                "driver_reads": driver_reads(engine),
                "engine": engine,
                "token_cache": TokenCache(settings.token_cache_seconds),
                "oidc": oidc_verifier(settings),
                "aggregate_min_count": settings.aggregate_min_count,
                "sqlite_writers": asyncio.Lock() if settings.is_sqlite else None,
                "sqlite_write_wait_s": settings.sqlite_busy_timeout_ms / 1000,
                "export_slots": ExportSlots(settings.export_builds),
                "analysis_answers": AnswerStore(settings.analysis_cache_mb * 1024 * 1024),
                "data_cut_databases": cut_databases,
                "data_cut_analyses_kept": set(),
                "data_cut_license": settings.data_cut_license,
                # Import documents are decoded and checked one at a time (service.exchange.importing).
                "import_planning": anyio.CapacityLimiter(1),
                "schema_head": head_revision(),
                "ready_timeout": settings.db_connect_timeout_s,
                "rate_counter": rate_counter,
                "auth_failure_limit": settings.auth_failures_per_minute
                if settings.rate_limit_per_minute > 0
                else 0,
            }
        ),
        on_shutdown=[
            dispose_engine,
            cut_databases.close,
            *([rate_counter.close] if isinstance(rate_counter, SharedCounter) else []),
        ],
        plugins=[structlog_plugin(settings.log_level)],
    )
    attach_root_handler(settings.log_level)
    # Outside Litestar's routing and exception handlers: it sees every request's final status.
    # HEAD answered as its GET without the body (service.common.head_requests).
    app.asgi_handler = telemetry(head_as_get(app.asgi_handler), engine)
    _complete_openapi(app)
    return app


# The completed document by the app's routes. Every app of a process has the same routes (the
# code registers them unconditionally), so the document (0.7-1.5 s to build and post-process, most
# of an app's creation) is built once per process: a test run creates hundreds of apps, and each
# server process of `registry serve` pays it once at start either way.
_COMPLETED: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, Any]] = {}


def _complete_openapi(app: Litestar) -> None:
    """Post-process, once at start, the cached schema dict that Litestar serves, and hold the
    query parameters it declares as the ones each operation accepts."""
    routes = tuple(sorted((route.path, tuple(sorted(route.methods))) for route in app.routes))
    document = _COMPLETED.get(routes)
    if document is None:
        document = openapi_document(app)
        finalize(document)
        describe_access(document, _access_levels(app))
        _COMPLETED[routes] = document
    else:
        serve_document(app, document)
    app.state[STRICT_QUERY] = accepted_query_parameters(document)
    app.state[OPERATION_IDS] = operation_ids(document)


def _access_levels(app: Litestar) -> dict[tuple[str, str], str]:
    """(path, method) → the level its guard requires (service.auth.middleware.requires)."""
    levels = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for guard in handler.resolve_guards():
                level = getattr(guard, "level", None)
                if level is not None:
                    path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)  # as the contract writes it
                    for method in handler.http_methods:
                        levels[(path, method.lower())] = level
    return levels
