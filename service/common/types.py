"""Constrained scalar types used by every request body.

Every bound is explicit so that no input (huge numbers, NUL bytes, endless strings) can reach the
database and fail there: Postgres INTEGER is 32-bit and its text type refuses NUL.
"""

from typing import Annotated

from msgspec import Meta

NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
ShortText = Annotated[str, Meta(min_length=1, max_length=500, pattern=NO_NUL)]
LongText = Annotated[str, Meta(max_length=20_000, pattern=NO_NUL)]
Percent = Annotated[float, Meta(ge=0, le=100)]
Count = Annotated[int, Meta(ge=0, le=10_000_000)]
Measurement = Annotated[float, Meta(ge=0, le=1_000_000)]
# Study days follow SDTM: day 1 is the first day of study treatment, day -1 the day before;
# there is no day 0 (checked by the services and the database).
STUDY_DAY_DESCRIPTION = (
    "SDTM study day: 1 = first day of study treatment, -1 = the day before; 0 does not exist."
)
StudyDay = Annotated[int, Meta(ge=-36_500, le=36_500, description=STUDY_DAY_DESCRIPTION)]
# ISO 8601 date reduced to the precision the source gives: 2024, 2024-04 or 2024-04-17.
PartialDate = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$",
        description="ISO 8601 date at the precision the source gives: YYYY, YYYY-MM or YYYY-MM-DD.",
        examples=["2024-04"],
    ),
]
# Classification codes, checked for shape (ASCII digits only): ICD-10 category or subcategory
# (C91.0), ICD-O-3 morphology with behaviour (9811/3), WHO ATC level-5 code (L01FC01), MedDRA
# lowest-level-term code (8 digits).
Icd10Code = Annotated[str, Meta(pattern=r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?$", examples=["C91.0"])]
IcdO3Morphology = Annotated[str, Meta(pattern=r"^[89][0-9]{3}/[0-36-9]$", examples=["9811/3"])]
AtcCode = Annotated[str, Meta(pattern=r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$", examples=["L01FC01"])]
MeddraCode = Annotated[str, Meta(pattern=r"^[0-9]{8}$", examples=["10029366"])]
# Accepted trial registry identifiers: ClinicalTrials.gov, ChiCTR, ISRCTN, EudraCT/CTIS, ANZCTR, DRKS.
RegistryId = Annotated[
    str,
    Meta(
        pattern=(
            r"^(NCT[0-9]{8}|ChiCTR[0-9]{10}|ChiCTR-[A-Z]{2,5}-[0-9]{8}|ISRCTN[0-9]{8}|[0-9]{4}-[0-9]{6}-[0-9]{2}(-[0-9]{2})?"
            r"|ACTRN[0-9]{14}|DRKS[0-9]{8})$"
        ),
        examples=["NCT04351022"],
    ),
]
