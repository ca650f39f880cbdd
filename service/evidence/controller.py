"""Evidence across studies, reconciliation of reported results, and possible duplicate patients."""

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect

from service.access.statement import DOCUMENTED as scope_header
from service.analytics.parameters import ConfLevel, ResponseDefinition, response_definition
from service.analytics.plots import formats
from service.analytics.plots import images as plots
from service.analytics.pooling.meta import Tau2Method, Transform
from service.analytics.proportions.intervals import CiMethod
from service.auth.middleware import requires
from service.caching.hooks import DOCUMENTED as answer_headers
from service.caching.hooks import after_analysis, before_analysis
from service.common.heavy import offload
from service.common.types import NO_NUL
from service.common.vocab import Design, Diagnosis, DiseaseStatus, GradingSystem, TreatmentPhase
from service.data_cuts import reading
from service.db.session import DbSession
from service.errors import RuleViolation
from service.evidence.duplicates import possible_duplicates
from service.evidence.hazard_ratios import hazard_ratio_evidence
from service.evidence.pooling import PoolingModel, Selection, evidence
from service.evidence.reconciliation import reconcile
from service.evidence.schemas import DuplicateCandidates, Evidence, HazardRatioEvidence, Reconciliation

Text = Annotated[str | None, QueryParameter(pattern=NO_NUL, max_length=200)]
POOLING = (
    "Per-study rows (patient-level where the study has patients, else a reported result whose definition matches), "
    "pooled by random effects on the logit scale (0.5 continuity correction for 0% and 100% rows) or the Freeman–Tukey "
    "double arcsine (`transform=freeman-tukey`): tau² by DerSimonian–Laird, REML or Paule–Mandel (`tau2_method`), Wald or "
    "Hartung–Knapp–Sidik–Jonkman interval (`hartung_knapp`), the prediction interval, the fixed-effect estimate, I² and "
    "each study's weight, as R metafor; or (`model=glmm`) by a binomial-normal mixed model as metafor rma.glmm, which "
    "needs no continuity correction. Leave-one-out and cumulative-by-year views. Case reports are shown but not pooled with cohorts unless "
    "`include_case_reports=true`. Patients linked as the same person are counted once."
)


def selection(
    agent: Text = None,
    target: Text = None,
    diagnosis: FromQuery[Diagnosis | None] = None,
    disease_status: FromQuery[DiseaseStatus | None] = None,
    treatment_phase: FromQuery[TreatmentPhase | None] = None,
    design: FromQuery[Design | None] = None,
    study_id: Annotated[
        list[UUID] | None, QueryParameter(max_items=50, description="Repeat to select several studies.")
    ] = None,
    marker: Annotated[
        str | None,
        QueryParameter(
            pattern=NO_NUL, max_length=50, description="Immunophenotype marker at entry, e.g. CD38."
        ),
    ] = None,
    marker_min: Annotated[
        float | None, QueryParameter(ge=0, le=100, description="Minimum percent positive for `marker`.")
    ] = None,
) -> Selection:
    return Selection(
        agent,
        target,
        diagnosis,
        disease_status,
        treatment_phase,
        design,
        tuple(study_id or ()),
        marker,
        marker_min,
    )


@dataclass(frozen=True, slots=True)
class PoolingOptions:
    ci: CiMethod
    conf_level: float
    transform: Transform
    tau2_method: Tau2Method
    hartung_knapp: bool
    include_case_reports: bool
    model: PoolingModel

    def as_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


Tau2Param = Annotated[
    Tau2Method,
    QueryParameter(description="Between-study variance: DerSimonian–Laird (default), REML or Paule–Mandel."),
]
HartungKnapp = Annotated[
    bool,
    QueryParameter(description="Hartung–Knapp–Sidik–Jonkman interval (t, k - 1 df) for the pooled estimate."),
]
CaseReports = Annotated[
    bool,
    QueryParameter(description="Pool case reports with cohorts (by default they are shown, not pooled)."),
]


