from litestar import get
from sqlalchemy import text

from service.common.schemas import Output
from service.db.session import DbSession


class Health(Output):
    status: str
    database: str


@get("/health", operation_id="getHealth", tags=["Health"], summary="Liveness and database check")
async def health(db_session: DbSession) -> Health:
    await db_session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok")
