"""A ClinicalTrials.gov record's `resultsSection` as reported results, and its locations as sites.

Each figure the record posts becomes one reported result, exactly as posted, with provenance
whose `location` is the JSON pointer of the value in the record (RFC 6901), so a reader finds it
in the stored source:
- an outcome measure's measurement per group (`outcomeMeasures/i/classes/j/categories/k/
  measurements/m`): the measure's title (with the class and category titles), the group's arm
  (matched by title to an arm group; otherwise the group's title as the population), time frame,
  unit, the value, its spread as printed (a confidence interval, a range, a standard deviation in
  the notes) and the group's denominator;
- an analysis of a measure (`outcomeMeasures/i/analyses/a`): the parameter (hazard ratio, odds
  ratio, …) with its interval, p value and method, the groups compared named in the population;
- adverse events per group (`adverseEventsModule/seriousEvents|otherEvents/e/stats/s`): patients
  affected of patients at risk.
A posted value that is not a number ("NA", "<0.001" for a p value) is kept as printed in the notes,
never turned into a number."""

import re
from typing import Any

import msgspec

# The dispersion type as the API's enumeration names it or as records carry it on the wire
# ("CONFIDENCE_95" / "95% Confidence Interval", "FULL_RANGE" / "Full Range", ...).
SPREAD_CI = re.compile(r"^(?:CONFIDENCE_(\d+)|(\d+(?:\.\d+)?)\s*% Confidence Interval)$", re.I)
SPREADS = {"full range": "FULL_RANGE", "inter-quartile range": "INTER_QUARTILE_RANGE"}


def _spread(dispersion: str | None) -> tuple[str | None, float | None]:
    """(kind, confidence level) of a dispersion type: kind CI, FULL_RANGE, INTER_QUARTILE_RANGE or
    the type as given."""
    ci = SPREAD_CI.match(dispersion or "")
    if ci:
        level = float(ci.group(1) or ci.group(2)) / 100
        return ("CI", level) if 0 < level < 1 else (dispersion, None)
    return SPREADS.get((dispersion or "").casefold(), dispersion), None


class _Module(msgspec.Struct, kw_only=True):
    """Results modules carry fields this service does not read: unknown ones are ignored."""


class Measurement(_Module):
    groupId: str
    value: str | None = None
    spread: str | None = None
    lowerLimit: str | None = None
    upperLimit: str | None = None
    comment: str | None = None


class Category(_Module):
    title: str | None = None
    measurements: list[Measurement] = []


class MeasureClass(_Module):
    title: str | None = None
    categories: list[Category] = []


class GroupCount(_Module):
    groupId: str
    value: str


class Denom(_Module):
    units: str | None = None
    counts: list[GroupCount] = []


class ResultGroup(_Module):
    id: str
    title: str | None = None
    description: str | None = None


class Analysis(_Module):
    groupIds: list[str] = []
    paramType: str | None = None
    paramValue: str | None = None
    ciPctValue: str | None = None
    ciLowerLimit: str | None = None
    ciUpperLimit: str | None = None
    pValue: str | None = None
    statisticalMethod: str | None = None
    nonInferiorityType: str | None = None


class OutcomeMeasure(_Module):
    title: str
    type: str | None = None
    description: str | None = None
    populationDescription: str | None = None
    paramType: str | None = None
    dispersionType: str | None = None
    unitOfMeasure: str | None = None
    timeFrame: str | None = None
    groups: list[ResultGroup] = []
    denoms: list[Denom] = []
    classes: list[MeasureClass] = []
    analyses: list[Analysis] = []


class OutcomeMeasures(_Module):
    outcomeMeasures: list[OutcomeMeasure] = []


class EventStats(_Module):
    groupId: str
    numEvents: int | None = None
    numAffected: int | None = None
    numAtRisk: int | None = None


class AdverseEventTerm(_Module):
    term: str
    organSystem: str | None = None
    sourceVocabulary: str | None = None
    assessmentType: str | None = None
    stats: list[EventStats] = []


class EventGroup(_Module):
    id: str
    title: str | None = None
    description: str | None = None


class AdverseEvents(_Module):
    timeFrame: str | None = None
    eventGroups: list[EventGroup] = []
    seriousEvents: list[AdverseEventTerm] = []
    otherEvents: list[AdverseEventTerm] = []


class ResultsSection(_Module):
    outcomeMeasuresModule: OutcomeMeasures | None = None
    adverseEventsModule: AdverseEvents | None = None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and abs(value) < 1e12 else None


def _count(text: str | None) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value >= 0 and value == int(value) else None


def _clip(text: str | None, limit: int) -> str | None:
    return None if not text else text if len(text) <= limit else text[: limit - 1] + "…"


class _Groups:
    """A results group's arm (by title, as registries name both from the same arm) or its title."""

    def __init__(self, groups: list[Any], arm_keys: dict[str, str]) -> None:
        self.titles = {g.id: g.title or g.id for g in groups}
        self.arm_keys = arm_keys

    def arm(self, group_id: str) -> str | None:
        return self.arm_keys.get((self.titles.get(group_id) or "").strip().lower())

    def placed(self, group_id: str) -> dict[str, Any]:
        arm = self.arm(group_id)
        title = self.titles.get(group_id, group_id)
        return {"arm": arm} if arm else {"population": _clip(title, 500)}


