from typing import Literal
from uuid import UUID

from service.common.schemas import Output


class DataVersion(Output):
    """The data an answer was computed on, so that a number in a paper can be traced to it."""

    # "live": the registry's data as it stood; "cut": a data cut's frozen data.
    source: Literal["live", "cut"]
    # As the Data-Version header: s<n>.c<m> (a study and the shared catalogues), a<n> (across
    # studies) or cut:<id>:<sha256>.
    version: str
    # The hash of the audit chain's record the data is pinned to (it pins every record before
    # it): live, the last record that could change this answer (number `audit_seq`); on a cut,
    # the last record when the cut was taken (`audit_records` records then).
    audit_head: str
    audit_seq: int | None = None
    audit_records: int | None = None
    data_cut: UUID | None = None
    # The SHA-256 of the cut's frozen content (GET /data-cuts/{id}/content).
    sha256: str | None = None
