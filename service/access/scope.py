"""The one place that says what an identity sees and may change, as SQL conditions.

Every read of a study's data goes through these conditions (the repositories' pages and reads,
the analyses' patient sets, the exports, the evidence pools), and every write through
`authorize_write`. A record outside the scope is absent: 404, exactly as if it did not exist.
A record in scope that the identity may only read refuses a write with 403.

The request's scope is a context variable, set by authentication for every authenticated
request (service.auth.middleware) and so seen by every query the request makes, in its own
session or in the sessions a streamed export opens later in the same task; code that runs
outside a request (the command line, the seed loader, migrations) sees everything."""

from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import and_, false, or_, select, true
from sqlmodel import col

from service.access.grants import Grant
from service.auth.tokens import RANK
from service.db import models

Purpose = Literal["rows", "analysis", "write"]
# Which grant roles serve each purpose.
ROLES: dict[str, frozenset[str]] = {
    "rows": frozenset({"reader", "curator"}),
    "analysis": frozenset({"reader", "curator", "aggregate"}),
    "write": frozenset({"curator"}),
}


@dataclass(frozen=True)
class Scope:
    role: str | None = "admin"  # the global role; None for an identity with grants
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    # What the request's analyses read: "analysis" (every grant of the study, aggregate too),
    # or "rows" on the routes that return patient-level rows (service.auth.middleware).
    purpose: Purpose = "analysis"
    # Counts below this are withheld from analyses of patients the identity cannot read one by
    # one (service.access.disclosure); 0: never.
    min_count: int = 0
    # The studies whose patients this request's analyses counted (filled as they are queried).
    analysed: set[UUID] = field(default_factory=set)

    @property
    def everything(self) -> bool:
        return self.role is not None

    def sites(self, purpose: Purpose) -> dict[UUID, frozenset[UUID] | None]:
        """Study -> the sites open for `purpose` (None: the whole study)."""
        return self._sites[purpose]

    @cached_property
    def _sites(self) -> dict[str, dict[UUID, frozenset[UUID] | None]]:
        out: dict[str, dict[UUID, frozenset[UUID] | None]] = {}
        for purpose, roles in ROLES.items():
            studies: dict[UUID, frozenset[UUID] | None] = {}
            for grant in self.grants:
                if grant.role not in roles:
                    continue
                if grant.sites is None or (grant.study_id in studies and studies[grant.study_id] is None):
                    studies[grant.study_id] = None
                else:
                    studies[grant.study_id] = (studies.get(grant.study_id) or frozenset()) | frozenset(
                        grant.sites
                    )
            out[purpose] = studies
        return out

    @cached_property
    def studies(self) -> frozenset[UUID]:
        """Every study any grant names: its study-level records are visible."""
        return frozenset(g.study_id for g in self.grants)

    # --- SQL conditions -------------------------------------------------------------------

    def study_condition(self, column: Any) -> Any:
        """Rows whose study (`column`) is visible."""
        if self.everything:
            return true()
        return col(column).in_(self.studies) if self.studies else false()

    def study_patients(self, study_id: UUID) -> Any:
        """The patients of `study_id` the request's analyses are computed on."""
        self.analysed.add(study_id)
        return self.patient_condition(self.purpose, study_id)

    def withholds_counts(self) -> bool:
        """Whether this request's analyses counted patients the identity cannot read one by one
        (an aggregate grant, or one wider than the reader grant's sites)."""
        if self.everything or self.min_count <= 0 or self.purpose == "rows":
            return False
        analysis, rows = self.sites("analysis"), self.sites("rows")
        # absent from `rows` (no reader grant) differs from None (the whole study)
        return any(
            study in analysis and (study not in rows or analysis[study] != rows[study])
            for study in self.analysed
        )

    def patient_condition(self, purpose: Purpose = "rows", study_id: UUID | None = None) -> Any:
        """Patients open for `purpose` (of `study_id` only, when given)."""
        if self.everything:
            return true() if study_id is None else col(models.Patient.study_id) == study_id
        if purpose == "analysis" and study_id is None:
            self.analysed.update(self.sites("analysis"))  # an evidence pool over every study
        parts = []
        for study, sites in self.sites(purpose).items():
            if study_id is not None and study != study_id:
                continue
            if sites is None:
                parts.append(col(models.Patient.study_id) == study)
            else:
                parts.append(
                    and_(col(models.Patient.study_id) == study, col(models.Patient.site_id).in_(sites))
                )
        return or_(*parts) if parts else false()

    def of_patients(self, column: Any, purpose: Purpose = "rows") -> Any:
        """Rows whose patient (`column`) is open for `purpose`."""
        if self.everything:
            return true()
        return col(column).in_(select(col(models.Patient.id)).where(self.patient_condition(purpose)))

    def table_condition(self, table: Any) -> Any | None:
        """The rows of `table` this identity may read; None where it reads every row (a global
        role, the shared catalogues), so that the common query stays as it was."""
        if self.everything:
            return None
        name = table.name
        if name == "studies":
            return self.study_condition(table.c.id)
        if name in ("arms", "sites", "reported_results"):
            return self.study_condition(table.c.study_id)
        if name == "patients":
            return self.patient_condition("rows")
        if name in ("treatments", "adverse_events", "outcomes"):
            return self.of_patients(table.c.patient_id)
        if name == "patient_links":
            return and_(self.of_patients(table.c.patient_a_id), self.of_patients(table.c.patient_b_id))
        return None

    # --- checks on one record -------------------------------------------------------------

    def may_write_study_level(self, study_id: UUID) -> bool:
        """The study's own records (study, arms, sites, reported results): a whole-study curator."""
        if self.everything:
            return RANK[self.role or "reader"] >= RANK["curator"]
        return study_id in self.sites("write") and self.sites("write")[study_id] is None

    def writing_grant(self, study_id: UUID | None, site_id: UUID | None) -> dict[str, Any] | None:
        """The curator grant that allows a write on `study_id` (at `site_id`), as recorded."""
        for grant in self.grants:
            if grant.role != "curator" or grant.study_id != study_id:
                continue
            if grant.sites is None or (site_id is not None and site_id in grant.sites):
                return {
                    "study_id": str(grant.study_id),
                    "role": grant.role,
                    "sites": grant.sites and [str(s) for s in grant.sites],
                }
        return None

    def may_write_patient(self, study_id: UUID, site_id: UUID | None) -> bool:
        if self.everything:
            return RANK[self.role or "reader"] >= RANK["curator"]
        if study_id not in self.sites("write"):
            return False
        sites = self.sites("write")[study_id]
        return sites is None or (site_id is not None and site_id in sites)


UNRESTRICTED = Scope()
_CURRENT: ContextVar[Scope] = ContextVar("access_scope", default=UNRESTRICTED)


def enter(scope: Scope) -> None:
    """Make `scope` the current task's (authentication does, once per request)."""
    _CURRENT.set(scope)


def current_scope() -> Scope:
    return _CURRENT.get()
