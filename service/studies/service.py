from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from service.common.dates import check_date_order, check_partial_date
from service.common.repository import Repository
from service.db import cascade, models
from service.studies.schemas import Study


class StudyRepository(Repository[models.Study]):
    model = models.Study
    read_type = Study
    label = "study"
    children = {
        "arms": (models.Arm, models.Arm.study_id),
        "sites": (models.Site, models.Site.study_id),
        "patients": (models.Patient, models.Patient.study_id),
        "reported results": (models.ReportedResult, models.ReportedResult.study_id),
    }

    def rules(self, values: dict[str, Any]) -> None:
        check_partial_date(values.get("start_date"), "start_date")
        check_partial_date(values.get("end_date"), "end_date")
        check_date_order(values.get("start_date"), values.get("end_date"), "end_date")

    async def delete_dependants(self, session: AsyncSession, row: Any) -> None:
        await cascade.delete_study_contents(session, row.id)
