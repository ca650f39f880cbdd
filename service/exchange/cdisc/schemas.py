import msgspec

from service.common.schemas import Output


class DatasetColumn(Output, rename="camel"):
    item_oid: str = msgspec.field(name="itemOID")
    name: str
    label: str
    data_type: str
    length: int | None = None
    key_sequence: int | None = None


class SourceSystem(Output):
    name: str
    version: str


class DatasetJson(Output, rename="camel"):
    """A CDISC Dataset-JSON v1.1 dataset (the model of cdisc-org/DataExchange-DatasetJson)."""

    dataset_json_creation_date_time: str = msgspec.field(name="datasetJSONCreationDateTime")
    dataset_json_version: str = msgspec.field(name="datasetJSONVersion")
    file_oid: str = msgspec.field(name="fileOID")
    originator: str
    source_system: SourceSystem
    study_oid: str = msgspec.field(name="studyOID")
    meta_data_version_oid: str = msgspec.field(name="metaDataVersionOID")
    item_group_oid: str = msgspec.field(name="itemGroupOID")
    records: int
    name: str
    label: str
    columns: list[DatasetColumn]
    rows: list[list[str | int | float | bool | None]]  # a cell: string, number, boolean or null


class DatasetEntry(Output):
    name: str
    label: str
    standard: str  # SDTM or ADaM
    json: str  # the path of its Dataset-JSON
    ndjson: str  # the path of its Dataset-JSON NDJSON