def reported_results(
    results: ResultsSection | None, source: str, arm_keys: dict[str, str]
) -> list[dict[str, Any]]:
    """The reported results of a record's results (`arm_keys`: lower-case arm label → arm key)."""
    if results is None:
        return []
    out: list[dict[str, Any]] = []

    def provenance(pointer: str, quote: str) -> list[dict[str, Any]]:
        return [{"source_document": source, "location": pointer, "quote": quote[:20_000]}]

    measures = (results.outcomeMeasuresModule or OutcomeMeasures()).outcomeMeasures
    for i, measure in enumerate(measures):
        base = f"/resultsSection/outcomeMeasuresModule/outcomeMeasures/{i}"
        groups = _Groups(measure.groups, arm_keys)
        denominators = {c.groupId: _count(c.value) for d in measure.denoms[:1] for c in d.counts}
        spread, ci_level = _spread(measure.dispersionType)
        for j, measure_class in enumerate(measure.classes):
            for k, category in enumerate(measure_class.categories):
                title = " — ".join(t for t in (measure.title, measure_class.title, category.title) if t)
                for m, value in enumerate(category.measurements):
                    pointer = f"{base}/classes/{j}/categories/{k}/measurements/{m}"
                    result: dict[str, Any] = {
                        "measure": _clip(title, 500),
                        **groups.placed(value.groupId),
                        "timepoint": _clip(measure.timeFrame, 200),
                        "value": _number(value.value),
                        "unit": _clip(measure.unitOfMeasure, 50),
                        "denominator": denominators.get(value.groupId),
                        "provenance": provenance(pointer, value.value or ""),
                    }
                    notes = [
                        f"{measure.type or 'outcome'} measure; {measure.paramType or 'parameter not given'}"
                    ]
                    if result["value"] is None and value.value is not None:
                        notes.append(f"value as posted: {value.value}")
                    low, high = _number(value.lowerLimit), _number(value.upperLimit)
                    if spread == "CI" and low is not None and high is not None:
                        result.update(ci_lower=low, ci_upper=high, ci_level=ci_level)
                    elif spread in ("FULL_RANGE", "INTER_QUARTILE_RANGE") and (
                        low is not None and high is not None
                    ):
                        if spread == "FULL_RANGE":
                            result.update(range_lower=low, range_upper=high)
                        else:
                            notes.append(f"interquartile range {value.lowerLimit} to {value.upperLimit}")
                    elif value.lowerLimit or value.upperLimit:
                        notes.append(
                            f"{measure.dispersionType or 'limits'}: {value.lowerLimit or 'NA'} to {value.upperLimit or 'NA'}"
                        )
                    if value.spread:
                        notes.append(f"{measure.dispersionType or 'spread'}: {value.spread}")
                    if value.comment:
                        notes.append(value.comment)
                    if measure.timeFrame and len(measure.timeFrame) > 200:
                        notes.append(f"time frame: {measure.timeFrame}")
                    result["notes"] = "; ".join(notes)
                    out.append(result)
        for a, analysis in enumerate(measure.analyses):
            pointer = f"{base}/analyses/{a}"
            compared = [groups.titles.get(g, g) for g in analysis.groupIds]
            p_value = _number(analysis.pValue)
            level = _number(analysis.ciPctValue)
            low, high = _number(analysis.ciLowerLimit), _number(analysis.ciUpperLimit)
            result = {
                "measure": _clip(f"{measure.title} — {analysis.paramType or 'analysis'}", 500),
                "population": _clip(" vs ".join(compared), 500),
                "timepoint": _clip(measure.timeFrame, 200),
                "value": _number(analysis.paramValue),
                "p_value": p_value if p_value is not None and 0 <= p_value <= 1 else None,
                "test": _clip(analysis.statisticalMethod, 200),
                "provenance": provenance(pointer, f"{analysis.paramType}: {analysis.paramValue}"),
            }
            if low is not None and high is not None and level is not None and 0 < level < 100:
                result.update(ci_lower=low, ci_upper=high, ci_level=level / 100)
            notes = [f"analysis of the {measure.type or 'outcome'} measure"]
            if analysis.pValue is not None and result["p_value"] is None:
                notes.append(f"p value as posted: {analysis.pValue}")
            if analysis.paramValue is not None and result["value"] is None:
                notes.append(f"value as posted: {analysis.paramValue}")
            result["notes"] = "; ".join(notes)
            out.append(result)
    events = results.adverseEventsModule
    if events is not None:
        groups = _Groups(events.eventGroups, arm_keys)
        for kind in ("seriousEvents", "otherEvents"):
            for e, term in enumerate(getattr(events, kind)):
                for s, stats in enumerate(term.stats):
                    pointer = f"/resultsSection/adverseEventsModule/{kind}/{e}/stats/{s}"
                    if stats.numAffected is None or stats.numAtRisk is None:
                        continue
                    out.append(
                        {
                            "measure": _clip(
                                f"Adverse event ({'serious' if kind == 'seriousEvents' else 'other'}): {term.term}",
                                500,
                            ),
                            **groups.placed(stats.groupId),
                            "timepoint": _clip(events.timeFrame, 200),
                            "numerator": stats.numAffected,
                            "denominator": stats.numAtRisk,
                            "unit": "participants",
                            "notes": "; ".join(
                                t
                                for t in (
                                    term.organSystem,
                                    term.sourceVocabulary,
                                    f"{stats.numEvents} events" if stats.numEvents is not None else None,
                                )
                                if t
                            ),
                            "provenance": provenance(
                                pointer, f"{stats.numAffected}/{stats.numAtRisk} affected"
                            ),
                        }
                    )
    return [{k: v for k, v in r.items() if v not in (None, "")} for r in out]
