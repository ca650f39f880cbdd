"""A newer version of an imported registry record, applied to its study with history.

The record is the source of the fields its import reads (title, status, dates, enrolment,
sponsor, conditions, eligibility, registry details, …) and of the reported results read from its
results section; the rest of the study is the curators'. So an update:
- sets those study fields to what the new version says (a field the new version leaves out is
  cleared), keeping provenance entries from other sources;
- adds arms and sites the record now lists (an arm is matched by its label, a site by institution
  and city); arms and sites it no longer lists are kept, with a warning, since patients may
  belong to them;
- replaces the reported results read from the previous version (each deleted one audited with
  its values) by those of the new one;
- stores the new version beside the earlier ones (service.exchange.ctgov.sources).
Everything is audited: the study's `update` names both versions and their SHA-256. An older
version, or the same one again, changes nothing (409)."""

from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from service.access.writes import authorize_write
from service.audit import trail
from service.common.repository import flush, row_values
from service.db import models
from service.db.cascade import audited_delete
from service.db.models import utcnow
from service.errors import Conflict
from service.exchange import study_document
from service.exchange.ctgov import sources
from service.exchange.schemas import ImportResult, RecordUpdate
from service.exchange.study_document import Document, Plan
from service.studies.service import StudyRepository

# The study fields a ClinicalTrials.gov record gives (service.exchange.ctgov.record.to_document).
RECORD_FIELDS = (
    "title",
    "official_title",
    "overall_status",
    "start_date",
    "end_date",
    "phases",
    "design",
    "target_enrollment",
    "actual_enrollment",
    "sponsor",
    "conditions",
    "summary",
    "institution",
    "country",
    "eligibility",
    "registry",
)
LIST_FIELDS = ("phases", "conditions")


class RecordAlreadyImported(Conflict):
    slug = "record-already-imported"


class OlderRecord(Conflict):
    slug = "older-record"


def _from_record(provenance: dict[str, Any], source: str) -> bool:
    return provenance.get("source_document") == source


async def refuse_unless_newer(
    session: AsyncSession, study_id: UUID, body: bytes, version: str | None
) -> models.SourceRecord | None:
    """The study's latest stored record, after refusing a version already stored or older."""
    digest = sources.digest(body)
    stored = await sources.history(session, study_id)
    same = next((row for row in stored if row.sha256 == digest), None)
    if same is not None:
        raise RecordAlreadyImported(
            f"this version of the record (SHA-256 {digest}) was imported on "
            f"{same.imported_at.date().isoformat()}; nothing changed",
            field="document",
        )
    previous = stored[-1] if stored else None
    if previous is not None and previous.version is not None:
        if version is None:
            raise OlderRecord(
                "the record gives no last update date (statusModule.lastUpdatePostDateStruct), so it cannot "
                f"be told newer than the version imported, last updated {previous.version}",
                field="protocolSection.statusModule.lastUpdatePostDateStruct",
            )
        if version < previous.version:
            raise OlderRecord(
                f"the record was last updated {version}, before the version imported ({previous.version}); "
                "an older version does not replace a newer one",
                field="protocolSection.statusModule.lastUpdatePostDateStruct",
            )
    return previous


async def apply(
    session: AsyncSession, study: models.Study, plan: Plan, document: Document, body: bytes
) -> ImportResult:
    """Bring `study` (locked, visible to the caller) to the record `document` was read from."""
    source = str(document.source_document)
    previous = await refuse_unless_newer(session, study.id, body, document.registry_version)
    planned = plan.rows[models.Study][0]
    before = row_values(study)
    after = dict(before)
    for field in RECORD_FIELDS:
        after[field] = planned.get(field, [] if field in LIST_FIELDS else None)
    after["registry_ids"] = list(
        dict.fromkeys([*planned.get("registry_ids", []), *(study.registry_ids or [])])
    )
    after["provenance"] = [
        *(p for p in study.provenance or [] if not _from_record(p, source)),
        *planned["provenance"],
    ]
    repository = StudyRepository()
    await repository.check(session, after, study)
    await authorize_write(session, "studies", after, before)

    rows: dict[Any, list[dict[str, Any]]] = {models.Agent: plan.rows.get(models.Agent, [])}
    warnings = list(document.warnings)
    arm_ids = await _arms(session, study.id, plan, rows, warnings)
    await _sites(session, study.id, plan, rows, warnings)
    removed = await _replace_results(session, study.id, source, plan, arm_ids, rows)

    changes = trail.changes_between(
        {k: before[k] for k in (*RECORD_FIELDS, "registry_ids", "provenance")},
        {k: after[k] for k in (*RECORD_FIELDS, "registry_ids", "provenance")},
    )
    for field, (_, new) in changes.items():
        setattr(study, field, new)
    study.version += 1
    study.updated_at = utcnow()
    await flush(session)
    await study_document.insert_rows(session, rows)
    audited_kinds = (
        (models.Agent, "agent"),
        (models.Arm, "arm"),
        (models.Site, "site"),
        (models.ReportedResult, "reported_result"),
    )
    for model, kind in audited_kinds:
        for row in rows.get(model, []):
            await trail.record(
                session, "create", kind, row["id"], trail.changes_between(None, _jsonable(row))
            )
    stored = sources.new_row(study.id, source, body, document.registry_version)
    session.add(stored)
    await flush(session)
    await trail.record(
        session,
        "update",
        "study",
        study.id,
        {
            **{k: v for k, v in changes.items() if k != "provenance"},
            "record_version": [previous.version if previous else None, document.registry_version],
            "record_sha256": [previous.sha256 if previous else None, stored.sha256],
            "reported_results": [removed, len(rows.get(models.ReportedResult, []))],
        },
    )
    added = {
        "arms": len(rows.get(models.Arm, [])),
        "sites": len(rows.get(models.Site, [])),
        "reported_results": len(rows.get(models.ReportedResult, [])),
    }
    return ImportResult(
        study_id=study.id,
        agents_added=len(rows[models.Agent]),
        counts={kind: added.get(kind, 0) for kind in study_document.KINDS},
        warnings=warnings,
        update=RecordUpdate(
            previous_version=previous.version if previous else None,
            version=document.registry_version,
            previous_sha256=previous.sha256 if previous else None,
            sha256=stored.sha256,
            fields_changed=sorted(k for k in changes if k != "provenance"),
            reported_results_removed=removed,
        ),
    )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return msgspec.json.decode(msgspec.json.encode(row))  # type: ignore[no-any-return]


