"""The design matrix of a regression model (Cox, logistic) from patient rows: the arm and factor
covariates as indicator columns against a reference level, numeric covariates per unit, and
interactions as products of two covariates' columns. Patients without a value are left out by
the caller, counted by covariate (`missing`)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from service.common import vocab
from service.errors import RuleViolation

Covariate = Literal[
    "arm",
    "age_years",
    "sex",
    "diagnosis",
    "disease_status",
    "risk_group",
    "wbc_10e9_per_l",
    "hemoglobin_g_per_l",
    "platelets_10e9_per_l",
    "marrow_blasts_pct",
]
FACTORS = ("sex", "diagnosis", "disease_status", "risk_group")
# Level order where the vocabulary has one (the default reference is the first level present);
# otherwise alphabetical, as R's factor().
_ORDER: dict[str, Sequence[str]] = {
    "sex": ("female", "male"),
    "diagnosis": get_args(vocab.Diagnosis),
    "disease_status": get_args(vocab.DiseaseStatus),
}
CODING = (
    "arm: one term per arm against the reference (default the first arm, creation order, with patients); "
    "sex, diagnosis, disease_status, risk_group: factors, one term per level against the reference level "
    "(default the first level present: vocabulary order, otherwise alphabetical; sex unknown = missing); "
    "numeric covariates per unit; an interaction a*b: the products of a's and b's columns"
)


@dataclass
class Design:
    columns: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    terms: dict[str, list[int]] = field(default_factory=dict)  # covariate (or a*b) -> its columns
    not_computable: str | None = None

    def add(self, term: str, name: str, column: np.ndarray) -> None:
        self.terms.setdefault(term, []).append(len(self.columns))
        self.columns.append(column)
        self.names.append(name)


def value_of(row: Any, covariate: str) -> Any:
    value = row.arm_id if covariate == "arm" else getattr(row, covariate)
    return None if covariate == "sex" and value == "unknown" else value


def missing(row: Any, names: Sequence[str]) -> str | None:
    """The first covariate (or stratifying attribute) the row has no value of."""
    for name in names:
        if value_of(row, name) is None:
            return name
    return None


def parse_references(values: Sequence[str], covariates: Sequence[str]) -> dict[str, str]:
    """`covariate:level` pairs naming the reference level of a factor (an arm by its label)."""
    references: dict[str, str] = {}
    for value in values:
        name, _, level = value.partition(":")
        if name not in (*FACTORS, "arm") or not level or len(level) > 200 or "\x00" in level:
            raise RuleViolation(
                f"reference '{value}': write factor:level, the factor one of arm, {', '.join(FACTORS)}",
                field="reference",
            )
        if name not in covariates:
            raise RuleViolation(
                f"reference '{value}': {name} is not a covariate of the model", field="reference"
            )
        if name in references:
            raise RuleViolation(f"reference: {name} is named twice", field="reference")
        references[name] = level
    return references


def parse_interactions(values: Sequence[str], covariates: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        a, _, b = value.partition("*")
        if a not in covariates or b not in covariates or a == b:
            raise RuleViolation(
                f"interaction '{value}': write a*b with a and b two different covariates of the model",
                field="interactions",
            )
        pairs.append((a, b))
    return list(dict.fromkeys(pairs))


def design(
    rows: Sequence[Any],
    arms: Sequence[Any],
    covariates: Sequence[str],
    references: dict[str, str] | None = None,
    interactions: Sequence[tuple[str, str]] = (),
) -> Design:
    references = references or {}
    out = Design()
    for covariate in covariates:
        values = [value_of(r, covariate) for r in rows]
        if covariate == "arm":
            present = [a for a in arms if a.raw_id in set(values)]
            levels = [(a.raw_id, a.label) for a in present]
        elif covariate in FACTORS:
            order = _ORDER.get(covariate, ())
            seen = sorted(set(values), key=lambda v: (order.index(v) if v in order else len(order), str(v)))
            levels = [(v, str(v)) for v in seen]
        else:
            out.add(covariate, covariate, np.array(values, float))
            continue
        wanted = references.get(covariate)
        if wanted is not None:
            match = [level for level in levels if level[1] == wanted]
            if not match:
                out.not_computable = (
                    f"reference level '{wanted}' of {covariate} has no patients in the analysis set"
                )
                return out
            levels = match + [level for level in levels if level[1] != wanted]
        if covariate == "arm" and len(levels) < 2:
            continue  # one arm: no contrast (reported as nothing to estimate)
        if len(levels) < 2:
            out.not_computable = f"'{covariate}' takes one value in the analysis set"
            return out
        reference = levels[0][1] if levels else ""
        for raw, label in levels[1:]:
            prefix = "arm" if covariate == "arm" else covariate
            out.add(
                covariate,
                f"{prefix}: {label} vs {reference}",
                np.array([1.0 if v == raw else 0.0 for v in values]),
            )
    for a, b in interactions:
        for i in list(out.terms.get(a, [])):
            for j in list(out.terms.get(b, [])):
                out.add(f"{a}*{b}", f"{out.names[i]} × {out.names[j]}", out.columns[i] * out.columns[j])
    return out
