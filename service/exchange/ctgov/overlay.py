"""The re-export of an imported record: the record as received, with what the registry holds now
written over it. A registry record rebuilt from the registry's fields alone would lose what the
registry does not model (a date's type, the masking, the sponsor's class, an arm's type, an
intervention's other names, the age groups, …); the record kept as received has all of it, and the
registry's own fields say what curators changed since.

The rules, applied at every depth:
- an object: the record's members in its order, each merged with the registry's member of the same
  name; members only the registry has are added; a member the registry leaves out (it holds no
  value for it) stays as received;
- a value: the registry's, unless it equals the received one but for case (the agent catalog keeps
  names in lower case: the record's spelling is kept);
- a list of objects (arms, interventions, locations, outcome measures, ids, …): the registry's
  items in its order, each merged with the received item of the same identity (its label, name,
  measure, id, term, or facility and city); a received item the registry no longer has is dropped;
- a list of values: the registry's, each in the received spelling; an arm's intervention names
  that the registry holds only some of (it has agents for the interventions the record lists) stay
  as received."""

from typing import Any

# The member that tells two items of a list apart, by the list's name.
IDENTITY: dict[str, tuple[str, ...]] = {
    "armGroups": ("label",),
    "interventions": ("name",),
    "locations": ("facility", "city", "country"),
    "primaryOutcomes": ("measure",),
    "secondaryOutcomes": ("measure",),
    "otherOutcomes": ("measure",),
    "secondaryIdInfos": ("id",),
    "collaborators": ("name",),
    "meshes": ("term",),
}
# Lists of names the registry may hold only part of, and then keeps as received.
PARTIAL = {"interventionNames"}


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _identity(item: Any, members: tuple[str, ...]) -> Any:
    if not isinstance(item, dict):
        return _fold(item)
    return tuple(_fold(item.get(member)) for member in members)


def _merge_list(name: str, received: list[Any], registry: list[Any]) -> list[Any]:
    if all(not isinstance(item, dict) for item in registry + received):
        spelled = {_fold(item): item for item in received}
        if name in PARTIAL and registry and all(_fold(item) in spelled for item in registry):
            return received
        return [spelled.get(_fold(item), item) for item in registry]
    members = IDENTITY.get(name)
    if members is None:  # no identity known: the registry's list, positions matched
        return [merge(received[i] if i < len(received) else None, item) for i, item in enumerate(registry)]
    by_identity: dict[Any, Any] = {}
    for item in received:
        by_identity.setdefault(_identity(item, members), item)
    return [merge(by_identity.get(_identity(item, members)), item, name) for item in registry]


def merge(received: Any, registry: Any, name: str = "") -> Any:
    """`received` (the record as imported) with `registry` (what the registry holds now) over it."""
    if received is None:
        return registry
    if registry is None:
        return received
    if isinstance(received, dict) and isinstance(registry, dict):
        out = {key: merge(value, registry.get(key), key) for key, value in received.items()}
        out.update({key: value for key, value in registry.items() if key not in received})
        return out
    if isinstance(received, list) and isinstance(registry, list):
        return _merge_list(name, received, registry)
    return received if _fold(received) == _fold(registry) else registry