async def _arms(
    session: AsyncSession,
    study_id: UUID,
    plan: Plan,
    rows: dict[Any, list[dict[str, Any]]],
    warnings: list[str],
) -> dict[Any, Any]:
    """Planned arm id → stored arm id; arms new to the study are added to `rows`."""
    stored = {
        arm.label.strip().lower(): arm
        for arm in (
            await session.scalars(select(models.Arm).where(col(models.Arm.study_id) == study_id))
        ).all()
    }
    mapping: dict[Any, Any] = {}
    listed: set[str] = set()
    for row in plan.rows.get(models.Arm, []):
        key = row["label"].strip().lower()
        listed.add(key)
        found = stored.get(key)
        if found is not None:
            mapping[row["id"]] = found.id
            continue
        rows.setdefault(models.Arm, []).append({**row, "study_id": study_id})
        mapping[row["id"]] = row["id"]
        rows.setdefault(models.ArmAgent, []).extend(
            link for link in plan.rows.get(models.ArmAgent, []) if link["arm_id"] == row["id"]
        )
    for key, arm in stored.items():
        if key not in listed:
            warnings.append(f"arm {arm.label!r} is no longer in the record: kept")
    return mapping


async def _sites(
    session: AsyncSession,
    study_id: UUID,
    plan: Plan,
    rows: dict[Any, list[dict[str, Any]]],
    warnings: list[str],
) -> None:
    stored = (await session.scalars(select(models.Site).where(col(models.Site.study_id) == study_id))).all()

    def place(institution: str, city: str | None) -> tuple[str, str]:
        return institution.strip().lower(), (city or "").strip().lower()

    known = {place(site.institution, site.city): site for site in stored}
    codes = {site.code.lower() for site in stored}
    listed: set[tuple[str, str]] = set()
    n = len(stored)
    for row in plan.rows.get(models.Site, []):
        key = place(row["institution"], row.get("city"))
        listed.add(key)
        if key in known:
            continue
        code = row["code"]
        while code.lower() in codes:  # the record's numbering may reuse a stored site's code
            n += 1
            code = f"S{n}"
        codes.add(code.lower())
        rows.setdefault(models.Site, []).append({**row, "study_id": study_id, "code": code})
    for key, site in known.items():
        if key not in listed:
            warnings.append(f"site {site.code} ({site.institution}) is no longer in the record: kept")


async def _replace_results(
    session: AsyncSession,
    study_id: UUID,
    source: str,
    plan: Plan,
    arm_ids: dict[Any, Any],
    rows: dict[Any, list[dict[str, Any]]],
) -> int:
    """Delete the results read from the previous version (audited one by one, values and all);
    lay out the new version's. How many were deleted."""
    statement = select(col(models.ReportedResult.id), col(models.ReportedResult.provenance)).where(
        col(models.ReportedResult.study_id) == study_id
    )
    previous = [
        result_id
        for result_id, provenance in (await session.execute(statement)).all()
        if provenance
        and all(_from_record(p, source) for p in provenance)
        and any(str(p.get("location", "")).startswith("/resultsSection") for p in provenance)
    ]
    if previous:
        await audited_delete(session, models.ReportedResult, col(models.ReportedResult.id).in_(previous))
    for row in plan.rows.get(models.ReportedResult, []):
        definition = row.get("definition")
        if isinstance(definition, dict) and "arm_ids" in definition:
            definition = {**definition, "arm_ids": [str(arm_ids[UUID(a)]) for a in definition["arm_ids"]]}
        rows.setdefault(models.ReportedResult, []).append(
            {
                **row,
                "study_id": study_id,
                "arm_id": arm_ids.get(row["arm_id"]) if row.get("arm_id") else None,
                "definition": definition,
            }
        )
    return len(previous)
