"""Statistics endpoints under /api/v1/studies/{study_id}/: thin handlers over the analytics services."""

from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Redirect

from service.access.statement import DOCUMENTED as scope_header
from service.analytics import queries
from service.analytics.competing_risks.analysis import relapse_incidence
from service.analytics.competing_risks.regression import Cause, competing_risks_model
from service.analytics.competing_risks.transplant_origin import (
    GvhdKind,
    TransplantOutcome,
    transplant_incidence,
)
from service.analytics.designs.simon import simon_designs
from service.analytics.estimands.endpoints import Endpoint, Stratum
from service.analytics.estimands.groups import GroupSpec
from service.analytics.estimands.time_scale import TimeUnit
from service.analytics.estimands.undated import UndatedEvents
from service.analytics.parameters import ConfLevel, ResponseDefinition, group_spec, response_definition
from service.analytics.plots import formats
from service.analytics.plots import images as plots
from service.analytics.proportions.analysis import adverse_event_incidence, response_rates
from service.analytics.proportions.intervals import CiMethod
from service.analytics.regression.analysis import cox_model
from service.analytics.regression.cox import Ties
from service.analytics.regression.design import Covariate
from service.analytics.regression.response_model import Firth, response_model
from service.analytics.regression.time_varying import transplant_analysis
from service.analytics.schemas import (
    AdverseEventIncidence,
    CompetingRisksModel,
    CoxModel,
    CumulativeIncidence,
    ResponseModel,
    ResponseRates,
    SimonTwoStage,
    Survival,
    TimeToEvent,
    TransplantAnalysis,
)
from service.analytics.survival.analysis import DEFINITIONS, LandmarkTime, survival, time_to_event
from service.analytics.survival.estimators import ConfType
from service.auth.middleware import requires
from service.caching.hooks import DOCUMENTED as answer_headers
from service.caching.hooks import after_analysis, before_analysis
from service.common.controller import next_link
from service.common.heavy import offload
from service.common.vocab import GradingSystem
from service.data_cuts import reading
from service.db.session import DbSession
from service.errors import RuleViolation

LandmarkDays = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[0-9]{1,5}(,[0-9]{1,5}){0,19}$",
        description="Comma-separated landmark study days, e.g. 180,365.",
    ),
]
UndatedEventsParam = Annotated[
    UndatedEvents,
    QueryParameter(
        description="Patients whose event (or remission origin) has no study day: `withhold` (default) reports every estimate they could change as not computable, with the count; `exclude` leaves them out, counted and named, with a warning that this can bias."
    ),
]
LandmarkDay = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=36500,
        description="Landmark analysis: only patients followed event-free beyond this many days from the origin; with group_by=response_at_landmark or mrd_at_landmark, each grouped by their status then.",
    ),
]
LandmarkTimeParam = Annotated[
    LandmarkTime,
    QueryParameter(
        description="With landmark_day: `from_landmark` (default) restarts time at the landmark; `from_origin` keeps the origin's time scale with entry at the landmark (delayed entry)."
    ),
]
ModelCovariates = Annotated[
    list[Covariate],
    QueryParameter(
        min_items=1,
        max_items=7,
        description="Repeat for several covariates, e.g. arm and age_years; sex, diagnosis, disease_status and risk_group are factors.",
    ),
]
References = Annotated[
    list[str] | None,
    QueryParameter(
        max_items=5,
        description="A factor's reference level, factor:level (an arm by its label), e.g. diagnosis:B-ALL; default the first level present.",
    ),
]
Interactions = Annotated[
    list[str] | None,
    QueryParameter(
        max_items=3,
        description="An interaction of two covariates of the model, a*b (e.g. arm*sex): the products of their columns.",
    ),
]
StudyId = FromPath[UUID]
DEFINITION_TEXT = " ".join(f"**{k}**: {v}." for k, v in DEFINITIONS.items())


