"""Logs never hold bearer tokens or free-text clinical fields, whatever the request's outcome."""

import logging
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.testing import TestClient
from sqlalchemy.exc import IntegrityError

from service.errors import EXCEPTION_HANDLERS
from tests import factories as f

NARRATIVE = "Relapsed after the third cycle; family declined further marrow sampling"


def test_requests_leave_no_token_or_free_text_in_the_logs(
    client: TestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = client.headers["Authorization"].removeprefix("Bearer ")
    patient = f.patient(client, f.study(client)["id"], notes=NARRATIVE)
    url = f"/api/v1/patients/{patient['id']}"
    assert client.patch(url, json={"notes": NARRATIVE + " (re-read)"}).status_code == 200
    # Refused writes: a rule violation, a validation error and an unknown reference.
    assert client.patch(url, json={"notes": NARRATIVE, "age_years": -4}).status_code == 400
    unknown = {"patient_id": "0190a5b0-0000-7000-8000-000000000000", "term": "Sepsis", "notes": NARRATIVE}
    assert client.post("/api/v1/adverse-events", json={**unknown, "grade": 3}).status_code == 422
    assert (
        client.get("/api/v1/patients", headers={"Authorization": "Bearer lor_wrong-token"}).status_code == 401
    )

    logged = caplog.text
    assert secret not in logged and "lor_wrong-token" not in logged
    assert "Relapsed after the third cycle" not in logged


def test_a_database_error_logs_its_first_line_only(caplog: pytest.LogCaptureFixture) -> None:
    # Postgres's message for a check or unique violation carries the offending row after the
    # first line ("DETAIL:  Failing row contains (...)"), free text included.
    @post("/boom")
    async def boom() -> None:
        message = (
            f'new row violates check constraint "ck_grade"\nDETAIL:  Failing row contains ({NARRATIVE}).'
        )
        raise IntegrityError("INSERT ...", {}, Exception(message))

    caplog.set_level(logging.DEBUG)
    with TestClient(Litestar([boom], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)) as client:
        response = client.post("/boom")
    assert response.status_code == 409 and NARRATIVE not in response.text
    assert 'violates check constraint "ck_grade"' in caplog.text  # the log does say what happened
    assert NARRATIVE not in caplog.text
