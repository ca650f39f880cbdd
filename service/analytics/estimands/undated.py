"""One rule for patients whose time on an endpoint is unknown, and for endpoints whose events a
study reports only in aggregate, applied by every time-to-event method: Kaplan–Meier and its
summaries (median, landmarks, RMST, follow-up), every log-rank variant, Cox and cox.zph,
cumulative incidence and Gray's test, the plots and the time-to-event rows.

A patient known to be in the analysis set whose qualifying event (or remission origin) has no
study day can be neither censored (that turns an event into a non-event) nor silently left out
(that drops an event and flatters survival):
- `withhold` (the default): every estimate the patient could change is reported not computable,
  with the reason and the count: their group's curve and summaries, and every test, contrast or
  model that includes their group;
- `exclude`: the patient is left out, counted and named, and the response warns that the
  exclusion can bias the estimates.
An endpoint whose events the study reports only in aggregate (see `aggregate_only`) is not
computable from the patient rows whatever the rule: zero recorded events is not zero events."""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics.estimands.aggregate_only import aggregate_only
from service.analytics.estimands.endpoints import UNDATED
from service.analytics.schemas import UndatedEventHandling

UndatedEvents = Literal["withhold", "exclude"]

METHOD = {
    "withhold": "patients in the analysis set whose event or origin has no study day are neither censored nor left out: every estimate they could change (their group's curve and summaries, every test, contrast or model including their group) is not computable, with the count (undated_events=exclude leaves them out instead)",
    "exclude": "patients in the analysis set whose event or origin has no study day are left out of every estimate, counted and named in undated_events; leaving out a patient known to have had the event can bias the estimates (undated_events=withhold withholds them instead)",
}


@dataclass(frozen=True)
class UndatedRule:
    """How one analysis treats its undated patients, and what it found: the undated patients
    per group key, their subject codes, and a study-level reason when the endpoint's events are
    reported only in aggregate."""

    rule: UndatedEvents
    endpoint: str
    by_group: Counter[str] = field(default_factory=Counter)
    subject_codes: tuple[str, ...] = ()
    aggregate_only: str | None = None

    @property
    def patients(self) -> int:
        return sum(self.by_group.values())

    def withheld(self, group_key: str) -> str | None:
        """Why the group's own estimates are not computable (None when they are)."""
        return self.withheld_across([group_key])

    def withheld_across(self, group_keys: Iterable[str]) -> str | None:
        """Why an estimate over these groups (a curve, a test, a contrast, a model) is not computable."""
        reasons = [self.aggregate_only] if self.aggregate_only else []
        n = sum(self.by_group.get(k, 0) for k in group_keys)
        if n and self.rule == "withhold":
            reasons.append(
                f"{n} patient(s) have an undated {self.endpoint} event or origin: they can be neither "
                "censored nor left out (undated_events=exclude leaves them out, with a warning)"
            )
        return "; ".join(reasons) or None

    def warnings(self) -> list[str]:
        out = []
        if self.aggregate_only:
            out.append(f"{self.endpoint} not computable: {self.aggregate_only}")
        if self.patients and self.rule == "exclude":
            out.append(
                f"{self.patients} patient(s) with an undated {self.endpoint} event or origin were excluded "
                f"({', '.join(self.subject_codes)}): leaving out patients known to have had the event can bias the estimates"
            )
        elif self.patients:
            out.append(
                f"{self.patients} patient(s) with an undated {self.endpoint} event or origin "
                f"({', '.join(self.subject_codes)}): the estimates they could change are withheld as not computable"
            )
        return out

    def handling(self) -> UndatedEventHandling:
        return UndatedEventHandling(
            rule=self.rule, patients=self.patients, subject_codes=list(self.subject_codes)
        )

    def method(self) -> str:
        return METHOD[self.rule]


MAX_NAMED = 50  # subject codes named in a response; the count is always complete


def undated_rule(
    rule: UndatedEvents,
    endpoint: str,
    patients: Iterable[tuple[str | None, str]],
    aggregate_only: str | None = None,
) -> UndatedRule:
    """The rule with its findings, from (group key, subject code) of each undated patient; a
    patient in no group (no arm, when comparing arms) changes no estimate and is not counted."""
    by_group: Counter[str] = Counter()
    codes: list[str] = []
    for key, code in patients:
        if key is None:
            continue
        by_group[key] += 1
        if len(codes) < MAX_NAMED:
            codes.append(code)
    return UndatedRule(rule, endpoint, by_group, tuple(codes), aggregate_only)


async def rule_for_rows(
    session: AsyncSession,
    study_id: UUID,
    endpoint: str,
    rule: UndatedEvents,
    rows: Iterable[Any],
    group_of: Callable[[Any], str | None],
) -> UndatedRule:
    """The rule with its findings for an analysis of these per-patient rows
    (estimands.endpoints.fetch_analysis_rows), each undated patient in its group."""
    return undated_rule(
        rule,
        endpoint,
        ((group_of(r), r.subject_code) for r in rows if r.reason in UNDATED),
        await aggregate_only(session, study_id, endpoint),
    )
