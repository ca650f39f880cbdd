"""The behaviour behind the speed work: each patient's last recorded day kept by the database on
every write, pages and reads in a fixed number of statements, cached token lookups whose
revocation still takes effect, the swimmer plot drawn a page at a time, and the workers for
heavy requests refusing with 503 rather than queueing without end."""

import math
import os
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.analytics.queries import _rows
from service.app import create_app
from service.common.heavy import HeavyWork
from service.db.models import ApiToken, Outcome, Patient, utcnow
from service.errors import Busy
from service.settings import Settings
from tests import factories as f
from tests.databases import issue_token
from tests.integration.test_query_counts import counted

API = "/api/v1"


def last_day(client: TestClient[Any], patient_id: str) -> int | None:
    async def read() -> int | None:
        async with client.app.state.session_factory() as session:
            return await session.scalar(
                select(Patient.last_recorded_day).where(Patient.id == uuid.UUID(patient_id))
            )

    return client.blocking_portal.call(read)  # type: ignore[no-any-return]


def os_end_day(client: TestClient[Any], study_id: str) -> int:
    body = client.get(f"{API}/studies/{study_id}/time-to-event", params={"endpoint": "OS"}).json()
    return int(body["rows"][0]["end_day"])


def test_last_recorded_day_follows_every_write(client: TestClient[Any]) -> None:
    study = f.study(client)
    patient = f.patient(client, study["id"])
    pid = patient["id"]
    assert last_day(client, pid) is None

    treatment = f.treatment(client, pid, start_day=1, end_day=28)
    assert last_day(client, pid) == 28
    event = f.adverse_event(client, pid, onset_day=30, resolution_day=45)
    assert last_day(client, pid) == 45
    undated = f.response(client, pid, study_day=None, category="CR", timing_text="after cycle 2")
    assert last_day(client, pid) == 45  # a record without a day changes nothing
    later = f.response(client, pid, study_day=60)
    assert last_day(client, pid) == 60
    assert os_end_day(client, study["id"]) == 60  # OS censors there

    # An update or a delete of the latest record recomputes from the others.
    assert client.patch(f"{API}/outcomes/{later['id']}", json={"study_day": 20}).status_code == 200
    assert last_day(client, pid) == 45
    assert (
        client.patch(f"{API}/adverse-events/{event['id']}", json={"resolution_day": None}).status_code == 200
    )
    assert last_day(client, pid) == 30
    assert client.delete(f"{API}/adverse-events/{event['id']}").status_code == 204
    assert last_day(client, pid) == 28
    assert client.delete(f"{API}/treatments/{treatment['id']}").status_code == 204
    assert last_day(client, pid) == 20
    assert os_end_day(client, study["id"]) == 20
    assert client.delete(f"{API}/outcomes/{later['id']}").status_code == 204
    assert last_day(client, pid) is None
    assert client.delete(f"{API}/outcomes/{undated['id']}").status_code == 204

    # Days before day 1 count too, and the records of one patient never move another's.
    other = f.patient(client, study["id"], subject_code="P2")
    f.treatment(client, other["id"], start_day=-7, end_day=-2)
    assert last_day(client, other["id"]) == -2
    assert last_day(client, pid) is None
    assert client.delete(f"{API}/patients/{other['id']}", params={"cascade": "true"}).status_code == 204


def test_reads_and_pages_take_a_fixed_small_number_of_statements(client: TestClient[Any]) -> None:
    study = f.study(client)
    patients = [f.patient(client, study["id"], subject_code=f"P{i}") for i in range(3)]

    def queries(path: str) -> int:
        client.get(path)  # the token lookup is cached: count the request alone
        with counted(client) as statements:
            assert client.get(path).status_code == 200
        return len([s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))])

    assert queries(f"{API}/patients/{patients[0]['id']}") == 1
    assert queries(f"{API}/patients?study_id={study['id']}&limit=2") == 1
    # A page past the end still reports the total (a second statement only then).
    assert queries(f"{API}/patients?study_id={study['id']}&limit=2&offset=10") == 2
    page = client.get(f"{API}/patients", params={"study_id": study["id"], "limit": 2, "offset": 10}).json()
    assert page["items"] == [] and page["total"] == 3
    page = client.get(f"{API}/patients", params={"study_id": study["id"], "limit": 2, "offset": 2}).json()
    assert [p["id"] for p in page["items"]] == [patients[2]["id"]] and page["total"] == 3