class StatisticsController(Controller):
    path = "/studies/{study_id:uuid}"
    tags = ["Statistics"]
    guards = [requires("reader")]
    before_request = before_analysis  # type: ignore[assignment]
    parameters = reading.PARAMETER
    after_request = after_analysis  # type: ignore[assignment]
    response_headers = [scope_header, *answer_headers]
    dependencies = {"groups": Provide(group_spec, sync_to_thread=False)}

    @get(
        "/response-rates",
        dependencies={"response": Provide(response_definition, sync_to_thread=False)},
        operation_id="getResponseRates",
        summary="Response rates with confidence intervals",
        description=(
            "A responder has at least one counted response assessment in the window (up to `by_day`) whose category is in "
            "`categories` and, with `mrd=negative`, whose MRD status is negative at that same assessment. By default only "
            "assessments of the study treatment count (`treatment_scope`). Intervals: "
            "Wilson, Agresti–Coull, Clopper–Pearson or Jeffreys as in Brown, Cai & DasGupta (2001). Two groups: "
            "Fisher's exact two-sided p and the odds ratio; more: Pearson chi-square."
        ),
    )
    async def get_response_rates(
        self,
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        response: NamedDependency[ResponseDefinition],
        ci: FromQuery[CiMethod] = "wilson",
        conf_level: ConfLevel = 0.95,
        timepoint: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[^\x00]*$",
                max_length=200,
                description="Only assessments with this timepoint label.",
            ),
        ] = None,
        target_rate: Annotated[
            float | None,
            QueryParameter(
                ge=0.001,
                le=0.999,
                description="Test each group's rate against this target with an exact binomial test (one-arm phase 2).",
            ),
        ] = None,
        trend_order: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[^\x00,]{1,200}(,[^\x00,]{1,200}){1,19}$",
                description="Cochran–Armitage test for trend across these groups in this order: comma-separated group keys or values, e.g. with group_by=age the bands from youngest to oldest.",
            ),
        ] = None,
        trend_scores: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^-?[0-9]{1,6}(\.[0-9]{1,6})?(,-?[0-9]{1,6}(\.[0-9]{1,6})?){1,19}$",
                description="The trend test's score of each group of trend_order (default 1, 2, ...).",
            ),
        ] = None,
    ) -> ResponseRates:
        return await response_rates(
            db_session,
            study_id,
            timepoint=timepoint,
            categories=response.categories,
            mrd=response.mrd,
            by_day=response.by_day,
            denominator=response.denominator,
            scope=response.scope,
            ci=ci,
            conf_level=conf_level,
            group_by=groups,
            target_rate=target_rate,
            trend_order=trend_order.split(",") if trend_order else [],
            trend_scores=[float(v) for v in trend_scores.split(",")] if trend_scores else [],
        )

    @get(
        "/adverse-event-incidence",
        operation_id="getAdverseEventIncidence",
        summary="Adverse-event incidence by term and worst grade",
        description="One row per term: patients with it at any grade, at grade >= `severe_grade`, and the distribution of each patient's worst grade; N is the group's patients. Two groups: Fisher's exact p per term.",
    )
    async def get_adverse_event_incidence(
        self,
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        severe_grade: Annotated[int, QueryParameter(ge=1, le=5)] = 3,
        grading_system: FromQuery[GradingSystem | None] = None,
        term: Annotated[str | None, QueryParameter(pattern=r"^[^\x00]*$", max_length=200)] = None,
    ) -> AdverseEventIncidence:
        return await adverse_event_incidence(
            db_session,
            study_id,
            severe_grade=severe_grade,
            grading_system=grading_system,
            term=term,
            group_by=groups,
        )

    @get(
        "/survival",
        operation_id="getSurvival",
        summary="Kaplan–Meier survival (OS, RFS, EFS, GRFS, CRD) with log-rank test, RMST and median follow-up",
        description=(
            "Kaplan–Meier product-limit estimate with Greenwood variance and pointwise intervals as R survfit; median as "
            "R quantile.survfit (midpoint of a flat at 0.5, interval from the band, null when not reached); log-rank as "
            "R survdiff (rho = 0). " + DEFINITION_TEXT
        ),
    )
    async def get_survival(
        self,
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        endpoint: FromQuery[Endpoint] = "OS",
        times: LandmarkDays = None,
        conf_type: FromQuery[ConfType] = "log-log",
        conf_level: ConfLevel = 0.95,
        time_unit: FromQuery[TimeUnit] = "days",
        rho: Annotated[
            float,
            QueryParameter(
                ge=0,
                le=5,
                description="G-rho weight S(t-)^rho of the test: 0 log-rank (default), 1 Peto–Peto.",
            ),
        ] = 0.0,
        strata: Annotated[
            Stratum | None, QueryParameter(description="Stratify the test by this patient attribute.")
        ] = None,
        tau: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                le=36500,
                description="Restricted mean survival time up to this many days, per group and against the first group.",
            ),
        ] = None,
        landmark_day: LandmarkDay = None,
        landmark_time: LandmarkTimeParam = "from_landmark",
        undated_events: UndatedEventsParam = "withhold",
    ) -> Survival:
        return await survival(
            db_session,
            study_id,
            endpoint=endpoint,
            landmark_days=_days(times),
            conf_type=conf_type,
            conf_level=conf_level,
            time_unit=time_unit,
            rho=rho,
            strata=strata,
            tau_days=tau,
            landmark_day=landmark_day,
            landmark_time=landmark_time,
            group_by=replace(groups, landmark_day=landmark_day),
            undated_events=undated_events,
        )

    @get(
        "/cumulative-incidence",
        operation_id="getCumulativeIncidence",
        summary="Cumulative incidence of relapse and non-relapse mortality (competing risks) with Gray's test",
        description=(
            "From first CR/CRi/CRh (the RFS analysis set): the Aalen–Johansen cumulative incidence of relapse and of death "
            "without relapse, each the competing risk of the other, with Gray's variance and pointwise log(-log) "
            "intervals, as R cmprsk::cuminc; Gray's test between groups; values at landmark days (`times`)."
        ),
    )
    async def get_cumulative_incidence(
        self,
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        times: LandmarkDays = None,
        conf_level: ConfLevel = 0.95,
        time_unit: FromQuery[TimeUnit] = "days",
        undated_events: UndatedEventsParam = "withhold",
        strata: Annotated[
            Stratum | None, QueryParameter(description="Stratify Gray's test by this patient attribute.")
        ] = None,
    ) -> CumulativeIncidence:
        return await relapse_incidence(
            db_session,
            study_id,
            landmark_days=_days(times),
            conf_level=conf_level,
            time_unit=time_unit,
            group_by=groups,
            undated_events=undated_events,
            strata=strata,
        )

    @get(
        "/cox",
        operation_id="getCoxModel",
        summary="Cox proportional-hazards model: hazard ratios, global tests and the proportional-hazards test",
        description=(
            "Efron ties as R coxph; hazard ratios with Wald intervals; likelihood-ratio, Wald and score tests; "
            "Schoenfeld-residual test per term and global as R cox.zph (transform 'km'). A warning below 10 events per "
            "coefficient; not computable (with the reason) without events, with a constant covariate, or when the "
            "likelihood has no finite maximum. " + DEFINITION_TEXT
        ),
    )
    async def get_cox_model(
        self,
        db_session: DbSession,
        study_id: StudyId,
        covariates: ModelCovariates,
        endpoint: FromQuery[Endpoint] = "OS",
        reference: References = None,
        interactions: Interactions = None,
        strata: Annotated[
            Stratum | None,
            QueryParameter(description="A separate baseline hazard per value of this attribute."),
        ] = None,
        conf_level: ConfLevel = 0.95,
        undated_events: UndatedEventsParam = "withhold",
        firth: Annotated[
            Firth,
            QueryParameter(
                description="Firth's penalised likelihood (as R coxphf: Breslow ties, profile penalised-likelihood "
                "intervals and p-values), whose estimate is finite where the likelihood is monotone (e.g. a group "
                "without events): `never` (default: the coxph fit, a monotone likelihood reported as not "
                "computable), `auto` (Firth's fit when the likelihood is monotone, said in a warning), `always`."
            ),
        ] = "never",
    ) -> CoxModel:
        return await cox_model(
            db_session,
            study_id,
            endpoint=endpoint,
            covariates=list(dict.fromkeys(covariates)),
            strata=strata,
            conf_level=conf_level,
            undated_events=undated_events,
            references=reference or [],
            interactions=interactions or [],
            firth=firth,
        )

    @get(
        "/competing-risks-model",
        operation_id="getCompetingRisksModel",
        summary="Fine–Gray and cause-specific Cox regression of relapse or non-relapse mortality",
        description=(
            "From the first CR (the analysis set of the cumulative incidence), relapse and death without relapse "
            "competing: Fine–Gray subdistribution hazard ratios (the effect on the cumulative incidence) with the "
            "robust variance, as R cmprsk::crr, and the cause-specific Cox model (competing events censored), as R "
            "coxph. Factors take a reference level (`reference=risk_group:standard`), `interactions=a*b` adds a "
            "product term."
        ),
    )
    async def get_competing_risks_model(
        self,
        db_session: DbSession,
        study_id: StudyId,
        covariates: ModelCovariates,
        cause: Annotated[
            Cause, QueryParameter(description="The cause modelled; the other competes.")
        ] = "relapse",
        reference: References = None,
        interactions: Interactions = None,
        conf_level: ConfLevel = 0.95,
        undated_events: UndatedEventsParam = "withhold",
    ) -> CompetingRisksModel:
        return await competing_risks_model(
            db_session,
            study_id,
            cause=cause,
            covariates=list(dict.fromkeys(covariates)),
            references=reference or [],
            interactions=interactions or [],
            conf_level=conf_level,
            undated_events=undated_events,
        )

    @get(
        "/transplant",
        operation_id="getTransplantAnalysis",
        summary="Allogeneic transplant as a time-varying event: Cox model, Mantel–Byar test, Simon–Makuch curves",
        description=(
            "Follow-up split at each patient's first dated transplant (`hsct` event) into (start, stop] intervals, as R "
            "tmerge: the covariate switches just after the transplant day. Cox model with the transplant as a "
            "time-varying covariate (and optional fixed covariates), equal to R coxph(Surv(tstart, tstop, event) ~ hsct); "
            "the Mantel–Byar test as the score test of the transplant alone; Simon–Makuch product-limit curves with "
            "patients moving from the not-transplanted to the transplanted risk set. Comparing transplanted and "
            "non-transplanted patients from the origin instead counts the wait for transplant as transplanted time "
            "(immortal-time bias). " + DEFINITION_TEXT
        ),
    )
    async def get_transplant_analysis(
        self,
        db_session: DbSession,
        study_id: StudyId,
        endpoint: FromQuery[Endpoint] = "OS",
        covariates: Annotated[
            list[Covariate] | None,
            QueryParameter(
                max_items=6, description="Fixed covariates beside the transplant, e.g. age_years."
            ),
        ] = None,
        ties: Annotated[
            Ties, QueryParameter(description="Ties method of the Cox model and its score (Mantel–Byar) test.")
        ] = "efron",
        conf_level: ConfLevel = 0.95,
        time_unit: FromQuery[TimeUnit] = "days",
        undated_events: UndatedEventsParam = "withhold",
    ) -> TransplantAnalysis:
        return await transplant_analysis(
            db_session,
            study_id,
            endpoint=endpoint,
            covariates=list(dict.fromkeys(covariates or [])),
            ties=ties,
            conf_level=conf_level,
            time_unit=time_unit,
            undated_events=undated_events,
        )

    @get(
        "/transplant/cumulative-incidence",
        operation_id="getTransplantCumulativeIncidence",
        summary="Cumulative incidence of GVHD or non-relapse mortality from the transplant",
        description=(
            "Timed from each patient's first dated allogeneic transplant: `outcome=gvhd` (acute GVHD of grade >= "
            "`gvhd_grade_min`, default II–IV, or chronic with `gvhd_kind`) with relapse, progression or death "
            "competing; `outcome=non_relapse_mortality` with relapse or progression competing. Aalen–Johansen with "
            "Gray's variance and test, as R cmprsk::cuminc; number at risk and cumulative events per cause. Patients "
            "never transplanted are not in the analysis set; undated transplants and events follow the undated-event rule."
        ),
    )
    async def get_transplant_cumulative_incidence(
        self,
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        outcome: FromQuery[TransplantOutcome] = "gvhd",
        gvhd_kind: FromQuery[GvhdKind] = "acute",
        gvhd_grade_min: Annotated[
            int, QueryParameter(ge=1, le=4, description="Lowest acute GVHD grade counted (2: grade II–IV).")
        ] = 2,
        times: LandmarkDays = None,
        conf_level: ConfLevel = 0.95,
        time_unit: FromQuery[TimeUnit] = "days",
        undated_events: UndatedEventsParam = "withhold",
    ) -> CumulativeIncidence:
        return await transplant_incidence(
            db_session,
            study_id,
            outcome=outcome,
            gvhd_kind=gvhd_kind,
            gvhd_grade_min=gvhd_grade_min,
            landmark_days=_days(times),
            conf_level=conf_level,
            time_unit=time_unit,
            group_by=groups,
            undated_events=undated_events,
        )

    @get(
        "/response-model",
        dependencies={"response": Provide(response_definition, sync_to_thread=False)},
        operation_id="getResponseModel",
        summary="Logistic regression of response (Firth's correction when the data separate)",
        description=(
            "Odds ratios of response (the response definition of the response rates) on arm and patient covariates. "
            "Maximum likelihood as R glm(family = binomial) with Wald tests; when the responses are separated (every "
            "patient of one group responded, or none did: estimates would be infinite) `firth=auto` fits Firth's "
            "penalised likelihood as R logistf (penalised likelihood-ratio p values, profile intervals); "
            "`firth=always` fits it regardless, `firth=never` reports separated data as not computable. Factors "
            "(sex, diagnosis, disease_status, risk_group, arm) take a reference level (`reference=diagnosis:B-ALL`); "
            "`interactions=arm*sex` adds a product term."
        ),
    )
    async def get_response_model(
        self,
        db_session: DbSession,
        study_id: StudyId,
        response: NamedDependency[ResponseDefinition],
        covariates: ModelCovariates,
        reference: References = None,
        interactions: Interactions = None,
        firth: Annotated[
            Firth,
            QueryParameter(
                description="`auto` (default): Firth's model when the data are separated; `always`; `never`."
            ),
        ] = "auto",
        conf_level: ConfLevel = 0.95,
    ) -> ResponseModel:
        return await response_model(
            db_session,
            study_id,
            response=response,
            covariates=list(dict.fromkeys(covariates)),
            references=reference or [],
            interactions=interactions or [],
            firth=firth,
            conf_level=conf_level,
        )

    @get(
        "/time-to-event",
        guards=[requires("rows")],  # one row per patient: patient-level
        operation_id="getTimeToEvent",
        summary="Time-to-event analysis rows (ADaM ADTTE shape)",
        description="One row per patient in the analysis set, with the reasons others are left out. "
        + DEFINITION_TEXT,
    )
    async def get_time_to_event(
        self,
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        endpoint: FromQuery[Endpoint] = "OS",
        time_unit: FromQuery[TimeUnit] = "days",
        undated_events: UndatedEventsParam = "withhold",
    ) -> TimeToEvent:
        return await time_to_event(
            db_session,
            study_id,
            endpoint=endpoint,
            time_unit=time_unit,
            group_by=groups,
            undated_events=undated_events,
        )

    @get(
        formats.paths("/survival/plot"),
        guards=[requires("figure")],  # draws every event (service.access.statement)
        operation_id=formats.operation_id("getSurvivalPlot"),
        summary="Kaplan–Meier plot with censor marks, median lines, the test's p and number at risk",
        media_type="image/svg+xml",
        responses=formats.REDIRECT,
    )
    async def get_survival_plot(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        endpoint: FromQuery[Endpoint] = "OS",
        conf_type: FromQuery[ConfType] = "log-log",
        conf_level: ConfLevel = 0.95,
        time_unit: FromQuery[TimeUnit] = "days",
        ci_bands: FromQuery[bool] = False,
        format: formats.FormatParam = None,
        landmark_day: LandmarkDay = None,
        landmark_time: LandmarkTimeParam = "from_landmark",
        undated_events: UndatedEventsParam = "withhold",
    ) -> Response[bytes] | Redirect:
        drawn = formats.chosen(request, format)
        if isinstance(drawn, Redirect):
            return drawn
        result = await survival(
            db_session,
            study_id,
            endpoint=endpoint,
            landmark_days=[],
            conf_type=conf_type,
            conf_level=conf_level,
            time_unit=time_unit,
            group_by=replace(groups, landmark_day=landmark_day),
            landmark_day=landmark_day,
            landmark_time=landmark_time,
            undated_events=undated_events,
        )
        image = await offload(
            plots.kaplan_meier_plot, result, f"{endpoint}: Kaplan–Meier estimate", ci_bands, drawn
        )
        return Response(image, media_type=plots.MEDIA_TYPES[drawn])

    @get(
        formats.paths("/cumulative-incidence/plot"),
        guards=[requires("figure")],  # draws every event (service.access.statement)
        operation_id=formats.operation_id("getCumulativeIncidencePlot"),
        summary="Cumulative incidence plot of relapse and non-relapse mortality, with Gray's test",
        media_type="image/svg+xml",
        responses=formats.REDIRECT,
    )
    async def get_cumulative_incidence_plot(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        study_id: StudyId,
        groups: NamedDependency[GroupSpec],
        time_unit: FromQuery[TimeUnit] = "days",
        format: formats.FormatParam = None,
        undated_events: UndatedEventsParam = "withhold",
    ) -> Response[bytes] | Redirect:
        drawn = formats.chosen(request, format)
        if isinstance(drawn, Redirect):
            return drawn
        result = await relapse_incidence(
            db_session,
            study_id,
            landmark_days=[],
            conf_level=0.95,
            time_unit=time_unit,
            group_by=groups,
            undated_events=undated_events,
        )
        image = await offload(
            plots.cumulative_incidence_plot, result, "Cumulative incidence (competing risks)", drawn
        )
        return Response(image, media_type=plots.MEDIA_TYPES[drawn])

    @get(
        formats.paths("/swimmer-plot"),
        guards=[requires("rows")],  # one lane per patient: patient-level
        operation_id=formats.operation_id("getSwimmerPlot"),
        responses=formats.REDIRECT,
        summary="Swimmer plot: one lane per patient along study days",
        description=(
            "Patients grouped by arm. A grey follow-up lane from day 1 to the last recorded day, ending in an arrow when the "
            "patient is alive there (ongoing); treatment lines as bars (by phase); responses, MRD status, HSCT, GVHD, "
            "relapse and death as markers; the legend lists only the symbols drawn. Records without a study day are not "
            "drawn. One page of patients per plot (`limit`, at most "
            f"{plots.MAX_SWIMMER_LANES}; `offset`), with a `Link` to the next page."
        ),
        media_type="image/svg+xml",
        response_headers=[
            ResponseHeader(
                name="Link",
                description='`rel="next"` when more patients remain',
                required=False,
                documentation_only=True,
            )
        ],
    )
    async def get_swimmer_plot(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        study_id: StudyId,
        format: formats.FormatParam = None,
        limit: Annotated[
            int,
            QueryParameter(
                ge=1,
                le=plots.MAX_SWIMMER_LANES,
                description="Patients per plot (one lane each), arm by arm, in creation order within an arm.",
            ),
        ] = 100,
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000_000, description="Patients to skip.")] = 0,
    ) -> Response[bytes] | Redirect:
        drawn = formats.chosen(request, format)
        if isinstance(drawn, Redirect):
            return drawn
        await queries.require_study(db_session, study_id)
        page, total = await queries.fetch_patient_page(db_session, study_id, limit, offset)
        labels = {arm.id: arm.label for arm in await queries.fetch_arms(db_session, study_id)}
        patients = [
            (row.id, row.subject_code, labels.get(row.arm_id, "No arm"), row.last_recorded_day)
            for row in page
        ]
        treatments, outcomes = await queries.fetch_swimmer_records(db_session, [p[0] for p in patients])
        title = "Swimmer plot" + (
            f": patients {offset + 1}–{offset + len(patients)} of {total}" if len(patients) < total else ""
        )
        image = await offload(plots.swimmer_plot, patients, treatments, outcomes, title, drawn)
        return Response(
            image, media_type=plots.MEDIA_TYPES[drawn], headers=next_link(request, limit, offset, total)
        )


