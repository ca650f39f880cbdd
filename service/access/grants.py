"""What a token or a signed-in principal may do: a global role (reader < curator < admin), or a
list of grants, each on one study and optionally limited to some of its sites.

- `curator`: reads and writes the patients (of its sites) and, without sites, the study's
  study-level records (the study, its arms, sites and reported results);
- `reader`: reads them;
- `aggregate`: study-level records and analyses only, never a patient-level row."""

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

GrantRole = Literal["curator", "reader", "aggregate"]
MAX_GRANTS = 200
MAX_SITES = 100


class Grant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    study_id: UUID
    role: GrantRole
    sites: (
        Annotated[
            list[UUID],
            Meta(
                min_length=1,
                max_length=MAX_SITES,
                description="Only these sites' patients (and their records); omit for the whole study.",
            ),
        ]
        | None
    ) = None


GrantList = Annotated[list[Grant], Meta(min_length=1, max_length=MAX_GRANTS)]
