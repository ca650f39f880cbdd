"""A reference derivation of the analysis rows, written from the estimand definitions in the
README and the issue, independently of service/analytics (which it must never import): per
patient and endpoint, the origin and end study day and the event, or why the patient is not in
the analysis set."""

from dataclasses import dataclass

from tests.oracle.studies import Assessment, PatientSpec

REMISSION = {"CR", "CRi", "CRh"}
REMISSION_OF = {"RFS": REMISSION, "CRD": {"CR", "CRi"}}
EVENTS_OF = {
    "OS": {"death"},
    "RFS": {"relapse", "progression", "death"},
    "EFS": {"relapse", "progression", "death"},
    "GRFS": {"relapse", "progression", "death"},
    "CRD": {"relapse", "progression"},
}
SAME_DAY_ORDER = ("induction_failure", "relapse", "progression", "gvhd", "death")

# The service's exclusion reasons, by what they mean (the texts are part of the API).
NEVER_IN_REMISSION = "never_in_remission"
DEATH_BEFORE_DAY_1 = "death_before_day_1"
UNDATED_EVENT = "undated_event"
UNDATED_ORIGIN = "undated_origin"
NO_DAY = "no_day"
NOTHING_AFTER_ORIGIN = "nothing_after_origin"
NOT_ASSESSED = "not_assessed"
UNDATED = {UNDATED_EVENT, UNDATED_ORIGIN}


@dataclass(frozen=True)
class Row:
    code: str
    arm: int | None
    origin: int | None = None
    end: int | None = None
    event: bool = False
    event_type: str | None = None
    reason: str | None = None  # why the patient is not analysed (None: analysed)

    @property
    def time(self) -> int:
        """Elapsed days (no day 0: day -1 to day 1 is one day)."""
        assert self.origin is not None and self.end is not None
        return self.end - self.origin - (1 if self.origin < 0 < self.end else 0)


def last_day(p: PatientSpec) -> int | None:
    days = [a.day for a in p.assessments] + [e.day for e in p.events]
    if p.study_treatment:
        days += list(p.study_treatment)
    if p.salvage_start is not None:
        days.append(p.salvage_start)
    known = [d for d in days if d is not None]
    return max(known) if known else None


def names(p: PatientSpec, a: Assessment) -> str | None:
    """The treatment the assessment evaluates, when it names one that exists."""
    if a.names == "study" and p.study_treatment:
        return "study"
    if a.names == "salvage" and p.salvage_start is not None:
        return "salvage"
    return None


def of_study_treatment(p: PatientSpec, a: Assessment) -> bool:
    """Counts for the study treatment: names it; or names none and lies from day 1 up to the
    start of off-study therapy (salvage)."""
    named = names(p, a)
    if named is not None:
        return named == "study"
    if a.day is None or a.day < 1:
        return False
    return not (p.salvage_start is not None and p.salvage_start >= 1 and a.day > p.salvage_start)


def has_category(a: Assessment) -> bool:
    return a.category is not None or bool(a.possible)


def is_in(a: Assessment, wanted: set[str]) -> bool:
    if a.category is not None:
        return a.category in wanted
    return bool(a.possible) and set(a.possible) <= wanted


def _first(events: list[tuple[int, str]]) -> tuple[int, str] | None:
    if not events:
        return None
    day = min(d for d, _ in events)
    kinds = [k for d, k in events if d == day]
    return day, min(kinds, key=SAME_DAY_ORDER.index)


def row(p: PatientSpec, endpoint: str) -> Row:
    counted = EVENTS_OF[endpoint]
    dated = [(e.day, e.kind) for e in p.events if e.kind in counted and e.day is not None]
    undated = any(e.kind in counted and e.day is None for e in p.events)
    last = last_day(p)

    def censored_or_excluded(origin: int, extra: str | None = None) -> Row:
        if undated:
            return Row(p.code, p.arm, reason=UNDATED_EVENT)
        if extra:
            return Row(p.code, p.arm, reason=extra)
        if last is None:
            return Row(p.code, p.arm, reason=NO_DAY)
        if last < origin:
            return Row(p.code, p.arm, reason=NOTHING_AFTER_ORIGIN)
        return Row(p.code, p.arm, origin, last, False, None)

    if endpoint == "OS":
        first = _first(dated)
        if first:
            if first[0] < 1:
                return Row(p.code, p.arm, reason=DEATH_BEFORE_DAY_1)
            return Row(p.code, p.arm, 1, first[0], True, "death")
        return censored_or_excluded(1)
    if endpoint in REMISSION_OF:
        remissions = [
            a for a in p.assessments if of_study_treatment(p, a) and is_in(a, REMISSION_OF[endpoint])
        ]
        if not remissions:
            return Row(p.code, p.arm, reason=NEVER_IN_REMISSION)
        days = [a.day for a in remissions if a.day is not None]
        if not days:
            return Row(p.code, p.arm, reason=UNDATED_ORIGIN)
        origin = min(days)
        first = _first([(d, k) for d, k in dated if d > origin])
        if first:
            return Row(p.code, p.arm, origin, first[0], True, first[1])
        return censored_or_excluded(origin)
    # EFS and GRFS, from day 1; events before day 1 are history
    events = [(d, k) for d, k in dated if d >= 1]
    not_assessed = None
    if endpoint == "EFS":
        responses = [a for a in p.assessments if of_study_treatment(p, a) and has_category(a)]
        if responses and not any(is_in(a, REMISSION) for a in responses):
            events.append((1, "induction_failure"))
        if not responses:
            not_assessed = NOT_ASSESSED
    first = _first(events)
    if first:
        return Row(p.code, p.arm, 1, first[0], True, first[1])
    return censored_or_excluded(1, not_assessed)


def responders(p: PatientSpec) -> tuple[bool, bool]:
    """(evaluable, responder) for the default response rate: CR/CRi/CRh on an assessment of the
    study treatment, dated or not."""
    counted = [a for a in p.assessments if of_study_treatment(p, a)]
    return bool(counted), any(is_in(a, REMISSION) for a in counted)