class DesignController(Controller):
    path = "/designs"
    tags = ["Statistics"]
    guards = [requires("reader")]

    @get(
        "/simon-two-stage",
        operation_id="getSimonTwoStageDesign",
        summary="Simon's optimal and minimax two-stage phase 2 designs",
        description=(
            "Given the uninteresting response rate p0, the target p1, the type I error alpha and the type II error beta: the "
            "design minimising the expected sample size under p0 (optimal) and the one with the smallest maximum size "
            "(minimax), searched exactly up to n_max patients (Simon 1989; R clinfun::ph2simon)."
        ),
    )
    async def get_simon_two_stage(
        self,
        p0: Annotated[
            float, QueryParameter(ge=0.001, le=0.999, description="Response rate not worth pursuing.")
        ],
        p1: Annotated[
            float, QueryParameter(ge=0.001, le=0.999, description="Target response rate (above p0).")
        ],
        alpha: Annotated[float, QueryParameter(ge=0.001, le=0.5, description="Type I error.")] = 0.05,
        beta: Annotated[
            float, QueryParameter(ge=0.01, le=0.5, description="Type II error (1 − power).")
        ] = 0.2,
        n_max: Annotated[
            int, QueryParameter(ge=2, le=100, description="Largest total sample size searched.")
        ] = 100,
    ) -> SimonTwoStage:
        if p1 <= p0:
            raise RuleViolation("p1 must be above p0", field="p1")
        # A few milliseconds of numpy since the search was vectorised: a thread, not a process.
        return await offload(simon_designs, p0, p1, alpha, beta, n_max)


def _days(times: str | None) -> list[float]:
    return [float(t) for t in times.split(",")] if times else []


__all__ = ["DesignController", "StatisticsController"]
