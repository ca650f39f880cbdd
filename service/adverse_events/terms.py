"""Canonical adverse-event terms: the CTCAE v5 term (or the ASTCT syndrome) that every grouping,
filter and comparison uses, with its MedDRA lowest-level-term code where it was verified.

A term given in another letter case is stored in its canonical spelling. A term not listed here
is kept as given (the curator's term, e.g. 'Transaminase elevation' when the source does not say
which transaminase) and is still compared case-insensitively everywhere.

MedDRA codes: only those found identically in two independent CTCAE-coded references (a FHIR
CTCAE v5 ConceptMap to SNOMED CT and a CTCAE term index) are listed; None where they disagree or
only one was found, rather than a guess."""

from typing import NamedTuple


class Term(NamedTuple):
    name: str
    meddra_code: str | None


CANONICAL: tuple[Term, ...] = (
    Term("Anemia", "10002272"),
    Term("Febrile neutropenia", "10016288"),
    Term("Fibrinogen decreased", "10016596"),
    Term("Headache", "10019211"),
    Term("Nausea", "10028813"),
    Term("Neutrophil count decreased", "10029366"),
    Term("Platelet count decreased", "10035528"),
    Term("Vomiting", "10047700"),
    Term("Alanine aminotransferase increased", "10001551"),
    Term("Aspartate aminotransferase increased", "10003481"),
    Term("Blood bilirubin increased", "10005364"),
    Term("Infusion related reaction", None),
    Term("Lung infection", None),
    Term("Cytokine release syndrome", None),
    Term("Immune effector cell-associated neurotoxicity syndrome", None),
)
_BY_KEY = {term.name.lower(): term for term in CANONICAL}


def canonical(term: str) -> Term:
    """The canonical spelling and MedDRA code of `term`; an unknown term as given, without code."""
    return _BY_KEY.get(term.strip().lower(), Term(term.strip(), None))
