"""Every table of the registry. Alembic reads this module's metadata; the service never calls
create_all on the registry's database (only on a data cut's own read-only copy of its rows:
service.data_cuts.rows). Vocabulary columns are plain strings guarded by CHECK constraints
(portable between SQLite and Postgres, and no native enum types to migrate)."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    MetaData,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from service.common import vocab
from service.db.ids import uuid7

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def sqlalchemy_integer() -> Any:
    # SQLite autoincrements only an INTEGER primary key.
    from sqlalchemy import Integer

    return Integer()


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored or given time as aware UTC: SQLite hands back naive datetimes, stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def json_column(nullable: bool = False) -> Any:
    return Field(default=None if nullable else [], sa_type=JSON, nullable=nullable)


def one_of(column: str, vocabulary: object, name: str | None = None) -> CheckConstraint:
    options = vocabulary if isinstance(vocabulary, tuple) else vocab.values(vocabulary)
    allowed = ", ".join(f"'{v}'" for v in options)
    return CheckConstraint(f"{column} IS NULL OR {column} IN ({allowed})", name=name or column)


def not_day_zero(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IS NULL OR {column} <> 0", name=f"{column}_not_zero")


class Record(SQLModel):
    """Columns every stored record has."""

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    version: int = Field(default=1, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    provenance: list[dict[str, Any]] = json_column()


class Agent(Record, table=True):
    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("name"),
        # What the name looks like (service.common.lookalikes): migration 0013.
        Index("uq_agents_name_key", "name_key", unique=True),
    )

    name: str = Field(max_length=200)
    name_key: str | None = Field(default=None, max_length=400)
    agent_class: str | None = Field(default=None, max_length=200)
    targets: list[str] = json_column()
    description: str | None = None
    atc_code: str | None = Field(default=None, max_length=7, index=True)


class Study(Record, table=True):
    __tablename__ = "studies"
    __table_args__ = (
        # One study per source document (and so per ClinicalTrials.gov record): migration 0012.
        Index("uq_studies_source_document", "source_document", unique=True),
        one_of("design", vocab.Design),
        one_of("overall_status", vocab.OverallStatus),
        CheckConstraint("target_enrollment IS NULL OR target_enrollment >= 0", name="target_enrollment"),
        CheckConstraint("actual_enrollment IS NULL OR actual_enrollment >= 0", name="actual_enrollment"),
        Index(None, "design"),
        Index(None, "overall_status"),
    )

    title: str = Field(max_length=500)
    official_title: str | None = Field(default=None, max_length=1000)
    design: str = Field(max_length=40)
    phases: list[str] = json_column()
    overall_status: str | None = Field(default=None, max_length=40)
    registry_ids: list[str] = json_column()
    conditions: list[str] = json_column()
    sponsor: str | None = Field(default=None, max_length=500)
    institution: str | None = Field(default=None, max_length=500)
    country: str | None = Field(default=None, max_length=200)
    target_enrollment: int | None = None
    actual_enrollment: int | None = None
    start_date: str | None = Field(default=None, max_length=10)
    end_date: str | None = Field(default=None, max_length=10)
    publication: dict[str, Any] | None = json_column(nullable=True)
    summary: str | None = None
    eligibility: dict[str, Any] | None = json_column(nullable=True)
    # What a trial registry records beside the protocol fields above (migration 0017).
    registry: dict[str, Any] | None = json_column(nullable=True)
    source_document: str | None = Field(default=None, max_length=200)
    # Set while an admin has locked the study (reason, locked_at, locked_by): migration 0020.
    lock: dict[str, Any] | None = json_column(nullable=True)


class Arm(Record, table=True):
    __tablename__ = "arms"
    __table_args__ = (
        UniqueConstraint("study_id", "label"),
        # Lets patients and reported results reference (arm, study) together, so the database
        # itself refuses an arm from another study.
        UniqueConstraint("id", "study_id"),
        CheckConstraint("planned_size IS NULL OR planned_size >= 0", name="planned_size"),
    )

    study_id: UUID = Field(foreign_key="studies.id", index=True)
    label: str = Field(max_length=200)
    description: str | None = None
    planned_size: int | None = None


class Site(Record, table=True):
    """A centre enrolling patients into a study (migration 0014)."""

    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("study_id", "code"),)

    study_id: UUID = Field(foreign_key="studies.id", index=True)
    code: str = Field(max_length=40)
    institution: str = Field(max_length=200)
    city: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=200)
    ctgov_facility_id: str | None = Field(default=None, max_length=100)


class ArmAgent(SQLModel, table=True):
    __tablename__ = "arm_agents"

    arm_id: UUID = Field(foreign_key="arms.id", primary_key=True)
    agent_id: UUID = Field(foreign_key="agents.id", primary_key=True, index=True)


class Patient(Record, table=True):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("study_id", "subject_code"),
        Index("uq_patients_study_id_subject_key", "study_id", "subject_key", unique=True),
        ForeignKeyConstraint(["arm_id", "study_id"], ["arms.id", "arms.study_id"]),
        one_of("sex", vocab.Sex),
        one_of("diagnosis", vocab.Diagnosis),
        one_of("disease_status", vocab.DiseaseStatus),
        CheckConstraint("ecog IS NULL OR (ecog >= 0 AND ecog <= 5)", name="ecog"),
        CheckConstraint("age_years IS NULL OR age_years >= 0", name="age_years"),
        # The list filters (always with a study in practice).
        Index(None, "study_id", "diagnosis"),
        Index(None, "study_id", "disease_status"),
        Index(None, "study_id", "sex"),
        Index(None, "study_id", "age_years"),
    )

    study_id: UUID = Field(foreign_key="studies.id", index=True)
    arm_id: UUID | None = Field(default=None, index=True)
    # Same study as the patient: checked by the service (SQLite cannot add a composite key to
    # an existing table without rebuilding it).
    site_id: UUID | None = Field(default=None, foreign_key="sites.id", index=True)
    subject_code: str = Field(max_length=100)
    subject_key: str | None = Field(default=None, max_length=400)  # service.common.lookalikes
    age_years: float | None = None
    sex: str | None = Field(default=None, max_length=10)
    diagnosis: str = Field(max_length=10)
    diagnosis_subtype: str | None = Field(default=None, max_length=500)
    disease_status: str | None = Field(default=None, max_length=40)
    ecog: int | None = None
    risk_group: str | None = Field(default=None, max_length=200)
    wbc_10e9_per_l: float | None = None
    hemoglobin_g_per_l: float | None = None
    platelets_10e9_per_l: float | None = None
    marrow_blasts_pct: float | None = None
    peripheral_blasts_pct: float | None = None
    genetic_findings: list[str] = json_column()
    markers: list[dict[str, Any]] = json_column()
    notes: str | None = None
    icd10_code: str | None = Field(default=None, max_length=10, index=True)
    icdo3_morphology: str | None = Field(default=None, max_length=10, index=True)
    # HIPAA Safe Harbor: ages of 90 and above are stored as 90 with this flag set.
    age_capped: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    # The latest study day of any of the patient's outcomes, adverse events (onset, resolution)
    # and treatments (start, end): where OS and RFS censor. Kept up to date by the database's
    # own triggers on those tables (migration 0009), whatever path writes them, so the survival
    # analyses read one column instead of a five-way union per request. Not part of the API.
    last_recorded_day: int | None = None


class Treatment(Record, table=True):
    __tablename__ = "treatments"
    __table_args__ = (
        UniqueConstraint("id", "patient_id"),
        one_of("phase", vocab.TreatmentPhase),
        not_day_zero("start_day"),
        not_day_zero("end_day"),
        CheckConstraint(
            "start_day IS NULL OR end_day IS NULL OR end_day >= start_day", name="end_after_start"
        ),
        Index(None, "phase"),
    )

    patient_id: UUID = Field(foreign_key="patients.id", index=True)
    phase: str = Field(max_length=40)
    regimen: str | None = Field(default=None, max_length=200)
    line_number: int | None = None
    description: str | None = None
    start_day: int | None = None
    end_day: int | None = None
    start_date: str | None = Field(default=None, max_length=10)
    timing_text: str | None = Field(default=None, max_length=500)
    # Part of the study's own intervention (false: prior therapy, salvage, off-protocol lines).
    on_study: bool = Field(default=True, sa_column_kwargs={"server_default": "1"})


class TreatmentComponent(SQLModel, table=True):
    __tablename__ = "treatment_components"
    __table_args__ = (UniqueConstraint("treatment_id", "position"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    treatment_id: UUID = Field(foreign_key="treatments.id", index=True)
    position: int
    agent_id: UUID = Field(foreign_key="agents.id", index=True)
    dose: float | None = None
    dose_unit: str | None = Field(default=None, max_length=50)
    route: str | None = Field(default=None, max_length=50)
    schedule: str | None = Field(default=None, max_length=200)


class AdverseEvent(Record, table=True):
    __tablename__ = "adverse_events"
    __table_args__ = (
        ForeignKeyConstraint(["treatment_id", "patient_id"], ["treatments.id", "treatments.patient_id"]),
        one_of("grading_system", vocab.GradingSystem),
        one_of("outcome", vocab.AdverseEventOutcome),
        one_of("attribution", vocab.Attribution),
        CheckConstraint("grade IS NULL OR (grade >= 1 AND grade <= 5)", name="grade"),
        CheckConstraint("grade IS NOT NULL OR grade_text IS NOT NULL", name="grade_given"),
        CheckConstraint("grade IS NULL OR grade <> 5 OR outcome = 'fatal'", name="grade5_fatal"),
        CheckConstraint("outcome IS NULL OR outcome <> 'fatal' OR grade = 5", name="fatal_grade5"),
        not_day_zero("onset_day"),
        not_day_zero("resolution_day"),
        CheckConstraint(
            "onset_day IS NULL OR resolution_day IS NULL OR resolution_day >= onset_day",
            name="resolution_after_onset",
        ),
        Index(None, "grade"),
        Index(None, "grading_system"),
    )

    patient_id: UUID = Field(foreign_key="patients.id", index=True)
    treatment_id: UUID | None = Field(default=None, index=True)
    term: str = Field(max_length=200)
    verbatim_term: str | None = Field(default=None, max_length=200)
    meddra_code: str | None = Field(default=None, max_length=8)
    grade: int | None = None
    grade_text: str | None = Field(default=None, max_length=50)
    grading_system: str | None = Field(default=None, max_length=20)
    onset_day: int | None = None
    resolution_day: int | None = None
    timing_text: str | None = Field(default=None, max_length=500)
    serious: bool | None = None
    outcome: str | None = Field(default=None, max_length=20)
    attribution: str | None = Field(default=None, max_length=20)
    notes: str | None = None


class Outcome(Record, table=True):
    __tablename__ = "outcomes"
    __table_args__ = (
        one_of("kind", vocab.OutcomeKind),
        one_of("category", vocab.ResponseCategory),
        one_of("mrd_status", vocab.MrdStatus),
        one_of("mrd_method", vocab.MrdMethod),
        one_of("sample", vocab.Sample),
        one_of("event_type", vocab.EventType),
        not_day_zero("study_day"),
        CheckConstraint("kind <> 'event' OR event_type IS NOT NULL", name="event_has_type"),
        CheckConstraint("kind <> 'observation' OR name IS NOT NULL", name="observation_has_name"),
        one_of("gvhd_kind", vocab.GvhdKind),
        one_of("gvhd_severity", vocab.ChronicGvhdSeverity),
        CheckConstraint("gvhd_grade IS NULL OR gvhd_grade BETWEEN 1 AND 4", name="gvhd_grade_range"),
        CheckConstraint("event_type = 'gvhd' OR gvhd_kind IS NULL", name="gvhd_fields_on_gvhd"),
        Index(None, "patient_id", "kind"),
        # Each patient's first dated death or relapse: an index-only range per event type.
        Index(None, "event_type", "patient_id", "study_day"),
        Index(None, "category"),
        Index(None, "mrd_status"),
        Index(None, "study_day"),
        # The treatment an assessment evaluates must be the same patient's.
        ForeignKeyConstraint(["treatment_id", "patient_id"], ["treatments.id", "treatments.patient_id"]),
    )

    patient_id: UUID = Field(foreign_key="patients.id", index=True)
    treatment_id: UUID | None = Field(default=None, index=True)
    kind: str = Field(max_length=20)
    study_day: int | None = None
    timing_text: str | None = Field(default=None, max_length=500)
    date: str | None = Field(default=None, max_length=10)
    timepoint_label: str | None = Field(default=None, max_length=200)
    # response
    category: str | None = Field(default=None, max_length=10)
    possible_categories: list[str] = json_column()
    category_text: str | None = Field(default=None, max_length=500)
    mrd_status: str | None = Field(default=None, max_length=20)
    mrd_method: str | None = Field(default=None, max_length=20)
    mrd_target: str | None = Field(default=None, max_length=200)
    mrd_sensitivity: float | None = None
    mrd_level: float | None = None
    mrd_level_text: str | None = Field(default=None, max_length=200)
    sample: str | None = Field(default=None, max_length=30)
    chimerism_pct: float | None = None
    markers: list[dict[str, Any]] = json_column()
    # event
    event_type: str | None = Field(default=None, max_length=30)
    cause: str | None = Field(default=None, max_length=500)
    # GVHD events: acute grade (1–4) or chronic severity, and whether systemic therapy was needed.
    gvhd_kind: str | None = Field(default=None, max_length=10)
    gvhd_grade: int | None = None
    gvhd_severity: str | None = Field(default=None, max_length=10)
    gvhd_systemic_therapy: bool | None = None
    # observation
    name: str | None = Field(default=None, max_length=200)
    value: float | None = None
    unit: str | None = Field(default=None, max_length=50)
    notes: str | None = None


class ReportedResult(Record, table=True):
    __tablename__ = "reported_results"
    __table_args__ = (
        ForeignKeyConstraint(["arm_id", "study_id"], ["arms.id", "arms.study_id"]),
        CheckConstraint(
            "numerator IS NULL OR denominator IS NULL OR numerator <= denominator",
            name="numerator_le_denominator",
        ),
    )

    study_id: UUID = Field(foreign_key="studies.id", index=True)
    arm_id: UUID | None = Field(default=None, index=True)
    measure: str = Field(max_length=500)
    population: str | None = Field(default=None, max_length=500)
    timepoint: str | None = Field(default=None, max_length=200)
    numerator: int | None = None
    denominator: int | None = None
    value: float | None = None
    unit: str | None = Field(default=None, max_length=50)
    ci_lower: float | None = None
    ci_upper: float | None = None
    ci_level: float | None = None
    ci_method: str | None = Field(default=None, max_length=100)
    range_lower: float | None = None
    range_upper: float | None = None
    p_value: float | None = None
    test: str | None = Field(default=None, max_length=200)
    notes: str | None = None
    # What the figure measures, in the terms of the statistics endpoints (see
    # service/reported_results/definitions.py); null when no definition fits.
    definition: dict[str, Any] | None = json_column(nullable=True)


class SourceRecord(SQLModel, table=True):
    """A trial registry record as it was received, one row per version imported (migration
    0018): the provenance pointers of what was read from it resolve against it, a re-export
    writes its results back unchanged, and a newer version is compared with the one before."""

    __tablename__ = "source_records"
    __table_args__ = (UniqueConstraint("study_id", "sha256"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    study_id: UUID = Field(foreign_key="studies.id", index=True)
    source: str = Field(max_length=200)  # the study's source document: "ClinicalTrials.gov NCT…"
    # The registry's own version (ClinicalTrials.gov: the last update posted, YYYY-MM-DD).
    version: str | None = Field(default=None, max_length=40)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)  # bytes as received
    content: bytes = Field(sa_type=LargeBinary)  # as received, zlib-compressed
    imported_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class DataCut(SQLModel, table=True):
    """The data as it stood at a moment, frozen (service.data_cuts, migration 0021): never
    updated except to mark it retired, never deleted."""

    __tablename__ = "data_cuts"

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    label: str = Field(max_length=200)
    note: str | None = None
    study_ids: list[str] = json_column()
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)  # bytes of the content, uncompressed
    content: bytes = Field(sa_type=LargeBinary)  # zlib-compressed
    audit_records: int = Field(sa_type=BigInteger)
    audit_head: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    created_by: str = Field(max_length=100)
    studies_locked: bool = False
    retired_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    retired_by: str | None = Field(default=None, max_length=100)
    retire_reason: str | None = Field(default=None, max_length=500)


class DataCutAnalysis(SQLModel, table=True):
    """An analysis answered on a data cut, kept for the cut's release package (migration 0022):
    the first answer of each distinct request (path and query), which on a cut never changes."""

    __tablename__ = "data_cut_analyses"
    __table_args__ = (UniqueConstraint("cut_id", "request_key"),)

    id: UUID = Field(default_factory=uuid7, primary_key=True)
    cut_id: UUID = Field(foreign_key="data_cuts.id", index=True)
    request_key: str = Field(max_length=64)  # SHA-256 of the path and the sorted query
    operation: str = Field(max_length=100)
    path: str = Field(max_length=500)
    parameters: list[list[str]] = json_column()
    media_type: str = Field(max_length=100)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)
    content: bytes = Field(sa_type=LargeBinary)  # zlib-compressed
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    created_by: str = Field(max_length=100)


class PatientLink(Record, table=True):
    """A curator's decision on whether two patients in different studies are the same person."""

    __tablename__ = "patient_links"
    __table_args__ = (
        UniqueConstraint("patient_a_id", "patient_b_id"),
        CheckConstraint("patient_a_id <> patient_b_id", name="distinct_patients"),
        CheckConstraint("decision IN ('same', 'different')", name="decision"),
    )

    patient_a_id: UUID = Field(foreign_key="patients.id", index=True)
    patient_b_id: UUID = Field(foreign_key="patients.id", index=True)
    decision: str = Field(max_length=20)
    note: str | None = None


