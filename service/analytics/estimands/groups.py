"""Splitting a study's patients into analysis groups: the whole study, its arms or sites, a patient
attribute (sex, diagnosis, disease status, risk group), age bands with explicit cut points, or a
patient's response or MRD status at a landmark.

Every query that groups reads one SQL expression per patient, its *group value*
(`GroupSpec.column`), and `resolve` turns the values into groups. A comparison never invents a
group: patients whose value is missing (no arm, no site, no recorded attribute, no assessment by
the landmark) are left out of it, counted and named with the reason (a "missing" group would turn
a two-group comparison into a three-group test of a group nobody chose)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from uuid import UUID

from sqlalchemy import and_, case, func, literal, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from service.analytics.queries import raw
from service.analytics.schemas import Group
from service.common import vocab
from service.db.models import Arm, Outcome, Patient, Site, Treatment
from service.errors import RuleViolation

GroupBy = Literal[
    "arm",
    "site",
    "sex",
    "diagnosis",
    "disease_status",
    "risk_group",
    "age",
    "response_at_landmark",
    "mrd_at_landmark",
]
ATTRIBUTES = ("sex", "diagnosis", "disease_status", "risk_group")
LANDMARK_STATUSES = ("response_at_landmark", "mrd_at_landmark")
MAX_LEVELS = 12  # "a patient attribute with few levels": beyond this a comparison means nothing
NO_ARM = "no arm: left out of the comparison of arms"
# The order a level is listed in when the vocabulary has one (otherwise alphabetical).
_ORDER: dict[str, Sequence[str]] = {
    "sex": ("female", "male"),
    "diagnosis": get_args(vocab.Diagnosis),
    "disease_status": get_args(vocab.DiseaseStatus),
}
# Status at the landmark: values the column gives (a status, or why there is none).
REMISSION_STATUS = {"remission": "in CR/CRi/CRh", "no_remission": "not in CR/CRi/CRh"}
MRD_STATUS = {"mrd_negative": "MRD negative", "mrd_positive": "MRD positive"}
NOT_ASSESSED_BY_LANDMARK = "?not_assessed"
UNCERTAIN_AT_LANDMARK = "?uncertain"


@dataclass(frozen=True)
class GroupSpec:
    """What the request groups by. `landmark_day` (elapsed days from study day 1, as the survival
    landmark counts them) places the status of the landmark groupings."""

    by: GroupBy | None = None
    age_cuts: tuple[float, ...] = ()
    landmark_day: int | None = None

    def __post_init__(self) -> None:
        if self.by == "age" and not self.age_cuts:
            raise RuleViolation("group_by=age needs age_cuts (e.g. age_cuts=18,40,60)", field="age_cuts")
        if self.age_cuts and self.by != "age":
            raise RuleViolation("age_cuts applies only with group_by=age", field="age_cuts")
        if list(self.age_cuts) != sorted(set(self.age_cuts)):
            raise RuleViolation("age_cuts must be strictly increasing", field="age_cuts")

    @property
    def landmark_study_day(self) -> int:
        """The study day of the landmark: `landmark_day` elapsed days after day 1."""
        if self.landmark_day is None:  # every caller checks first; never a 500 if one does not
            raise RuleViolation(
                f"group_by={self.by} groups patients by their status at a landmark: give landmark_day",
                field="landmark_day",
            )
        return 1 + self.landmark_day

    def column(self) -> Any:
        """SQL over `Patient` (correlated where it reads outcomes): the patient's group value."""
        if self.by in (None, "arm"):
            return raw(col(Patient.arm_id))
        if self.by == "site":
            return raw(col(Patient.site_id))
        if self.by == "sex":
            return case((col(Patient.sex).in_(("female", "male")), col(Patient.sex)), else_=null())
        if self.by in ATTRIBUTES:
            return getattr(Patient, self.by)
        if self.by == "age":
            age = col(Patient.age_years)
            return case(
                (age.is_(None), null()),
                *((age < cut, literal(_band_key(i, self.age_cuts))) for i, cut in enumerate(self.age_cuts)),
                else_=literal(_band_key(len(self.age_cuts), self.age_cuts)),
            )
        assert self.by is not None
        return _status_at(self.by, self.landmark_study_day)

    def method(self) -> str:
        if self.by is None:
            return "the whole study as one group"
        if self.by == "age":
            return f"age bands [lower, upper) at cut points {', '.join(f'{c:g}' for c in self.age_cuts)} (age_years at entry)"
        if self.by == "response_at_landmark":
            return (
                f"status at the landmark (study day {self.landmark_study_day}, {self.landmark_day} elapsed days): "
                "the last response assessment of the study treatment on study day 1 to the landmark, CR/CRi/CRh "
                "or not (on a day with several, remission wins; an assessment whose candidates mix remission "
                "and not leaves the status uncertain); only patients followed event-free beyond the landmark"
            )
        if self.by == "mrd_at_landmark":
            return (
                f"status at the landmark (study day {self.landmark_study_day}, {self.landmark_day} elapsed days): "
                "the last MRD result (negative or positive; not done is no result) on study day 1 to the "
                "landmark, positive winning on a day with both; only patients followed event-free beyond the landmark"
            )
        return f"one group per {self.by.replace('_', ' ')}"


