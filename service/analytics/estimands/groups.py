"""Splitting a study's patients into analysis groups (the whole study, or its arms).

A comparison of arms never invents a group: patients without an arm are left out of it, counted
and named under `NO_ARM` (a "no arm" group would turn a two-arm comparison into a three-group test
of a group nobody chose)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.analytics.schemas import Group

GroupBy = Literal["arm"]
NO_ARM = "no arm: left out of the comparison of arms"


@dataclass(frozen=True)
class Grouping:
    groups: list[Group]
    group_of: dict[Any, str | None]  # raw patient id -> group key (None: in no group)
    subject_code: dict[Any, str]

    def members(self, key: str) -> list[Any]:
        return [pid for pid, k in self.group_of.items() if k == key]

    def sizes(self) -> dict[str, int]:
        sizes = {g.key: 0 for g in self.groups}
        for key in self.group_of.values():
            if key is not None:
                sizes[key] += 1
        return sizes

    def without_group(self) -> list[str]:
        """Subject codes of the patients left out for want of an arm."""
        return [self.subject_code[pid] for pid, key in self.group_of.items() if key is None]


def define_groups(arms: Sequence[Any], group_by: GroupBy | None) -> tuple[list[Group], dict[Any, str | None]]:
    """The groups, and the group key of each raw arm id (None, the key of patients without an arm,
    maps to None when comparing arms: they belong to no group)."""
    if group_by is None:
        return [Group(key="all", label="All patients", arm_id=None)], _Everyone()
    key_of_arm: dict[Any, str | None] = {arm.raw_id: str(arm.id) for arm in arms}
    key_of_arm[None] = None
    return [Group(key=str(arm.id), label=arm.label, arm_id=arm.id) for arm in arms], key_of_arm


class _Everyone(dict[Any, str | None]):
    """Every arm id, and no arm, maps to the one group of the whole study."""

    def __missing__(self, key: Any) -> str:
        return "all"


def group_patients(patients: Sequence[Any], arms: Sequence[Any], group_by: GroupBy | None) -> Grouping:
    """`patients` rows start (id, subject_code, arm_id), ids raw: see service.analytics.queries."""
    groups, key_of_arm = define_groups(arms, group_by)
    return Grouping(
        groups, {row[0]: key_of_arm[row[2]] for row in patients}, {row[0]: row[1] for row in patients}
    )


def no_arm_warning(count: int, codes: Sequence[str] = ()) -> list[str]:
    if not count:
        return []
    named = f" ({', '.join(codes)})" if codes else ""
    return [f"{count} patient(s) without an arm{named} left out of the comparison of arms"]


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
