"""The data dictionary of the CSV export: each file's columns with their type, unit and code
system, so that R, SAS or a spreadsheet reads them without guessing."""

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

# Units by column: the registry stores each measurement in one unit.
UNITS = {
    "age_years": "years",
    "wbc_10e9_per_l": "10^9/L",
    "platelets_10e9_per_l": "10^9/L",
    "hemoglobin_g_per_l": "g/L",
    "marrow_blasts_pct": "%",
    "peripheral_blasts_pct": "%",
    "chimerism_pct": "%",
    "mrd_level": "fraction of cells (1e-4 = 0.01 %)",
    "mrd_sensitivity": "fraction of cells",
    "time": "days (the time unit of the export)",
}
DAY_NOTE = "study day (SDTM: day 1 = first day of study treatment; no day 0)"
CODE_SYSTEMS = {
    "icd10_code": "ICD-10 (WHO)",
    "icdo3_morphology": "ICD-O-3 morphology/behaviour",
    "meddra_code": "MedDRA preferred term code",
    "atc_code": "WHO ATC",
    "grade": "CTCAE v4/v5 or ASTCT 2019, as grading_system says",
    "grading_system": "registry vocabulary: CTCAE_v4, CTCAE_v5, ASTCT_2019",
    "category": "response category (CR, CRi, CRh, MLFS, PR, SD, NR, PD)",
    "possible_categories": "response categories (JSON list)",
    "diagnosis": "registry vocabulary: T-ALL, B-ALL, AML, MPAL, other",
    "phases": "ClinicalTrials.gov Phase (JSON list)",
    "overall_status": "ClinicalTrials.gov OverallStatus",
    "registry_ids": "registry identifiers, e.g. NCT numbers (JSON list)",
    "cnsr": "CDISC ADaM CNSR: 0 = event, 1 = censored",
}


def _sql_type(column: Any) -> str:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return "json"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", UUID: "uuid"}
    if kind in names:
        return names[kind]
    if kind is datetime:
        return "datetime (ISO 8601, UTC)"
    return "json"  # lists and objects, as JSON text


def _unit(name: str) -> str:
    if name in UNITS:
        return UNITS[name]
    if name.endswith("_day") or name == "study_day":
        return DAY_NOTE
    return ""


def table_entries(file: str, model: Any, columns: list[str]) -> list[dict[str, str]]:
    table = model.__table__.columns
    return [
        {
            "file": file,
            "column": name,
            "type": _sql_type(table[name]),
            "unit": _unit(name),
            "code_system": CODE_SYSTEMS.get(name, ""),
        }
        for name in columns
    ]


def struct_entries(file: str, struct: Any) -> list[dict[str, str]]:
    names = {int: "integer", float: "number", str: "string", bool: "boolean"}
    entries = []
    for field in msgspec.structs.fields(struct):
        kinds = [k for k in getattr(field.type, "__args__", (field.type,)) if k is not type(None)]
        kind = names.get(kinds[0], "json") if len(kinds) == 1 and isinstance(kinds[0], type) else "json"
        entries.append(
            {
                "file": file,
                "column": field.name,
                "type": kind,
                "unit": _unit(field.name),
                "code_system": CODE_SYSTEMS.get(field.name, ""),
            }
        )
    return entries