def _band_key(i: int, cuts: Sequence[float]) -> str:
    if i == 0:
        return f"age<{cuts[0]:g}"
    if i == len(cuts):
        return f"age>={cuts[-1]:g}"
    return f"{cuts[i - 1]:g}<=age<{cuts[i]:g}"


def _status_at(by: str, landmark: int) -> Any:
    """The patient's status from the last assessment on study day 1..landmark that evaluates the
    study treatment (the response-rate scope rule: not of an off-study treatment, not after
    off-study therapy started). One aggregate encodes day and status (day*4 + code) so that the
    maximum is the last day's most favourable remission status, or its positive MRD."""
    from service.analytics.estimands.endpoints import REMISSION, has_category, in_categories

    placed = aliased(Treatment)
    off_study_from = (
        select(func.min(col(placed.start_day)))
        .where(col(placed.patient_id) == col(Outcome.patient_id), col(placed.on_study).is_(False))
        .where(col(placed.start_day) >= 1)
        .scalar_subquery()
    )
    evaluated = aliased(Treatment)
    in_scope = and_(
        or_(col(evaluated.on_study).is_(None), col(evaluated.on_study).is_(True)),
        or_(
            col(evaluated.on_study).is_(True),
            off_study_from.is_(None),
            col(Outcome.study_day) <= off_study_from,
        ),
    )
    if by == "response_at_landmark":
        # 2: in remission; 1: uncertain (candidates mix remission and not); 0: not in remission
        others = [c for c in get_args(vocab.ResponseCategory) if c not in REMISSION]
        code = case((in_categories(REMISSION), 2), (in_categories(others), 0), else_=1)
        wanted = has_category()
        names: tuple[str, ...] = ("no_remission", UNCERTAIN_AT_LANDMARK, "remission")
    else:
        code = case((col(Outcome.mrd_status) == "positive", 1), else_=0)
        wanted = col(Outcome.mrd_status).in_(("negative", "positive"))
        names = ("mrd_negative", "mrd_positive")
    last = (
        select(func.max(col(Outcome.study_day) * 4 + code))
        .select_from(Outcome)
        .outerjoin(evaluated, col(evaluated.id) == col(Outcome.treatment_id))
        .where(
            col(Outcome.patient_id) == col(Patient.id),
            col(Outcome.kind) == "response",
            wanted,
            col(Outcome.study_day) >= 1,
            col(Outcome.study_day) <= landmark,
            in_scope,
        )
        .correlate(Patient)
        .scalar_subquery()
    )
    status = last.op("%")(4)  # the code (days are >= 1, so the remainder is the code)
    return case(
        (last.is_(None), literal(NOT_ASSESSED_BY_LANDMARK)),
        *((status == i, literal(name)) for i, name in enumerate(names)),
    )


def without_landmark(spec: GroupSpec, analysis: str) -> GroupSpec:
    """`spec`, refused for an analysis that has no landmark to place a status at."""
    if spec.by in LANDMARK_STATUSES:
        raise RuleViolation(
            f"group_by={spec.by} groups by status at a landmark, which {analysis} does not take: use it with survival and landmark_day",
            field="group_by",
        )
    return spec


@dataclass(frozen=True)
class Groups:
    """The groups of a request, and the group key of each group value (None: in no group)."""

    spec: GroupSpec
    groups: list[Group]
    key_of_value: dict[Any, str | None]
    everyone: bool = False
    reasons: dict[Any, str] = field(default_factory=dict)

    def key(self, value: Any) -> str | None:
        if self.everyone:
            return "all"
        return self.key_of_value.get(value)

    def reason(self, value: Any) -> str:
        """Why a patient with this group value is in no group."""
        return self.reasons.get(value) or _missing_reason(self.spec)


def _missing_reason(spec: GroupSpec) -> str:
    if spec.by == "arm":
        return NO_ARM
    if spec.by == "age":
        return "no age recorded: left out of the comparison by age"
    if spec.by in LANDMARK_STATUSES:
        return "no assessment by the landmark: left out of the comparison by status at the landmark"
    assert spec.by is not None
    return (
        f"no {spec.by.replace('_', ' ')} recorded: left out of the comparison by {spec.by.replace('_', ' ')}"
    )