class ApiToken(Record, table=True):
    """A bearer token: only its SHA-256 is stored; the secret is shown once, at creation."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        UniqueConstraint("name"),
        one_of("role", ("reader", "curator", "admin")),
    )

    name: str = Field(max_length=100)
    # A global role, or (role null) the grants: [{study_id, role, sites}] (service.access.grants).
    role: str | None = Field(default=None, max_length=10)
    grants: list[dict[str, Any]] | None = json_column(nullable=True)
    token_hash: str = Field(max_length=64)
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AuditRecord(SQLModel, table=True):
    """One create, update or delete, append-only (the database refuses UPDATE and DELETE; see
    migration 0004). `hash` covers this record and `prev_hash`, so any edit breaks the chain."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index(None, "resource_type", "resource_id"),
        # A study's last record is its data version (service.caching.versions): migration 0019.
        Index(None, "study_id", "seq"),
        CheckConstraint("action IN ('create', 'update', 'delete')", name="action"),
    )

    seq: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(sqlalchemy_integer(), "sqlite")
    )
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))
    actor: str = Field(max_length=100)
    actor_role: str = Field(max_length=20)
    action: str = Field(max_length=10)
    resource_type: str = Field(max_length=40)
    resource_id: UUID = Field(index=True)
    changes: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    reason: str | None = Field(default=None, max_length=500)
    # The study the record belongs to, and the grant that allowed the write (null for a global
    # role): migration 0016. Hashed only when present, so older records verify as they were.
    study_id: UUID | None = Field(default=None)
    access_grant: dict[str, Any] | None = json_column(nullable=True)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # "sha256", or "hmac-sha256" when written with AUDIT_HMAC_KEY set.
    hash_alg: str = Field(default="sha256", max_length=20, sa_column_kwargs={"server_default": "sha256"})


class IdempotencyKey(SQLModel, table=True):
    """A POST's Idempotency-Key with the response it produced, stored in the same transaction as
    the record it created: a retry (from any replica, after any restart) replays the response."""

    __tablename__ = "idempotency_keys"

    actor: str = Field(max_length=100, primary_key=True)
    key: str = Field(max_length=200, primary_key=True)
    request_hash: str = Field(max_length=64)
    status_code: int
    location: str | None = Field(default=None, max_length=500)
    etag: str | None = Field(default=None, max_length=50)
    response_body: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
