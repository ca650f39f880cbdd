"""A study as CDISC datasets: SDTM DM, AE, RS, DS and ADaM ADSL, ADTTE, ADAE, ADRS, each a list
of columns (Dataset-JSON column metadata) and rows, from the patients the request may read.

Timing is in study days (the registry holds few calendar dates): `--DY` variables, and in ADTTE
`STARTDY`/`ADY` beside AVAL in days. Variables outside the SDTM/ADaM standard carry the sponsor
names an analysis dataset may add (`DIAG`, `DISSTAT`, `RISKGR`, the MRD test code `MRDSTS`).
ADTTE holds exactly the rows of the survival analyses (`GET .../time-to-event`, undated events
withheld): a patient whose event has no day is left out — an undated event is never a censoring."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.access.scope import current_scope
from service.analytics.estimands.endpoints import INDUCTION_FAILURE, Endpoint
from service.analytics.estimands.groups import GroupSpec
from service.analytics.survival.analysis import time_to_event
from service.db import models

DataType = Literal["string", "integer", "double", "boolean"]
DatasetName = Literal["DM", "AE", "RS", "DS", "ADSL", "ADTTE", "ADAE", "ADRS"]


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    data_type: DataType
    key: int | None = None  # keySequence

    def metadata(self, dataset: str, rows: Sequence[Sequence[Any]], index: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "itemOID": f"IT.{dataset}.{self.name}",
            "name": self.name,
            "label": self.label,
            "dataType": self.data_type,
        }
        if self.data_type == "string":
            # the longest value, as SAS transport lengths are (at least 1)
            out["length"] = max([1, *(len(str(r[index])) for r in rows if r[index] is not None)])
        if self.key is not None:
            out["keySequence"] = self.key
        return out


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    columns: list[Column]
    rows: list[list[Any]]

    def column_metadata(self) -> list[dict[str, Any]]:
        return [c.metadata(self.name, self.rows, i) for i, c in enumerate(self.columns)]


LABELS: dict[str, str] = {
    "DM": "Demographics",
    "AE": "Adverse Events",
    "RS": "Disease Response and Clin Classification",
    "DS": "Disposition",
    "ADSL": "Subject-Level Analysis Dataset",
    "ADTTE": "Time-to-Event Analysis Dataset",
    "ADAE": "Adverse Events Analysis Dataset",
    "ADRS": "Response Analysis Dataset",
}
SEX = {"female": "F", "male": "M", "unknown": "U"}
DISPOSITION = {"death": "DEATH", "last_follow_up": "LAST KNOWN ALIVE"}
EVENT_TERMS = {
    "relapse": "RELAPSE",
    "progression": "DISEASE PROGRESSION",
    "hsct": "ALLOGENEIC HEMATOPOIETIC STEM CELL TRANSPLANT",
    "gvhd": "GRAFT VERSUS HOST DISEASE",
}
PARAMCDS: tuple[Endpoint, ...] = ("OS", "RFS", "EFS", "GRFS", "CRD")
PARAMS = {
    "OS": "Overall Survival (days)",
    "RFS": "Relapse-Free Survival (days)",
    "EFS": "Event-Free Survival (days)",
    "GRFS": "GVHD-Free Relapse-Free Survival (days)",
    "CRD": "Duration of Complete Remission (days)",
}


def _s(name: str, label: str, key: int | None = None) -> Column:
    return Column(name, label, "string", key)


def _i(name: str, label: str, key: int | None = None) -> Column:
    return Column(name, label, "integer", key)


STUDYID, USUBJID = _s("STUDYID", "Study Identifier", 1), _s("USUBJID", "Unique Subject Identifier", 2)
SUBJECT = [
    STUDYID,
    USUBJID,
    _s("SUBJID", "Subject Identifier for the Study"),
    _s("SITEID", "Study Site Identifier"),
    Column("AGE", "Age", "double"),
    _s("AGEU", "Age Units"),
    _s("SEX", "Sex"),
    _s("ARMCD", "Planned Arm Code"),
    _s("ARM", "Description of Planned Arm"),
]


@dataclass(frozen=True)
class StudyData:
    id: UUID
    study_id: str  # STUDYID: the first registry id, else the service's id
    patients: list[Any]
    arms: dict[UUID, Any]
    sites: dict[UUID, Any]

    def usubjid(self, patient: Any) -> str:
        return f"{self.study_id}-{patient.subject_code}"

    def subject(self, patient: Any) -> list[Any]:
        arm = self.arms.get(patient.arm_id) if patient.arm_id else None
        site = self.sites.get(patient.site_id) if patient.site_id else None
        return [
            self.study_id,
            self.usubjid(patient),
            patient.subject_code,
            site.code if site is not None else None,
            patient.age_years,
            "YEARS" if patient.age_years is not None else None,
            SEX.get(patient.sex or ""),
            f"ARM{sorted(self.arms).index(arm.id) + 1:02d}" if arm is not None else None,
            arm.label if arm is not None else None,
        ]


async def load(session: AsyncSession, study: Any) -> StudyData:
    patients = list(
        await session.scalars(
            select(models.Patient)
            .where(current_scope().study_patients(study.id))
            .order_by(col(models.Patient.subject_code), col(models.Patient.id))
        )
    )
    arms = {a.id: a for a in await session.scalars(select(models.Arm).where(models.Arm.study_id == study.id))}
    sites = {
        s.id: s for s in await session.scalars(select(models.Site).where(models.Site.study_id == study.id))
    }
    return StudyData(study.id, (study.registry_ids or [str(study.id)])[0], patients, arms, sites)


async def _children(session: AsyncSession, model: Any, data: StudyData, order: Any) -> dict[UUID, list[Any]]:
    ids = [p.id for p in data.patients]
    found: dict[UUID, list[Any]] = {}
    for row in await session.scalars(select(model).where(col(model.patient_id).in_(ids)).order_by(*order)):
        found.setdefault(row.patient_id, []).append(row)
    return found


AE_COLUMNS = [
    _i("AESEQ", "Sequence Number", 3),
    _s("AETERM", "Reported Term for the Adverse Event"),
    _s("AEDECOD", "Dictionary-Derived Term"),
    _i("AEPTCD", "Preferred Term Code"),
    _s("AETOXGR", "Standard Toxicity Grade"),
    _s("AESER", "Serious Event"),
    _s("AEOUT", "Outcome of Adverse Event"),
    _s("AEREL", "Causality"),
    _i("AESTDY", "Study Day of Start of Adverse Event"),
    _i("AEENDY", "Study Day of End of Adverse Event"),
]


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("Y" if value else "N")


def _ae_values(ae: Any, seq: int) -> list[Any]:
    return [
        seq,
        ae.verbatim_term or ae.term,
        ae.term,
        int(ae.meddra_code) if ae.meddra_code and ae.meddra_code.isdigit() else None,
        str(ae.grade) if ae.grade is not None else None,
        _yes_no(ae.serious),
        ae.outcome.upper() if ae.outcome else None,
        ae.attribution.upper() if ae.attribution else None,
        ae.onset_day,
        ae.resolution_day,
    ]


def _response_tests(outcome: Any) -> list[tuple[str, str, str | None, str | None]]:
    """(test code, test, result, method) of a response assessment: the overall response and,
    when measured, the MRD status."""
    tests: list[tuple[str, str, str | None, str | None]] = []
    if outcome.category or outcome.category_text:
        tests.append(("OVRLRESP", "Overall Response", outcome.category or outcome.category_text, None))
    if outcome.mrd_status:
        tests.append(
            ("MRDSTS", "Minimal Residual Disease Status", outcome.mrd_status.upper(), outcome.mrd_method)
        )
    return tests


async def build(session: AsyncSession, study: Any, name: DatasetName) -> tuple[Dataset, StudyData]:
    data = await load(session, study)
    builder: Callable[[AsyncSession, StudyData], Any] = BUILDERS[name]
    columns, rows = await builder(session, data)
    return Dataset(name, LABELS[name], columns, rows), data


async def _dm(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    columns = [STUDYID, _s("DOMAIN", "Domain Abbreviation"), *SUBJECT[1:]]
    return columns, [[data.study_id, "DM", *data.subject(p)[1:]] for p in data.patients]


async def _ae(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    events = await _children(session, models.AdverseEvent, data, (col(models.AdverseEvent.id),))
    columns = [STUDYID, _s("DOMAIN", "Domain Abbreviation"), USUBJID, *AE_COLUMNS]
    rows = [
        [data.study_id, "AE", data.usubjid(p), *_ae_values(ae, seq)]
        for p in data.patients
        for seq, ae in enumerate(events.get(p.id, []), start=1)
    ]
    return columns, rows


async def _adae(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    events = await _children(session, models.AdverseEvent, data, (col(models.AdverseEvent.id),))
    columns = [
        *SUBJECT,
        _s("TRTA", "Actual Treatment"),
        *AE_COLUMNS,
        _i("AETOXGRN", "Standard Toxicity Grade (N)"),
        _i("ASTDY", "Analysis Start Relative Day"),
        _i("AENDY", "Analysis End Relative Day"),
    ]
    rows = []
    for p in data.patients:
        subject = data.subject(p)
        for seq, ae in enumerate(events.get(p.id, []), start=1):
            rows.append(
                [*subject, subject[-1], *_ae_values(ae, seq), ae.grade, ae.onset_day, ae.resolution_day]
            )
    return columns, rows


async def _rs(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    outcomes = await _responses(session, data)
    columns = [
        STUDYID,
        _s("DOMAIN", "Domain Abbreviation"),
        USUBJID,
        _i("RSSEQ", "Sequence Number", 3),
        _s("RSTESTCD", "Assessment Short Name"),
        _s("RSTEST", "Assessment Name"),
        _s("RSORRES", "Result or Finding in Original Units"),
        _s("RSSTRESC", "Character Result/Finding in Std Format"),
        _s("RSMETHOD", "Method of Test or Examination"),
        _s("VISIT", "Visit Name"),
        _i("RSDY", "Study Day of Assessment"),
    ]
    rows = []
    for p in data.patients:
        seq = 0
        for outcome in outcomes.get(p.id, []):
            for code, test, result, method in _response_tests(outcome):
                seq += 1
                standard = outcome.category if code == "OVRLRESP" else result
                rows.append(
                    [
                        data.study_id,
                        "RS",
                        data.usubjid(p),
                        seq,
                        code,
                        test,
                        result,
                        standard,
                        method,
                        outcome.timepoint_label,
                        outcome.study_day,
                    ]
                )
    return columns, rows


async def _adrs(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    outcomes = await _responses(session, data)
    columns = [
        *SUBJECT,
        _s("PARAMCD", "Parameter Code", 3),
        _s("PARAM", "Parameter"),
        _s("AVALC", "Analysis Value (C)"),
        _s("AVISIT", "Analysis Visit"),
        _i("ADY", "Analysis Relative Day"),
        _s("SRCDOM", "Source Data"),
        _s("SRCVAR", "Source Variable"),
    ]
    rows = [
        [*data.subject(p), code, test, result, outcome.timepoint_label, outcome.study_day, "RS", "RSSTRESC"]
        for p in data.patients
        for outcome in outcomes.get(p.id, [])
        for code, test, result, _ in _response_tests(outcome)
        if code != "OVRLRESP" or outcome.category  # an unclassified free-text response has no AVALC
    ]
    return columns, rows


async def _responses(session: AsyncSession, data: StudyData) -> dict[UUID, list[Any]]:
    found = await _children(
        session, models.Outcome, data, (col(models.Outcome.study_day), col(models.Outcome.id))
    )
    return {k: [o for o in v if o.kind == "response"] for k, v in found.items()}


async def _ds(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    found = await _children(
        session, models.Outcome, data, (col(models.Outcome.study_day), col(models.Outcome.id))
    )
    columns = [
        STUDYID,
        _s("DOMAIN", "Domain Abbreviation"),
        USUBJID,
        _i("DSSEQ", "Sequence Number", 3),
        _s("DSTERM", "Reported Term for the Disposition Event"),
        _s("DSDECOD", "Standardized Disposition Term"),
        _s("DSCAT", "Category for Disposition Event"),
        _i("DSSTDY", "Study Day of Start of Disposition Event"),
    ]
    rows = []
    for p in data.patients:
        events = [o for o in found.get(p.id, []) if o.kind == "event" and o.event_type]
        for seq, event in enumerate(events, start=1):
            decoded = DISPOSITION.get(event.event_type) or EVENT_TERMS.get(
                event.event_type, event.event_type.upper()
            )
            category = "DISPOSITION EVENT" if event.event_type in DISPOSITION else "OTHER EVENT"
            rows.append(
                [
                    data.study_id,
                    "DS",
                    data.usubjid(p),
                    seq,
                    event.cause or decoded,
                    decoded,
                    category,
                    event.study_day,
                ]
            )
    return columns, rows


async def _adsl(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    columns = [
        *SUBJECT,
        _s("TRT01P", "Planned Treatment for Period 01"),
        _s("DIAG", "Diagnosis"),
        _s("DISSTAT", "Disease Status at Entry"),
        _s("RISKGR", "Risk Group"),
        _s("ITTFL", "Intent-To-Treat Population Flag"),
    ]
    rows = [
        [*data.subject(p), data.subject(p)[-1], p.diagnosis, p.disease_status, p.risk_group, "Y"]
        for p in data.patients
    ]
    return columns, rows


async def _adtte(session: AsyncSession, data: StudyData) -> tuple[list[Column], list[list[Any]]]:
    columns = [
        *SUBJECT,
        _s("PARAMCD", "Parameter Code", 3),
        _s("PARAM", "Parameter"),
        Column("AVAL", "Analysis Value", "double"),
        _s("AVALU", "Analysis Value Unit"),
        _i("CNSR", "Censor"),
        _s("EVNTDESC", "Event or Censoring Description"),
        _s("CNSDTDSC", "Censor Date Description"),
        _i("STARTDY", "Time-to-Event Origin Study Day"),
        _i("ADY", "Analysis Relative Day"),
        _s("SRCDOM", "Source Data"),
        _s("SRCVAR", "Source Variable"),
    ]
    by_id = {p.id: p for p in data.patients}
    rows = []
    for endpoint in PARAMCDS:
        analysis = await time_to_event(
            session, data.id, endpoint=endpoint, time_unit="days", group_by=GroupSpec()
        )
        for r in analysis.rows:
            patient = by_id.get(r.patient_id)
            if patient is None:
                continue
            rows.append(
                [
                    *data.subject(patient),
                    endpoint,
                    PARAMS[endpoint],
                    r.time,
                    "DAYS",
                    r.cnsr,
                    r.event_or_censoring if r.cnsr == 0 else None,
                    r.event_or_censoring if r.cnsr == 1 else None,
                    r.origin_day,
                    r.end_day,
                    *_source(r.event_or_censoring if r.cnsr == 0 else None),
                ]
            )
    return columns, rows


def _source(event: str | None) -> tuple[str | None, str | None]:
    """Where an ADTTE event comes from: induction failure from the responses (RS), every other
    event from the disposition records (DS); a censoring has no single source record."""
    if event is None:
        return None, None
    return ("RS", "RSDY") if event == INDUCTION_FAILURE else ("DS", "DSSTDY")


BUILDERS: dict[str, Any] = {
    "DM": _dm,
    "AE": _ae,
    "RS": _rs,
    "DS": _ds,
    "ADSL": _adsl,
    "ADTTE": _adtte,
    "ADAE": _adae,
    "ADRS": _adrs,
}
__all__ = ["BUILDERS", "Dataset", "DatasetName", "Endpoint", "build"]
