"""Small counts are not shown to an identity that may not see the patients behind them.

When a request's analysis counts patients that its identity cannot read row by row (an
`aggregate` grant, or an aggregate grant wider than its reader grant's sites), every count below
the minimum (AGGREGATE_MIN_COUNT, default 5; 0 turns this off) is withheld, and so is what would
give it away:
- an item of a list (a group, a row of a table, an evidence row) holding such a count anywhere
  within it is left out whole, with its estimates and intervals; a curve (points with a `time`)
  loses the points whose number at risk is below the minimum, first, so that a group does not
  go only because its tail thins out;
- such a count in the answer's own fields (e.g. `excluded`) becomes null, and an entry of a
  count map (`excluded_by_reason`) is left out;
- once anything is withheld, what is computed across the groups or from the counts as a whole
  (tests, comparisons, model terms, pooled estimates: DERIVED_KEYS) is withheld too.
Every withheld value is named in the answer's `disclosure` (its JSON pointer in the unsuppressed
answer and the item's label), so a reader knows what is missing and why. The rule reads field
names, not estimator by estimator, so a new analysis is covered when its counts use the
registry's names (COUNT_KEYS)."""

from typing import Any

import msgspec

from service.common.schemas import Output
from service.errors import Forbidden

# Fields that count patients or events.
COUNT_KEYS = frozenset(
    {
        "n",
        "N",
        "patients",
        "evaluable",
        "denominator",
        "responders",
        "events",
        "total",
        "n_risk",
        "n_event",
        "n_censor",
        "excluded",
        "assessments_without_day",
        "patients_counted_once",
        "transplanted",
        "intervals",
        "censored",
        "competing_events",
    }
)
# Maps from a reason or a group to a count: their small entries are left out.
COUNT_MAPS = frozenset({"excluded_by_reason", "assessments_excluded", "patients"})
# Results computed across groups or from the counts as a whole (tests, comparisons, models,
# pooled estimates): withheld with the counts they are computed from.
DERIVED_KEYS = frozenset(
    {
        "comparison",
        "log_rank",
        "rmst_comparisons",
        "milestone_comparisons",
        "gray_tests",
        "terms",
        "tests",
        "proportional_hazards",
        "pooled",
        "leave_one_out",
        "cumulative",
        "fit_statistics",
        "trend",
        "mantel_byar",
        "fine_gray",
    }
)
LABEL_KEYS = ("label", "term", "study_title", "group", "key")


class Withheld(Output):
    pointer: str
    label: str | None


class Disclosure(Output):
    """What was withheld from this answer because its counts are below `minimum`."""

    minimum: int
    reason: str
    withheld: list[Withheld]


def _small(value: Any, minimum: int) -> bool:
    return type(value) is int and 0 < value < minimum


def _label(item: dict[str, Any]) -> str | None:
    for key in LABEL_KEYS:
        if isinstance(item.get(key), str):
            return str(item[key])
    group = item.get("group")
    return _label(group) if isinstance(group, dict) else None


def _is_curve(value: Any) -> bool:
    """A list of points along time (a curve, landmarks, a risk table)."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "time" in v for v in value)


def _count_map(key: str, value: Any) -> bool:
    """A map from a reason or a group to a count (`excluded_by_reason`, a group's `excluded`)."""
    return (
        (key in COUNT_MAPS or key in COUNT_KEYS)
        and isinstance(value, dict)
        and bool(value)
        and all(type(v) is int for v in value.values())
    )


def _deep_small(node: Any, minimum: int) -> bool:
    """Whether `node` holds a small count anywhere (in its fields, maps and lists; a curve's
    points are judged on their own, by their number at risk)."""
    if isinstance(node, dict):
        return any(
            (key in COUNT_KEYS and _small(value, minimum))
            or (_count_map(key, value) and any(_small(v, minimum) for v in value.values()))
            or (not _is_curve(value) and _deep_small(value, minimum))
            for key, value in node.items()
        )
    if isinstance(node, list):
        return any(_deep_small(item, minimum) for item in node)
    return False


def withhold(body: Any, minimum: int) -> Any:
    """`body` (a response struct with a `disclosure` field) with its small counts withheld."""
    data = msgspec.to_builtins(body)
    withheld: list[Withheld] = []

    def trim_curve(points: list[Any], pointer: str) -> None:
        """A curve keeps the points where at least the minimum are at risk (the events of a
        step it shows are read from the step itself; the number at risk decides)."""
        kept = []
        for i, point in enumerate(points):
            if _small(point.get("n_risk"), minimum):
                withheld.append(Withheld(pointer=f"{pointer}/{i}", label=None))
            else:
                kept.append(point)
        points[:] = kept

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            for key, value in list(node.items()):
                where = f"{pointer}/{key}"
                if _is_curve(value):
                    trim_curve(value, where)
                elif isinstance(value, list):
                    kept = []
                    for i, item in enumerate(value):
                        if _deep_small(item, minimum):
                            withheld.append(Withheld(pointer=f"{where}/{i}", label=_label(item)))
                        else:
                            walk(item, f"{where}/{i}")
                            kept.append(item)
                    value[:] = kept
                elif _count_map(key, value):
                    for entry, count in list(value.items()):
                        if _small(count, minimum):
                            del value[entry]
                            withheld.append(Withheld(pointer=f"{where}/{entry}", label=entry))
                elif key in COUNT_KEYS and _small(value, minimum):
                    node[key] = None
                    withheld.append(Withheld(pointer=where, label=None))
                elif isinstance(value, dict):
                    walk(value, where)

    walk(data, "")
    if withheld:
        for key in DERIVED_KEYS & set(data):
            if data[key]:
                data[key] = [] if isinstance(data[key], list) else None
                withheld.append(Withheld(pointer=f"/{key}", label=None))
    data["disclosure"] = Disclosure(
        minimum=minimum,
        reason="The analysis counts patients this token may not see one by one: counts below the minimum "
        "are withheld, with the groups, rows or curve points that hold them.",
        withheld=withheld,
    )
    try:
        return msgspec.convert(data, type(body))
    except msgspec.ValidationError as exc:
        # A count this rule withholds where the answer's schema has no room for null: fail
        # closed (nothing shown) rather than show it.
        raise Forbidden(
            f"This analysis cannot be shown with its counts below {minimum} withheld ({exc}); "
            "ask for access to the patients, or for the minimum to be lowered."
        ) from exc
