from typing import Annotated
from uuid import UUID

from msgspec import Meta

from service.common.schemas import Input, ProvenanceList
from service.common.structs import read_struct, update_struct
from service.common.types import Name

SiteCode = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        examples=["A1"],
        description="Short code of the site, unique within the study (letters, digits, `_ . -`).",
    ),
]


class SiteCreate(Input):
    """A centre that enrols patients into a study. Grants can be limited to sites (see /tokens)."""

    study_id: UUID
    code: SiteCode
    institution: Name
    city: Name | None = None
    country: Name | None = None
    ctgov_facility_id: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=100,
                pattern=r"^[^\x00]*$",
                description="The facility's identifier in the ClinicalTrials.gov record, where it has one.",
            ),
        ]
        | None
    ) = None
    provenance: ProvenanceList = []


SiteUpdate = update_struct(SiteCreate, "SiteUpdate", exclude=("study_id",))
Site = read_struct(SiteCreate, "Site")
