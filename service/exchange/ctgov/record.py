"""ClinicalTrials.gov API v2 study records (`protocolSection`…) to and from studies.

A record becomes a study document (service.exchange.study_document), so an imported registry
entry obeys the same rules as any other import: study fields, arms from `armGroups` with the
agents of their drug and biological interventions (`interventionNames` such as "Drug:
Daratumumab", matched to the catalog by name; agents the catalog lacks are added), and one
provenance entry per field naming where in the record it was read. Every location with a
facility becomes a site; the results section becomes reported results
(service.exchange.ctgov.results); derived data is read only for the MeSH terms that tell a
leukemia study (a record of another disease is refused unless asked for).

Exporting writes the same modules back from a study, so a study imported from a record, or one
curated from a registry entry such as the seed's 003, round-trips field by field."""

import re
from typing import Annotated, Any, get_args

import msgspec
from msgspec import Meta

from service.common.vocab import OverallStatus
from service.errors import RuleViolation
from service.exchange.ctgov.results import ResultsSection, reported_results
from service.exchange.export_json import StudyTree, without_empty

SOURCE = "ClinicalTrials.gov"
DRUG_TYPES = ("DRUG", "BIOLOGICAL", "GENETIC")
MAX_AGENTS = 50  # drug and biological interventions one record may add to the catalogue
OVERALL_STATUSES = set(get_args(OverallStatus))


class _Module(msgspec.Struct, kw_only=True):
    """Registry modules carry many fields this service does not keep: unknown ones are ignored."""


class CtgovDateStruct(_Module):
    date: str | None = None
    type: str | None = None


class CtgovSecondaryId(_Module):
    id: str | None = None


class CtgovIdentification(_Module):
    # NCT and eight digits: it names the source document, looked up before anything else.
    nctId: Annotated[str, Meta(pattern=r"^NCT[0-9]{8}$")] | None = None
    briefTitle: str | None = None
    officialTitle: str | None = None
    secondaryIdInfos: list[CtgovSecondaryId] = []


class CtgovStatus(_Module):
    overallStatus: str | None = None
    startDateStruct: CtgovDateStruct | None = None
    primaryCompletionDateStruct: CtgovDateStruct | None = None
    completionDateStruct: CtgovDateStruct | None = None
    # The record's version: a newer one of an imported record updates its study.
    lastUpdatePostDateStruct: CtgovDateStruct | None = None


class CtgovSponsor(_Module):
    name: str | None = None


class CtgovSponsorCollaborators(_Module):
    leadSponsor: CtgovSponsor | None = None
    collaborators: list[CtgovSponsor] = []


class CtgovOutcome(_Module):
    measure: str | None = None
    description: str | None = None
    timeFrame: str | None = None


class CtgovOutcomes(_Module):
    primaryOutcomes: list[CtgovOutcome] = []
    secondaryOutcomes: list[CtgovOutcome] = []
    otherOutcomes: list[CtgovOutcome] = []


class CtgovDescription(_Module):
    briefSummary: str | None = None


class CtgovConditions(_Module):
    conditions: list[str] = []
    keywords: list[str] = []


class CtgovEnrollmentInfo(_Module):
    count: int | None = None
    type: str | None = None


class CtgovDesignInfo(_Module):
    allocation: str | None = None
    interventionModel: str | None = None


class CtgovDesign(_Module):
    studyType: str | None = None
    phases: list[str] = []
    designInfo: CtgovDesignInfo | None = None
    enrollmentInfo: CtgovEnrollmentInfo | None = None


class CtgovArmGroup(_Module):
    label: str
    type: str | None = None
    description: str | None = None
    interventionNames: list[str] = []


class CtgovIntervention(_Module):
    name: str
    type: str | None = None
    description: str | None = None
    armGroupLabels: list[str] = []


class CtgovArmsInterventions(_Module):
    armGroups: list[CtgovArmGroup] = []
    interventions: list[CtgovIntervention] = []


class CtgovEligibilityModule(_Module):
    eligibilityCriteria: str | None = None
    healthyVolunteers: bool | None = None
    sex: str | None = None
    minimumAge: str | None = None
    maximumAge: str | None = None


class CtgovLocation(_Module):
    facility: str | None = None
    city: str | None = None
    country: str | None = None


class CtgovContactsLocations(_Module):
    locations: list[CtgovLocation] = []