def pooling_options(
    ci: FromQuery[CiMethod] = "wilson",
    conf_level: ConfLevel = 0.95,
    transform: FromQuery[Transform] = "logit",
    tau2_method: Tau2Param = "DL",
    hartung_knapp: HartungKnapp = False,
    include_case_reports: CaseReports = False,
    model: Annotated[
        PoolingModel,
        QueryParameter(
            description="inverse-variance (metafor rma, the default) or glmm: a binomial-normal mixed model "
            "(metafor rma.glmm, measure PLO) that needs no continuity correction for 0/n and n/n studies; "
            "logit scale, tau² by maximum likelihood, Wald interval."
        ),
    ] = "inverse-variance",
) -> PoolingOptions:
    if model == "glmm":
        # The GLMM fixes these choices; a request asking for another would get an answer it did not ask for.
        for name, value, default in (
            ("transform", transform, "logit"),
            ("tau2_method", tau2_method, "DL"),
            ("hartung_knapp", hartung_knapp, False),
        ):
            if value != default:
                raise RuleViolation(
                    f"model=glmm works on the logit scale with tau² by maximum likelihood and a Wald interval: {name}={str(value).lower()} does not apply",
                    field=name,
                )
    return PoolingOptions(ci, conf_level, transform, tau2_method, hartung_knapp, include_case_reports, model)


class EvidenceController(Controller):
    path = "/evidence"
    tags = ["Evidence"]
    guards = [requires("reader")]
    before_request = before_analysis  # type: ignore[assignment]
    parameters = reading.PARAMETER
    after_request = after_analysis  # type: ignore[assignment]
    response_headers = [scope_header, *answer_headers]
    # Which studies and patients, and how to pool: the same query parameters for every evidence endpoint.
    dependencies = {
        "chosen": Provide(selection, sync_to_thread=False),
        "pooling": Provide(pooling_options, sync_to_thread=False),
    }

    @get(
        "/response-rates",
        dependencies={"response": Provide(response_definition, sync_to_thread=False)},
        operation_id="getEvidenceResponseRates",
        summary="Response rates across studies, pooled",
        description=POOLING,
    )
    async def response_rates(
        self,
        db_session: DbSession,
        chosen: NamedDependency[Selection],
        response: NamedDependency[ResponseDefinition],
        pooling: NamedDependency[PoolingOptions],
    ) -> Evidence:
        return await evidence(db_session, chosen, response.as_outcome(), **pooling.as_kwargs())

    @get(
        formats.paths("/response-rates/forest-plot"),
        guards=[requires("figure")],  # draws every event (service.access.statement)
        dependencies={"response": Provide(response_definition, sync_to_thread=False)},
        operation_id=formats.operation_id("getEvidenceResponseRatesForestPlot"),
        responses=formats.REDIRECT,
        summary="Forest plot of response rates across studies",
        description="One row per study (rate, interval, weight; rows not pooled greyed), the pooled random-effects diamond and the prediction interval. "
        + POOLING,
        media_type="image/svg+xml",
    )
    async def response_rates_forest_plot(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        chosen: NamedDependency[Selection],
        response: NamedDependency[ResponseDefinition],
        pooling: NamedDependency[PoolingOptions],
        format: formats.FormatParam = None,
    ) -> Response[bytes] | Redirect:
        drawn = formats.chosen(request, format)
        if isinstance(drawn, Redirect):
            return drawn
        result = await evidence(db_session, chosen, response.as_outcome(), **pooling.as_kwargs())
        image = await offload(plots.forest_plot, result, drawn)
        return Response(image, media_type=plots.MEDIA_TYPES[drawn])

    @get(
        "/adverse-event-incidence",
        operation_id="getEvidenceAdverseEventIncidence",
        summary="Adverse-event incidence across studies, pooled",
        description=POOLING,
    )
    async def adverse_event_incidence(
        self,
        db_session: DbSession,
        chosen: NamedDependency[Selection],
        pooling: NamedDependency[PoolingOptions],
        term: Annotated[
            str,
            QueryParameter(
                pattern=r"^[^\x00]+$",
                min_length=1,
                max_length=200,
                description="Adverse-event term, any case.",
            ),
        ],
        grade_min: Annotated[
            int | None, QueryParameter(ge=1, le=5, description="Count only grade >= this; default any grade.")
        ] = None,
        grading_system: FromQuery[GradingSystem | None] = None,
    ) -> Evidence:
        outcome = {
            "type": "adverse_event_incidence",
            "term": term,
            "grade_min": grade_min,
            "grading_system": grading_system,
        }
        return await evidence(db_session, chosen, outcome, **pooling.as_kwargs())

    @get(
        "/hazard-ratios",
        operation_id="getEvidenceHazardRatios",
        summary="Printed hazard ratios across studies, pooled",
        description="Reported results with a `hazard_ratio` definition of `endpoint` (one per study; `comparison` "
        "chooses among several), each with the standard error its printed interval implies, pooled on the log "
        "scale by inverse variance as R metafor rma(yi, sei): random effects (tau² by DerSimonian–Laird, REML or "
        "Paule–Mandel; Wald or Hartung–Knapp interval), the fixed-effect estimate, the prediction interval, I², "
        "Cochran's Q, leave-one-out and cumulative-by-year views. Rows without an interval are shown, not pooled.",
    )
    async def hazard_ratios(
        self,
        db_session: DbSession,
        chosen: NamedDependency[Selection],
        endpoint: FromQuery[Literal["OS", "RFS", "EFS", "GRFS", "CRD"]] = "OS",
        comparison: Text = None,
        conf_level: ConfLevel = 0.95,
        tau2_method: Tau2Param = "DL",
        hartung_knapp: HartungKnapp = False,
        include_case_reports: CaseReports = False,
    ) -> HazardRatioEvidence:
        return await hazard_ratio_evidence(
            db_session,
            chosen,
            endpoint=endpoint,
            comparison=comparison,
            conf_level=conf_level,
            tau2_method=tau2_method,
            hartung_knapp=hartung_knapp,
            include_case_reports=include_case_reports,
        )


