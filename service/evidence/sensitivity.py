"""Leave-one-out and cumulative-by-year views of a pooled estimate (metafor leave1out, cumul),
for any pooled quantity: proportions (either model) and hazard ratios."""

from collections.abc import Callable
from typing import Protocol, TypeVar
from uuid import UUID

from service.analytics.pooling.meta import Pooled, cumulative, leave_one_out
from service.evidence.schemas import SensitivityEstimate

MIN_STUDIES = 2


class PooledResult(Protocol):
    @property
    def random(self) -> Pooled: ...
    @property
    def tau2(self) -> float: ...
    @property
    def i2(self) -> float: ...


class StudyRow(Protocol):
    @property
    def study_id(self) -> UUID: ...
    @property
    def study_title(self) -> str: ...
    @property
    def year(self) -> int | None: ...


R = TypeVar("R", bound=StudyRow)

# leave-one-out, cumulative, why the cumulative view is empty, how many estimates `pool` could not make
Views = tuple[list[SensitivityEstimate], list[SensitivityEstimate], str | None, int]


def sensitivity(
    rows: list[R], pool: Callable[[list[R]], PooledResult | None], counts: Callable[[R], bool]
) -> Views:
    """`counts` says whether a row is a study the pool counts (a study with patients). A subset
    of two or more such studies with no estimate is counted, never silently dropped."""

    def estimate(row: R, k: int, result: PooledResult) -> SensitivityEstimate:
        return SensitivityEstimate(
            study_id=row.study_id,
            study_title=row.study_title,
            year=row.year,
            studies=k,
            estimate=result.random.estimate,
            ci_lower=result.random.lower,
            ci_upper=result.random.upper,
            tau2=result.tau2,
            i2=result.i2,
        )

    def studies(subset: list[R]) -> int:
        return sum(1 for r in subset if counts(r))

    results = leave_one_out(rows, pool, counts)
    rests = [rows[:i] + rows[i + 1 :] for i in range(len(rows))]
    missing = sum(
        1
        for rest, result in zip(rests, results, strict=True)
        if result is None and studies(rest) >= MIN_STUDIES
    )
    left_out = [
        estimate(row, studies(rest), result)
        for row, rest, result in zip(rows, rests, results, strict=True)
        if result is not None
    ]
    undated = [r.study_title for r in rows if r.year is None]
    if undated:
        why = f"no year for {', '.join(repr(t) for t in undated[:5])}: the cumulative view orders studies by year"
        return left_out, [], why, missing
    ordered = sorted(rows, key=lambda r: (r.year or 0, r.study_title))
    results = cumulative(ordered, pool, counts)
    prefixes = [ordered[: i + 1] for i in range(len(ordered))]
    missing += sum(
        1
        for prefix, result in zip(prefixes, results, strict=True)
        if result is None and studies(prefix) >= MIN_STUDIES
    )
    running = [
        estimate(row, studies(prefix), result)
        for row, prefix, result in zip(ordered, prefixes, results, strict=True)
        if result is not None
    ]
    return left_out, running, None, missing