class CtgovProtocolSection(_Module):
    identificationModule: CtgovIdentification
    statusModule: CtgovStatus | None = None
    sponsorCollaboratorsModule: CtgovSponsorCollaborators | None = None
    descriptionModule: CtgovDescription | None = None
    conditionsModule: CtgovConditions | None = None
    designModule: CtgovDesign | None = None
    armsInterventionsModule: CtgovArmsInterventions | None = None
    eligibilityModule: CtgovEligibilityModule | None = None
    contactsLocationsModule: CtgovContactsLocations | None = None
    outcomesModule: CtgovOutcomes | None = None


class CtgovMesh(_Module):
    id: str | None = None
    term: str | None = None


class CtgovConditionBrowse(_Module):
    meshes: list[CtgovMesh] = []
    ancestors: list[CtgovMesh] = []


class CtgovDerived(_Module):
    conditionBrowseModule: CtgovConditionBrowse | None = None


class CtgovStudy(_Module):
    """A ClinicalTrials.gov API v2 study (`GET /api/v2/studies/{nctId}`)."""

    protocolSection: CtgovProtocolSection
    resultsSection: ResultsSection | None = None
    derivedSection: CtgovDerived | None = None


# What makes a record a leukemia study: its conditions, keywords or MeSH terms (the registry
# holds acute leukemias; other leukemias are accepted with a warning, anything else refused).
LEUKEMIA = re.compile(r"leuka?emia|lymphoblastic|myeloblastic|\b(ALL|AML|APL|MPAL|CLL|CML)\b", re.IGNORECASE)
ACUTE = re.compile(r"acute|lymphoblastic|myeloblastic|\b(ALL|AML|APL|MPAL)\b", re.IGNORECASE)


def _disease_terms(record: CtgovStudy) -> list[str]:
    conditions = record.protocolSection.conditionsModule or CtgovConditions()
    browse = (record.derivedSection or CtgovDerived()).conditionBrowseModule or CtgovConditionBrowse()
    return [*conditions.conditions, *conditions.keywords, *(m.term or "" for m in browse.meshes)]


def disease_check(record: CtgovStudy, allow_other: bool) -> list[str]:
    """Warnings for a record of a leukemia other than acute; a RuleViolation for a record none of
    whose conditions is a leukemia, unless `allow_other`."""
    terms = _disease_terms(record)
    leukemias = [t for t in terms if LEUKEMIA.search(t)]
    if not leukemias:
        if allow_other:
            return [
                "none of the record's conditions is a leukemia; imported as asked (allow_non_leukemia=true)"
            ]
        raise RuleViolation(
            "none of the record's conditions, keywords or MeSH terms is a leukemia "
            f"({'; '.join(terms) or 'none listed'}): this registry holds leukemia studies; "
            "allow_non_leukemia=true imports it anyway",
            field="protocolSection.conditionsModule.conditions",
        )
    if not any(ACUTE.search(t) for t in leukemias):
        return [
            f"the record's leukemias are not acute ({'; '.join(leukemias)}): imported, check it belongs here"
        ]
    return []


def _design(design: CtgovDesign | None, arms: int) -> str:
    """Only what the record says: a trial whose allocation it does not give, with several or no
    arms, is "other" (calling it non-randomised would put words in the registry's mouth)."""
    if design is None or design.studyType != "INTERVENTIONAL":
        return "other"
    info = design.designInfo or CtgovDesignInfo()
    if info.allocation == "RANDOMIZED":
        return "randomized_trial"
    if info.allocation == "NON_RANDOMIZED":
        return "non_randomized_trial"
    if info.interventionModel == "SINGLE_GROUP" or arms == 1:
        return "single_arm_trial"
    return "other"


def _intervention_agent(name: str) -> str:
    """ "Drug: Daratumumab" → "daratumumab" (the catalog's names are lower case)."""
    return name.split(":", 1)[-1].strip().lower()


