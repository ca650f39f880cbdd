"""Hypothesis strategies for messy studies: what registry data really looks like, not what a
textbook example looks like. Partial and missing days, ties between events and censorings,
same-day competing events, MRD-only marrows, responses to salvage after the study treatment,
patients without an arm or without any dated record, empty arms, all-censored cohorts and
single events. Plain data (no service types): tests/oracle/load.py enters it through the API."""

from dataclasses import dataclass

from hypothesis import strategies as st

CATEGORIES = ("CR", "CRi", "CRh", "MLFS", "PR", "SD", "NR", "PD")
EVENT_KINDS = ("relapse", "progression", "death", "last_follow_up")


@dataclass(frozen=True)
class Assessment:
    day: int | None
    category: str | None
    possible: tuple[str, ...]  # candidate categories when the category is uncertain
    mrd: str | None
    names: str | None  # "study" or "salvage": the treatment it evaluates, when it names one


@dataclass(frozen=True)
class Event:
    kind: str
    day: int | None


@dataclass(frozen=True)
class PatientSpec:
    code: str
    arm: int | None  # index into the study's arms
    age: int | None
    study_treatment: tuple[int, int] | None  # (start, end) study days
    salvage_start: int | None  # an off-study treatment from this day
    assessments: tuple[Assessment, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True)
class StudySpec:
    arms: int
    patients: tuple[PatientSpec, ...]


def _days(low: int = -30, high: int = 400) -> st.SearchStrategy[int]:
    # a small range on purpose: ties between patients and between records are frequent
    return st.one_of(st.integers(1, 60), st.integers(low, high)).filter(lambda d: d != 0)


def _maybe_day() -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), _days(), _days())  # undated about a third of the time


@st.composite
def assessments(draw: st.DrawFn, has_salvage: bool) -> Assessment:
    kind = draw(st.sampled_from(("category", "uncertain", "mrd_only")))
    category = draw(st.sampled_from(CATEGORIES)) if kind == "category" else None
    possible = (
        tuple(sorted(draw(st.sets(st.sampled_from(CATEGORIES[:5]), min_size=2, max_size=3))))
        if kind == "uncertain"
        else ()
    )
    mrd_choices = ("negative", "positive") if kind == "mrd_only" else (None, "negative", "positive")
    names = draw(st.sampled_from((None, "study", "salvage") if has_salvage else (None, "study")))
    return Assessment(draw(_maybe_day()), category, possible, draw(st.sampled_from(mrd_choices)), names)


@st.composite
def patients(draw: st.DrawFn, code: str, arms: int) -> PatientSpec:
    arm = draw(st.one_of(st.none(), st.integers(0, arms - 1))) if arms else None
    start = draw(st.sampled_from((None, 1, 1, 1)))
    study_treatment = (1, draw(st.integers(1, 60))) if start else None
    salvage = draw(st.one_of(st.none(), st.integers(20, 200)))
    return PatientSpec(
        code=code,
        arm=arm,
        age=draw(st.one_of(st.none(), st.integers(18, 80))),
        study_treatment=study_treatment,
        salvage_start=salvage,
        assessments=tuple(draw(st.lists(assessments(salvage is not None), max_size=4))),
        events=tuple(
            draw(st.lists(st.builds(Event, st.sampled_from(EVENT_KINDS), _maybe_day()), max_size=3))
        ),
    )


@st.composite
def studies(draw: st.DrawFn, max_patients: int = 12) -> StudySpec:
    arms = draw(st.integers(0, 3))
    n = draw(st.integers(0, max_patients))
    return StudySpec(arms, tuple(draw(patients(f"S{i}", arms)) for i in range(n)))
