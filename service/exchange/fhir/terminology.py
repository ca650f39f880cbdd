"""The code systems, profiles and mappings the FHIR export writes.

Codes come from the registry's own stored values (MedDRA, ICD-10, ICD-O-3, ATC) or from a fixed
mapping of its vocabularies onto a published value set, each named here with where it comes from.
A value with no mapping keeps its text and the registry's own code: nothing is guessed."""

from typing import Any, Final

REGISTRY: Final = "https://github.com/leukemia-outcomes-registry"
# The service's own canonical URLs (code systems and the study-day extension).
STUDY_DAY: Final = f"{REGISTRY}/fhir/StructureDefinition/study-day"
RESPONSE_CATEGORY: Final = f"{REGISTRY}/fhir/CodeSystem/response-category"
EVENT_TYPE: Final = f"{REGISTRY}/fhir/CodeSystem/event-type"
MRD_STATUS: Final = f"{REGISTRY}/fhir/CodeSystem/mrd-status"
DIAGNOSIS: Final = f"{REGISTRY}/fhir/CodeSystem/diagnosis"

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10, as the registry stores it (C91.0)
ICDO3: Final = "http://terminology.hl7.org/CodeSystem/icd-o-3"
MEDDRA: Final = "http://terminology.hl7.org/CodeSystem/mdr"
ATC: Final = "http://www.whocc.no/atc"
NCT: Final = "https://clinicaltrials.gov"
DATA_ABSENT: Final = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
SERIOUSNESS: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"

# HL7 Adverse Event Clinical Research R4 backport IG (hl7.fhir.uv.ae-research-backport-ig).
AE_IG: Final = "http://hl7.org/fhir/uv/ae-research-backport-ig"
AE_GRADE: Final = f"{AE_IG}/StructureDefinition/severity-or-grade"
AE_GRADES: Final = f"{AE_IG}/CodeSystem/adverse-event-severity-or-grade-cs"
AE_STATUS: Final = f"{AE_IG}/StructureDefinition/status"
AE_SERIOUSNESS_CRITERIA: Final = f"{AE_IG}/StructureDefinition/seriousness-criteria"
# ICH E2B(R3) codes the IG binds AdverseEvent.outcome and the seriousness criteria to.
ICH: Final = "urn:oid:2.16.840.1.113883.3.989.2.1.1.19"
ICH_RESULTS_IN_DEATH: Final = "34"
AE_OUTCOME: Final = {
    "resolved": "recoveredorresolved",
    "resolving": "roveringorresolving",  # sic: the IG's own code (adverse-event-outcome-clinical-research-vs)
    "ongoing": "notrecoveredorresolved",
    "fatal": "fatal",
}
AE_GRADE_DISPLAY: Final = {
    1: "Mild",
    2: "Moderate",
    3: "Severe",
    4: "Life Threatening or Disabling",
    5: "Death Related to Adverse Event",
}


class Profile:
    """Profiles named in `meta.profile`: mCODE STU4 and US Core where one applies, the AE research
    IG for adverse events, else the core resource's own definition."""

    MCODE: Final = "http://hl7.org/fhir/us/mcode/StructureDefinition"
    CANCER_PATIENT: Final = f"{MCODE}/mcode-cancer-patient"
    PRIMARY_CANCER_CONDITION: Final = f"{MCODE}/mcode-primary-cancer-condition"
    CANCER_DISEASE_STATUS: Final = f"{MCODE}/mcode-cancer-disease-status"
    US_CORE_LAB: Final = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"
    AE_CLINICAL_RESEARCH: Final = f"{AE_IG}/StructureDefinition/AdverseEvent-clinical-research"

    @staticmethod
    def core(resource_type: str) -> str:
        return f"http://hl7.org/fhir/StructureDefinition/{resource_type}"


HISTOLOGY: Final = f"{Profile.MCODE}/mcode-histology-morphology-behavior"
DISEASE_STATUS_CODE: Final = {"system": LOINC, "code": "97509-4", "display": "Cancer Disease Progression"}

# mCODE ConditionStatusTrendMaxVS (SNOMED CT) for the registry's response categories (this
# service's mapping; neither the response criteria nor mCODE define one): complete remission with
# or without count recovery is full remission; partial remission is partial; MLFS is improvement short of remission; SD and NR (no
# response) stable; PD worsened. A relapse or progression event is worsening too.
TREND: Final = {
    "full": (SNOMED, "550991000124107", "Malignant neoplasm in full remission (disorder)"),
    "partial": (SNOMED, "551001000124108", "Malignant neoplasm in partial remission (disorder)"),
    "improved": (SNOMED, "268910001", "Patient's condition improved (finding)"),
    "stable": (SNOMED, "359746009", "Patient's condition stable (finding)"),
    "worse": (SNOMED, "271299001", "Patient's condition worsened (finding)"),
}
RESPONSE_TREND: Final = {
    "CR": "full",
    "CRi": "full",
    "CRh": "full",
    "PR": "partial",
    "MLFS": "improved",
    "SD": "stable",
    "NR": "stable",
    "PD": "worse",
}
EVENT_TREND: Final = {"relapse": "worse", "progression": "worse"}

# MRD by flow cytometry is the fraction of leukocytes with the leukaemic (abnormal) immunophenotype:
# LOINC 67128-9 "Abnormal leukocytes/Leukocytes in Specimen by Flow cytometry", a number fraction
# in %. qPCR and NGS assays are target-specific (the fusion or rearrangement measured), with no
# method-independent LOINC term: they keep their text and the registry's code.
MRD_FLOW: Final = {
    "system": LOINC,
    "code": "67128-9",
    "display": "Abnormal leukocytes/Leukocytes in Specimen by Flow cytometry",
}
# SNOMED CT qualifier values for a qualitative result.
MRD_VALUE: Final = {
    "negative": (SNOMED, "260385009", "Negative (qualifier value)"),
    "positive": (SNOMED, "10828004", "Positive (qualifier value)"),
}

# When the registry holds no ICD code for a patient, the diagnosis category names one where the
# classification has a single code for it: ICD-10 C91.0 acute lymphoblastic leukaemia, C92.0 acute
# myeloblastic leukaemia; ICD-O-3 9837/3 T lymphoblastic, 9811/3 B lymphoblastic leukaemia NOS,
# 9861/3 acute myeloid leukaemia NOS. MPAL and "other" have several codes: no default.
ICD10_FOR: Final = {
    "T-ALL": ("C91.0", "Acute lymphoblastic leukaemia"),
    "B-ALL": ("C91.0", "Acute lymphoblastic leukaemia"),
    "AML": ("C92.0", "Acute myeloblastic leukaemia"),
}
ICDO3_FOR: Final = {
    "T-ALL": ("9837/3", "T lymphoblastic leukemia/lymphoma"),
    "B-ALL": ("9811/3", "B lymphoblastic leukemia/lymphoma, NOS"),
    "AML": ("9861/3", "Acute myeloid leukemia, NOS"),
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def concept(text: str, *codings: dict[str, Any]) -> dict[str, Any]:
    return {"coding": list(codings), "text": text} if codings else {"text": text}