def to_document(record: CtgovStudy, allow_non_leukemia: bool = False) -> dict[str, Any]:
    """The study document of a registry record, every field with the provenance it came from."""
    warnings = disease_check(record, allow_non_leukemia)
    p = record.protocolSection
    ident = p.identificationModule
    source = f"{SOURCE} {ident.nctId}" if ident.nctId else SOURCE
    provenance: list[dict[str, Any]] = []
    study: dict[str, Any] = {}

    def take(field: str, value: Any, location: str, quote: Any = None) -> None:
        if value in (None, [], ""):
            return
        study[field] = value
        text = quote if quote is not None else value
        provenance.append(
            {
                "source_document": source,
                # A JSON pointer (RFC 6901) into the record as received, like every other provenance.
                "location": location
                if location.startswith("/")
                else "/protocolSection/" + location.replace(".", "/"),
                "quote": str(", ".join(text) if isinstance(text, list) else text)[:20_000],
            }
        )

    status = p.statusModule or CtgovStatus()
    design = p.designModule or CtgovDesign()
    groups = (p.armsInterventionsModule or CtgovArmsInterventions()).armGroups
    interventions = (p.armsInterventionsModule or CtgovArmsInterventions()).interventions
    take("title", ident.briefTitle or ident.officialTitle, "identificationModule.briefTitle")
    take("official_title", ident.officialTitle, "identificationModule.officialTitle")
    take("registry_ids", [ident.nctId] if ident.nctId else [], "identificationModule.nctId")
    if status.overallStatus:
        known = status.overallStatus if status.overallStatus in OVERALL_STATUSES else "UNKNOWN"
        take("overall_status", known, "statusModule.overallStatus", status.overallStatus)
    take(
        "start_date",
        status.startDateStruct and status.startDateStruct.date,
        "statusModule.startDateStruct.date",
    )
    end = status.completionDateStruct or status.primaryCompletionDateStruct
    end_field = "completionDateStruct" if status.completionDateStruct else "primaryCompletionDateStruct"
    take("end_date", end and end.date, f"statusModule.{end_field}.date")
    take("phases", design.phases, "designModule.phases")
    study["design"] = _design(p.designModule, len(groups))
    enrollment = design.enrollmentInfo
    if enrollment and enrollment.count is not None:
        field = "actual_enrollment" if enrollment.type == "ACTUAL" else "target_enrollment"
        take(
            field,
            enrollment.count,
            "designModule.enrollmentInfo",
            f"{enrollment.count} ({enrollment.type or 'type not given'})",
        )
    sponsor = (p.sponsorCollaboratorsModule or CtgovSponsorCollaborators()).leadSponsor
    take("sponsor", sponsor and sponsor.name, "sponsorCollaboratorsModule.leadSponsor.name")
    take("conditions", (p.conditionsModule or CtgovConditions()).conditions, "conditionsModule.conditions")
    take(
        "summary", (p.descriptionModule or CtgovDescription()).briefSummary, "descriptionModule.briefSummary"
    )
    locations = (p.contactsLocationsModule or CtgovContactsLocations()).locations
    if len(locations) == 1:  # several sites: no one institution or country is the study's
        take("institution", locations[0].facility, "contactsLocationsModule.locations.0.facility")
        take("country", locations[0].country, "contactsLocationsModule.locations.0.country")
    eligibility = p.eligibilityModule
    if eligibility is not None:
        kept = {
            "criteria": eligibility.eligibilityCriteria,
            "sex": eligibility.sex,
            "minimum_age": eligibility.minimumAge,
            "maximum_age": eligibility.maximumAge,
            "healthy_volunteers": eligibility.healthyVolunteers,
        }
        kept = {k: v for k, v in kept.items() if v is not None}
        take("eligibility", kept or None, "eligibilityModule", eligibility.eligibilityCriteria or str(kept))
    details = _registry_details(record)
    if details:
        study["registry"] = details
        # One provenance per module the registry details were read from, each a JSON pointer.
        provenance.extend(
            {"source_document": source, "location": REGISTRY_SOURCES[key], "quote": f"{len(values)} {key}"}
            for key, values in details.items()
        )
    study["provenance"] = provenance

    drugs = {i.name: i for i in interventions if (i.type or "DRUG") in DRUG_TYPES}
    if len(drugs) > MAX_AGENTS:
        # A registry record of a leukemia study names a handful of drugs: thousands would flood
        # the shared agent catalogue from one request.
        raise RuleViolation(
            f"the record lists {len(drugs)} drug or biological interventions; a record may add at most {MAX_AGENTS} agents",
            field="protocolSection.armsInterventionsModule.interventions",
        )
    position = {id(i): n for n, i in enumerate(interventions)}
    agents = [
        {
            "name": _intervention_agent(i.name),
            "description": i.description,
            "provenance": [
                {
                    "source_document": source,
                    "location": f"/protocolSection/armsInterventionsModule/interventions/{position[id(i)]}",
                    "quote": f"{i.type}: {i.name}",
                }
            ],
        }
        for i in drugs.values()
    ]
    arms = []
    for n, group in enumerate(groups):
        names = [name.split(":", 1)[-1].strip() for name in group.interventionNames]
        names += [i.name for i in drugs.values() if group.label in i.armGroupLabels and i.name not in names]
        arms.append(
            {
                "key": f"arm-{n + 1}",
                "label": group.label,
                "description": group.description,
                "agents": [_intervention_agent(name) for name in names if name in drugs],
                "provenance": [
                    {
                        "source_document": source,
                        "location": f"/protocolSection/armsInterventionsModule/armGroups/{n}",
                        "quote": group.label,
                    }
                ],
            }
        )
    sites = []
    for n, location in enumerate(locations):
        if not location.facility:
            warnings.append(f"location {n} names no facility: not a site (city {location.city or '?'})")
            continue
        sites.append(
            {
                "code": f"S{n + 1}",
                "institution": location.facility[:200],
                "city": location.city and location.city[:200],
                "country": location.country and location.country[:200],
                "provenance": [
                    {
                        "source_document": source,
                        "location": f"/protocolSection/contactsLocationsModule/locations/{n}",
                        "quote": ", ".join(
                            t for t in (location.facility, location.city, location.country) if t
                        ),
                    }
                ],
            }
        )
    arm_keys = {str(arm["label"]).strip().lower(): str(arm["key"]) for arm in arms}
    return {
        "format": "leukemia-registry/study",
        "format_version": 1,
        "document": source if ident.nctId else None,
        "agents": [{k: v for k, v in a.items() if v is not None} for a in agents],
        "study": study,
        "arms": [{k: v for k, v in a.items() if v is not None} for a in arms],
        "sites": [{k: v for k, v in site.items() if v} for site in sites],
        "reported_results": reported_results(record.resultsSection, source, arm_keys),
        "warnings": warnings,
        "registry_version": status.lastUpdatePostDateStruct and status.lastUpdatePostDateStruct.date,
    }