def test_a_warm_write_compiles_no_statement(client: TestClient[Any]) -> None:
    """Every statement of a create, an update and a delete, with an Idempotency-Key and the audit
    record, comes from SQLAlchemy's compiled cache once warm: a construct without a cache key
    (the ON CONFLICT of the key's claim was one) is compiled again on every request."""
    study = f.study(client)
    patients = [f.patient(client, study["id"], subject_code=f"P{i}") for i in range(3)]
    engine = client.app.state.engine.sync_engine
    compiled: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        hit = getattr(context, "cache_hit", None)
        if hit in (engine.dialect.CACHE_MISS, engine.dialect.NO_CACHE_KEY):
            compiled.append(statement)

    def writes(patient_id: str) -> None:
        body = {"patient_id": patient_id, "term": "Nausea", "grade": 2, "grading_system": "CTCAE_v5"}
        made = client.post(f"{API}/adverse-events", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        assert made.status_code == 201, made.text
        changed = client.patch(f"{API}/adverse-events/{made.json()['id']}", json={"grade": 3})
        assert changed.status_code == 200, changed.text
        assert client.delete(f"{API}/adverse-events/{made.json()['id']}").status_code == 204

    writes(patients[0]["id"])  # warm
    event.listen(engine, "before_cursor_execute", record)
    try:
        writes(patients[1]["id"])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert compiled == []


@pytest.fixture
def cached_app(database_url: str, client: TestClient[Any]) -> Iterator[tuple[TestClient[Any], str, str]]:
    """An app whose token lookups are trusted for a minute, with a reader token of its own."""
    name = f"cache-{uuid.uuid4().hex[:8]}"
    secret = issue_token(database_url, name, "reader")
    app = create_app(Settings(database_url=database_url, rate_limit_per_minute=0, token_cache_seconds=60))
    with TestClient(app) as own:
        yield own, secret, name


def _revoke_elsewhere(client: TestClient[Any], name: str) -> None:
    """Revoke as another process would: straight in the database, not through this app."""

    async def revoke() -> None:
        async with client.app.state.session_factory() as session, session.begin():
            await session.execute(update(ApiToken).where(ApiToken.name == name).values(revoked_at=utcnow()))

    client.blocking_portal.call(revoke)


def test_a_cached_token_stays_valid_until_its_lookup_expires(
    cached_app: tuple[TestClient[Any], str, str],
) -> None:
    own, secret, name = cached_app
    headers = {"Authorization": f"Bearer {secret}"}
    assert own.get(f"{API}/studies", headers=headers).status_code == 200
    _revoke_elsewhere(own, name)
    # Within TOKEN_CACHE_SECONDS this process has not re-read the token...
    assert own.get(f"{API}/studies", headers=headers).status_code == 200
    # ...and once the entry is gone (as when it expires) the revocation applies.
    own.app.state.token_cache.clear()
    refused = own.get(f"{API}/studies", headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_without_a_cache_a_revocation_elsewhere_applies_at_once(
    database_url: str, client: TestClient[Any]
) -> None:
    name = f"nocache-{uuid.uuid4().hex[:8]}"
    secret = issue_token(database_url, name, "reader")
    app = create_app(Settings(database_url=database_url, rate_limit_per_minute=0, token_cache_seconds=0))
    with TestClient(app) as own:
        headers = {"Authorization": f"Bearer {secret}"}
        assert own.get(f"{API}/studies", headers=headers).status_code == 200
        _revoke_elsewhere(own, name)
        assert own.get(f"{API}/studies", headers=headers).status_code == 401


def test_revoking_through_the_api_applies_at_once_despite_the_cache(
    database_url: str, cached_app: tuple[TestClient[Any], str, str]
) -> None:
    own, secret, _ = cached_app
    admin = issue_token(database_url, f"admin-{uuid.uuid4().hex[:8]}", "admin")
    headers = {"Authorization": f"Bearer {secret}"}
    assert own.get(f"{API}/studies", headers=headers).status_code == 200
    tokens = own.get(
        f"{API}/tokens", params={"limit": 500}, headers={"Authorization": f"Bearer {admin}"}
    ).json()["items"]
    reader = next(t for t in tokens if t["name"] == cached_app[2])
    assert (
        own.delete(f"{API}/tokens/{reader['id']}", headers={"Authorization": f"Bearer {admin}"}).status_code
        == 204
    )
    assert own.get(f"{API}/studies", headers=headers).status_code == 401


def test_swimmer_plot_is_drawn_a_page_of_patients_at_a_time(client: TestClient[Any]) -> None:
    study = f.study(client)
    for i in range(3):
        patient = f.patient(client, study["id"], subject_code=f"S{i}")
        f.treatment(client, patient["id"], start_day=1, end_day=28)
        f.response(client, patient["id"], study_day=28)
    first = client.get(f"{API}/studies/{study['id']}/swimmer-plot", params={"limit": 2})
    assert first.status_code == 200 and first.headers["content-type"].startswith("image/svg+xml")
    assert "patients 1–2 of 3" in first.text and "S0" in first.text and "S2" not in first.text
    assert 'rel="next"' in first.headers["link"] and "offset=2" in first.headers["link"]
    last = client.get(f"{API}/studies/{study['id']}/swimmer-plot", params={"limit": 2, "offset": 2})
    assert "patients 3–3 of 3" in last.text and "S2" in last.text and "link" not in last.headers
    whole = client.get(f"{API}/studies/{study['id']}/swimmer-plot")
    assert "of 3" not in whole.text and all(f"S{i}" in whole.text for i in range(3))
    too_many = client.get(f"{API}/studies/{study['id']}/swimmer-plot", params={"limit": 201})
    assert too_many.status_code == 400 and "limit" in too_many.text


def test_heavy_work_runs_in_another_process_at_lower_priority_and_refuses_when_busy() -> None:
    workers = HeavyWork(workers=1, wait=0.05)
    outcome: list[Any] = []

    async def main() -> None:
        outcome.append(await workers.run(os.getpid) != os.getpid())
        # ...at a lower priority than the server's (os.nice(0) reads the niceness).
        outcome.append(await workers.run(os.nice, 0) == min(os.nice(0) + 10, 19))
        # ...and on Linux in the idle scheduling class (CPU only when the server leaves it).
        outcome.append(await workers.run(os.sched_getscheduler, 0) == os.SCHED_IDLE)
        outcome.append(await workers.run(int, "ff", base=16))  # keyword arguments reach it
        other_request = object()
        await workers.limiter.acquire_on_behalf_of(other_request)  # the only worker is taken
        try:
            with pytest.raises(Busy) as refused:
                await workers.run(os.getpid)
            outcome.append(refused.value.headers)
        finally:
            workers.limiter.release_on_behalf_of(other_request)
        outcome.append(await workers.run(math.factorial, 5))

    try:
        anyio.run(main)
    finally:
        workers.shutdown()
    assert outcome == [True, True, True, 255, {"Retry-After": "5"}, 120]


def test_a_worker_freezes_its_objects_after_a_call_that_imported_modules() -> None:
    """So that the collector's full passes skip the libraries a worker has imported (an
    estimate then takes its own time, not a pass over scipy's objects now and then)."""
    import gc

    workers = HeavyWork(workers=1, wait=5.0)
    counts: list[int] = []

    async def main() -> None:
        await workers.run(os.getpid)  # the worker's first call: what it imported at start
        counts.append(await workers.run(gc.get_freeze_count))
        counts.append(await workers.run(gc.get_freeze_count))  # nothing imported since
        await workers.run(exec, "import wave")  # a module no worker had
        counts.append(await workers.run(gc.get_freeze_count))

    try:
        anyio.run(main)
    finally:
        workers.shutdown()
    first, unchanged, after_import = counts
    assert 0 < first == unchanged < after_import


def test_an_app_rebuilt_in_the_same_process_keeps_the_worker_processes() -> None:
    first, second, third = HeavyWork(2, 1.0), HeavyWork(2, 1.0), HeavyWork(3, 1.0)
    try:
        pool = first._executor()
        second.adopt(first)
        assert second._executor() is pool and first._pool is None
        third.adopt(second)  # a different number of processes: its own pool
        assert third._executor() is not pool
    finally:
        for workers in (first, second, third):
            workers.shutdown()


def test_workers_end_when_their_server_process_is_killed(tmp_path: Any) -> None:
    """A server killed without its shutdown leaves no worker behind (each holds its memory)."""
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import anyio, os, sys, time\n"
        "from service.common.heavy import HeavyWork\n"
        "workers = HeavyWork(1, 5.0)\n"
        "print(anyio.run(workers.run, os.getpid), flush=True)\n"
        "time.sleep(600)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as server:  # noqa: S603
        try:
            assert server.stdout is not None
            worker = int(server.stdout.readline())
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            # the worker notices within a second or so; a minute is room for a loaded machine
            for _ in range(600):
                try:
                    os.kill(worker, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(worker, signal.SIGKILL)
                raise AssertionError("the worker outlived its server")
        finally:
            server.kill()


def test_analysis_statements_are_planned_for_their_values_until_the_transaction_ends(
    client: TestClient[Any], backend: str
) -> None:
    """Postgres: an analysis's statements are planned for the study they are given, not by a
    generic plan made for an average study (service.analytics.queries._planned_per_study), and
    the setting ends with the analysis's transaction: the connection goes back to the pool, where
    a patient read's prepared statement keeps its cached plan."""
    if backend != "postgres":
        pytest.skip("SQLite plans every statement as it runs")
    mode = select(func.current_setting("plan_cache_mode").label("mode"))

    async def settings_seen() -> tuple[list[str], str, str]:
        engine = client.app.state.engine
        async with engine.connect() as connection:
            before = await connection.scalar(mode)
            await connection.commit()
            seen: list[str] = []
            async with AsyncSession(bind=connection) as session, session.begin():
                for _ in range(2):  # set once per transaction, seen by each statement
                    seen.extend(row.mode for row in await _rows(session, mode))
            after = await connection.scalar(mode)
            await connection.rollback()
        return seen, before, after

    seen, before, after = client.blocking_portal.call(settings_seen)
    assert seen == ["force_custom_plan", "force_custom_plan"]
    assert before == after == "auto"


def test_counts_fetched_in_one_go_are_the_rows_read_in_batches(client: TestClient[Any]) -> None:
    """`_rows(..., counted=True)` (one fetch, which Postgres may run in parallel) answers the same
    rows, in the same form, as the batched read: named tuples of plain values, a JSON list as a
    tuple, nothing for a statement that matches nothing."""
    study = f.study(client)
    for i, category in enumerate(["CR", "CR", "PR"]):
        pid = f.patient(client, study["id"], subject_code=f"P{i}")["id"]
        f.response(client, pid, study_day=30 + i, category=category)
    f.response(
        client, pid, study_day=None, category=None, possible_categories=["CR", "CRi"], timing_text="later"
    )
    uid = uuid.UUID(study["id"])
    statements = {
        "counts": select(Outcome.category, func.count().label("n"))
        .join(Patient, Patient.id == Outcome.patient_id)
        .where(Patient.study_id == uid)
        .group_by(Outcome.category)
        .order_by(Outcome.category),
        "lists": select(Outcome.possible_categories, Outcome.study_day)
        .join(Patient, Patient.id == Outcome.patient_id)
        .where(Patient.study_id == uid)
        .order_by(Outcome.id),
        "nothing": select(Outcome.category, func.count().label("n"))
        .where(Outcome.patient_id == uuid.uuid4())
        .group_by(Outcome.category),
    }

    async def both_ways() -> dict[str, tuple[Any, Any]]:
        read = {}
        for name, statement in statements.items():
            async with client.app.state.session_factory() as session, session.begin():
                read[name] = (await _rows(session, statement), await _rows(session, statement, counted=True))
        return read

    read = client.blocking_portal.call(both_ways)
    for name, (batched, whole) in read.items():
        assert list(whole) == list(batched), name
        assert type(whole) is type(batched), name
        assert [type(row) for row in whole] == [type(row) for row in batched], name
    assert sorted((row.category or "", row.n) for row in read["counts"][1]) == [("", 1), ("CR", 2), ("PR", 1)]
    assert [row.possible_categories for row in read["lists"][1]][-1] == ("CR", "CRi")
    assert list(read["nothing"][1]) == []
