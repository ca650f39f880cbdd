"""Splitting a study's patients into analysis groups (the whole study, or its arms)."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.analytics.schemas import Group

GroupBy = Literal["arm"]
NO_ARM = "no-arm"


@dataclass(frozen=True)
class Grouping:
    groups: list[Group]
    group_of: dict[Any, str]  # raw patient id -> group key
    subject_code: dict[Any, str]

    def members(self, key: str) -> list[Any]:
        return [pid for pid, k in self.group_of.items() if k == key]

    def sizes(self) -> dict[str, int]:
        sizes = {g.key: 0 for g in self.groups}
        for key in self.group_of.values():
            sizes[key] += 1
        return sizes


def define_groups(
    arms: Sequence[Any], group_by: GroupBy | None, arm_ids: Iterable[Any]
) -> tuple[list[Group], dict[Any, str]]:
    """The groups, and the group key of each raw arm id (None: patients without an arm)."""
    if group_by is None:
        return [Group(key="all", label="All patients", arm_id=None)], defaultdict(lambda: "all")
    groups = [Group(key=str(arm.id), label=arm.label, arm_id=arm.id) for arm in arms]
    key_of_arm: dict[Any, str] = {arm.raw_id: str(arm.id) for arm in arms}
    key_of_arm[None] = NO_ARM
    if None in set(arm_ids):
        groups.append(Group(key=NO_ARM, label="No arm", arm_id=None))
    return groups, key_of_arm


def group_patients(patients: Sequence[Any], arms: Sequence[Any], group_by: GroupBy | None) -> Grouping:
    """`patients` rows start (id, subject_code, arm_id), ids raw: see service.analytics.queries."""
    groups, key_of_arm = define_groups(arms, group_by, (row[2] for row in patients))
    return Grouping(
        groups, {row[0]: key_of_arm[row[2]] for row in patients}, {row[0]: row[1] for row in patients}
    )


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