OUTCOME_KINDS = (
    ("PRIMARY", "primaryOutcomes"),
    ("SECONDARY", "secondaryOutcomes"),
    ("OTHER", "otherOutcomes"),
)


def _registry_details(record: CtgovStudy) -> dict[str, Any]:
    """Keywords, MeSH terms, secondary ids, collaborators and outcome-measure definitions."""
    p = record.protocolSection
    browse = (record.derivedSection or CtgovDerived()).conditionBrowseModule or CtgovConditionBrowse()
    outcomes = p.outcomesModule or CtgovOutcomes()
    details = {
        "keywords": [k[:500] for k in (p.conditionsModule or CtgovConditions()).keywords if k][:100],
        "mesh_terms": [
            {"term": m.term[:500], **({"id": m.id} if m.id else {})} for m in browse.meshes if m.term
        ][:100],
        "secondary_ids": [i.id[:200] for i in p.identificationModule.secondaryIdInfos if i.id][:50],
        "collaborators": [
            c.name[:500]
            for c in (p.sponsorCollaboratorsModule or CtgovSponsorCollaborators()).collaborators
            if c.name
        ][:50],
        "outcome_measures": [
            {
                "type": kind,
                "measure": o.measure[:500],
                **({"description": o.description[:20_000]} if o.description else {}),
                **({"time_frame": o.timeFrame[:500]} if o.timeFrame else {}),
            }
            for kind, field in OUTCOME_KINDS
            for o in getattr(outcomes, field)
            if o.measure
        ][:200],
    }
    return {k: v for k, v in details.items() if v}


REGISTRY_SOURCES = {
    "keywords": "/protocolSection/conditionsModule/keywords",
    "mesh_terms": "/derivedSection/conditionBrowseModule/meshes",
    "secondary_ids": "/protocolSection/identificationModule/secondaryIdInfos",
    "collaborators": "/protocolSection/sponsorCollaboratorsModule/collaborators",
    "outcome_measures": "/protocolSection/outcomesModule",
}