class ReconciliationController(Controller):
    path = "/studies/{study_id:uuid}/reconciliation"
    tags = ["Evidence"]
    guards = [requires("reader")]
    before_request = before_analysis  # type: ignore[assignment]
    parameters = reading.PARAMETER
    after_request = after_analysis  # type: ignore[assignment]
    response_headers = [scope_header, *answer_headers]

    @get(
        "/",
        operation_id="getReconciliation",
        summary="Check every reported result against its own numbers and the patient-level data",
        description=(
            "Per reported result: does the printed percentage equal numerator/denominator at the printed precision; does the "
            "printed CI match a standard method (Wilson, Agresti–Coull, Clopper–Pearson, Jeffreys, Wald); does a printed "
            "Fisher p-value match the printed counts; and, where a definition exists and the study has patients, does the "
            "figure recompute from the patient-level data. Verdicts: consistent, inconsistent, not_computable."
        ),
    )
    async def get_reconciliation(self, db_session: DbSession, study_id: FromPath[UUID]) -> Reconciliation:
        return await reconcile(db_session, study_id)


class DuplicatesController(Controller):
    path = "/patients/possible-duplicates"
    tags = ["Evidence"]
    guards = [requires("rows")]

    @get(
        "/",
        operation_id="listPossibleDuplicatePatients",
        summary="Pairs of patients in different studies who may be the same person",
        description="Scored on sex, age (allowing for the years between the studies), diagnosis subtype, genetic findings, agents received, institution or sponsor, and study dates. Record decisions with POST /api/v1/patient-links.",
    )
    async def list_possible_duplicates(
        self,
        db_session: DbSession,
        min_score: Annotated[float, QueryParameter(ge=0, le=1, description="Lowest score listed.")] = 0.3,
    ) -> DuplicateCandidates:
        return await possible_duplicates(db_session, min_score)