async def resolve(session: AsyncSession, study_id: UUID, spec: GroupSpec) -> Groups:
    """The groups of `spec` in this study: arms and sites as the study defines them (empty ones
    included), age bands and landmark statuses all of them, attribute levels as recorded."""
    if spec.by is None:
        return Groups(spec, [Group(key="all", label="All patients", arm_id=None)], {}, everyone=True)
    if spec.by == "arm":
        arms = (
            await session.execute(
                select(raw(col(Arm.id)).label("raw"), col(Arm.label), col(Arm.id))
                .where(col(Arm.study_id) == study_id)
                .order_by(col(Arm.id))
            )
        ).all()
        return Groups(
            spec,
            [Group(key=str(a.id), label=a.label, arm_id=a.id) for a in arms],
            {a.raw: str(a.id) for a in arms},
        )
    if spec.by == "site":
        sites = (
            await session.execute(
                select(raw(col(Site.id)).label("raw"), col(Site.code), col(Site.id))
                .where(col(Site.study_id) == study_id)
                .order_by(col(Site.code))
            )
        ).all()
        return Groups(
            spec,
            [Group(key=str(s.id), label=f"site {s.code}", arm_id=None, value=s.code) for s in sites],
            {s.raw: str(s.id) for s in sites},
        )
    if spec.by == "age":
        keys = [_band_key(i, spec.age_cuts) for i in range(len(spec.age_cuts) + 1)]
        return Groups(spec, [Group(key=k, label=k, arm_id=None, value=k) for k in keys], {k: k for k in keys})
    if spec.by in LANDMARK_STATUSES:
        labels = REMISSION_STATUS if spec.by == "response_at_landmark" else MRD_STATUS
        return Groups(
            spec,
            [Group(key=k, label=label, arm_id=None, value=k) for k, label in labels.items()],
            {k: k for k in labels},
            reasons={
                NOT_ASSESSED_BY_LANDMARK: _missing_reason(spec),
                UNCERTAIN_AT_LANDMARK: "the last response assessment by the landmark is uncertain between remission and not: left out of the comparison by status at the landmark",
            },
        )
    from service.analytics.queries import study_patients

    column = spec.column()
    values = [
        v
        for (v,) in (
            await session.execute(
                select(column)
                .where(study_patients(study_id), column.is_not(None))
                .distinct()
                .limit(MAX_LEVELS + 1)
            )
        ).all()
    ]
    if len(values) > MAX_LEVELS:
        raise RuleViolation(
            f"group_by={spec.by}: more than {MAX_LEVELS} distinct values in this study; group by an attribute with few levels",
            field="group_by",
        )
    order = _ORDER.get(spec.by, ())
    values.sort(key=lambda v: (order.index(v) if v in order else len(order), str(v)))
    return Groups(
        spec,
        [
            Group(key=str(v), label=f"{spec.by.replace('_', ' ')}: {v}", arm_id=None, value=str(v))
            for v in values
        ],
        {v: str(v) for v in values},
    )


@dataclass(frozen=True)
class Grouping:
    """Patients placed in the groups: raw patient id -> group key (None: in no group)."""

    groups: list[Group]
    group_of: dict[Any, str | None]
    subject_code: dict[Any, str]
    reason_of: dict[Any, str]  # raw patient id -> why in no group (only those in none)

    def members(self, key: str) -> list[Any]:
        return [pid for pid, k in self.group_of.items() if k == key]

    def sizes(self) -> dict[str, int]:
        sizes = {g.key: 0 for g in self.groups}
        for key in self.group_of.values():
            if key is not None:
                sizes[key] += 1
        return sizes

    def without_group(self) -> list[str]:
        """Subject codes of the patients left out for want of a group."""
        return [self.subject_code[pid] for pid, key in self.group_of.items() if key is None]


def group_patients(patients: Sequence[Any], groups: Groups) -> Grouping:
    """`patients` rows carry id, subject_code and group_value (ids raw): see service.analytics.queries."""
    group_of = {row.id: groups.key(row.group_value) for row in patients}
    return Grouping(
        groups.groups,
        group_of,
        {row.id: row.subject_code for row in patients},
        {row.id: groups.reason(row.group_value) for row in patients if group_of[row.id] is None},
    )


def left_out_warnings(counts: dict[str, int], codes: Sequence[str] = ()) -> list[str]:
    """One warning per reason patients are in no group (`counts`: reason -> patients)."""
    named = f" ({', '.join(codes)})" if codes else ""
    return [
        f"{n} patient(s) left out: {reason}{named if len(counts) == 1 else ''}"
        for reason, n in sorted(counts.items())
        if n
    ]


def small_sample_warnings(groups: Sequence[Group], sizes: dict[str, int], minimum: int = 10) -> list[str]:
    warnings = []
    for group in groups:
        n = sizes.get(group.key, 0)
        if n == 0:
            warnings.append(f"group '{group.label}' has no patients")
        elif n < minimum:
            warnings.append(
                f"group '{group.label}' has {n} patient{'s' if n != 1 else ''} (< {minimum}): estimates are imprecise"
            )
    return warnings