def _registry_modules(registry: dict[str, Any] | None) -> dict[str, Any]:
    """The registry details back in the record's modules (only what is stored)."""
    details = registry or {}
    outcomes: dict[str, list[dict[str, Any]]] = {}
    for o in details.get("outcome_measures", []):
        field = dict(OUTCOME_KINDS)[o["type"]]
        outcomes.setdefault(field, []).append(
            {"measure": o["measure"], "description": o.get("description"), "timeFrame": o.get("time_frame")}
        )
    return {
        "keywords": details.get("keywords", []),
        "secondaryIdInfos": [{"id": i} for i in details.get("secondary_ids", [])],
        "collaborators": [{"name": c} for c in details.get("collaborators", [])],
        "outcomesModule": outcomes or None,
        "meshes": [{k: m[k] for k in ("id", "term") if m.get(k)} for m in details.get("mesh_terms", [])],
    }


def from_tree(tree: StudyTree) -> dict[str, Any]:
    """A registry record (API v2 shape) of a stored study: what the registry's modules can say."""
    study = tree.study
    nct = next((r for r in study.registry_ids if r.startswith("NCT")), None)
    registry = _registry_modules(study.registry)
    protocol: dict[str, Any] = {
        "identificationModule": {
            "nctId": nct,
            "briefTitle": study.title,
            "officialTitle": study.official_title,
            "secondaryIdInfos": registry["secondaryIdInfos"],
        },
        "statusModule": {
            "overallStatus": study.overall_status,
            "startDateStruct": {"date": study.start_date} if study.start_date else None,
            "completionDateStruct": {"date": study.end_date} if study.end_date else None,
        },
        "sponsorCollaboratorsModule": {
            "leadSponsor": {"name": study.sponsor} if study.sponsor else None,
            "collaborators": registry["collaborators"],
        },
        "descriptionModule": {"briefSummary": study.summary} if study.summary else None,
        "conditionsModule": {"conditions": study.conditions, "keywords": registry["keywords"]},
        "outcomesModule": registry["outcomesModule"],
        "designModule": {
            # Only what the study's design says; "other" says neither type nor allocation.
            "studyType": "OBSERVATIONAL"
            if study.design in ("case_report", "case_series", "retrospective_cohort")
            else None
            if study.design == "other"
            else "INTERVENTIONAL",
            "phases": study.phases,
            "designInfo": {
                "allocation": {
                    "randomized_trial": "RANDOMIZED",
                    "non_randomized_trial": "NON_RANDOMIZED",
                }.get(study.design),
                "interventionModel": "SINGLE_GROUP" if study.design == "single_arm_trial" else None,
            },
            "enrollmentInfo": (
                {"count": study.actual_enrollment, "type": "ACTUAL"}
                if study.actual_enrollment is not None
                else {"count": study.target_enrollment, "type": "ESTIMATED"}
                if study.target_enrollment is not None
                else None
            ),
        },
        "armsInterventionsModule": {
            "armGroups": [
                {
                    "label": arm.label,
                    "description": arm.description,
                    "interventionNames": [f"Drug: {name}" for name in tree.arm_agents.get(arm.id, [])],
                }
                for arm in tree.arms
            ],
            "interventions": [
                {
                    "type": "DRUG",
                    "name": agent.name,
                    "description": agent.description,
                    "armGroupLabels": [
                        a.label for a in tree.arms if agent.name in tree.arm_agents.get(a.id, [])
                    ],
                }
                for agent in tree.agents
            ],
        },
        "eligibilityModule": _eligibility_module(study.eligibility),
        "contactsLocationsModule": (
            {
                "locations": [
                    {"facility": site.institution, "city": site.city, "country": site.country}
                    for site in tree.sites
                ]
            }
            if tree.sites
            else {"locations": [{"facility": study.institution, "country": study.country}]}
            if study.institution or study.country
            else None
        ),
    }
    derived = {"conditionBrowseModule": {"meshes": registry["meshes"]}}
    return without_empty({"protocolSection": protocol, "derivedSection": derived})  # type: ignore[no-any-return]


def _eligibility_module(eligibility: dict[str, Any] | None) -> dict[str, Any] | None:
    if not eligibility:
        return None
    return {
        "eligibilityCriteria": eligibility.get("criteria"),
        "sex": eligibility.get("sex"),
        "minimumAge": eligibility.get("minimum_age"),
        "maximumAge": eligibility.get("maximum_age"),
        "healthyVolunteers": eligibility.get("healthy_volunteers"),
    }
