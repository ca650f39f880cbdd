"""Controlled vocabularies shared by the API schemas, the database checks and the seed data."""

from typing import Literal, get_args

Design = Literal[
    "case_report",
    "case_series",
    "retrospective_cohort",
    "single_arm_trial",
    "non_randomized_trial",
    "randomized_trial",
    "other",
]
# ClinicalTrials.gov API v2 `Phase` and `OverallStatus` enumerations.
Phase = Literal["NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4"]
OverallStatus = Literal[
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "ENROLLING_BY_INVITATION",
    "ACTIVE_NOT_RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "COMPLETED",
    "WITHDRAWN",
    "UNKNOWN",
]
Sex = Literal["female", "male", "unknown"]
Diagnosis = Literal["T-ALL", "B-ALL", "AML", "MPAL", "other"]
DiseaseStatus = Literal["newly_diagnosed", "cr_mrd_positive", "relapsed", "refractory", "relapsed_post_hsct"]
TreatmentPhase = Literal[
    "induction",
    "consolidation",
    "salvage",
    "bridging",
    "conditioning",
    "hsct",
    "cellular_therapy",
    "maintenance",
]
GradingSystem = Literal["CTCAE_v4", "CTCAE_v5", "ASTCT_2019"]
AdverseEventOutcome = Literal["resolved", "resolving", "ongoing", "fatal"]
Attribution = Literal["unrelated", "unlikely", "possible", "probable", "definite"]
OutcomeKind = Literal["response", "event", "observation"]
ResponseCategory = Literal["CR", "CRi", "CRh", "MLFS", "PR", "SD", "NR", "PD"]
MrdStatus = Literal["negative", "positive", "not_done"]
MrdMethod = Literal["flow", "qPCR", "NGS"]
Sample = Literal["bone_marrow", "csf", "peripheral_blood"]
EventType = Literal["relapse", "progression", "death", "hsct", "last_follow_up", "gvhd"]
# Graft-versus-host disease: acute (graded 1–4, MAGIC) or chronic (NIH global severity).
GvhdKind = Literal["acute", "chronic"]
ChronicGvhdSeverity = Literal["mild", "moderate", "severe"]
MarkerStatus = Literal["positive", "negative", "partial", "dim"]


def values(vocabulary: object) -> tuple[str, ...]:
    """The allowed strings of a Literal vocabulary, in declaration order."""
    return tuple(get_args(vocabulary))
