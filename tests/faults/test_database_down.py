"""The database goes away and comes back (a real network fault through tests/faults/proxy.py), the pool
runs dry, a statement or a lock wait times out: 503 problem+json with Retry-After and a stable code,
one log line per outage, and the first request after the database is back succeeds (no restart)."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

import psycopg

from app.catalog.validators import make_id_card
from app.db import faults
from app.db.engine import libpq_conninfo
from tests.world import VILLAGE_A

PERSONS = "/api/v1/ledgers/person/records"
GRAPHQL_PAGE = {"query": "{ persons(first: 5) { nodes { id name } pageInfo { endCursor } } }"}


def assert_503(r, code: str, retry_after: str | None = None) -> dict:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 503 and body["code"] == code and body["title"]
    assert (
        r.headers.get("retry-after") == retry_after
        if retry_after
        else r.headers.get("retry-after", "").isdigit()
    )
    return body


async def requests_needing_the_database(client, headers) -> list:
    return [
        await client.get("/api/v1/auth/me", headers=headers),
        await client.get(PERSONS, headers=headers),
        await client.post("/graphql", json=GRAPHQL_PAGE, headers=headers),
        await client.post("/api/v1/auth/token", data={"username": "ta", "password": "wrong"}),
        await client.get("/readyz"),
    ]


def outage_lines(caplog) -> tuple[list, list, list]:
    down = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
    up = [r for r in caplog.records if r.getMessage().startswith("database available again")]
    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    return down, up, tracebacks


async def test_database_down_is_503_with_retry_after_then_heals_on_the_next_request(
    service, township_headers, error_log
):
    async with service(db_retry_after_seconds=7) as svc:
        before = await requests_needing_the_database(svc.client, township_headers)
        assert [r.status_code for r in before] == [200, 200, 200, 401, 200], [r.text for r in before]
        assert "errors" not in before[2].json()

        await svc.proxy.cut()
        for _ in range(3):  # many requests during one outage ...
            for r in await requests_needing_the_database(svc.client, township_headers):
                assert_503(r, "service.database_unavailable", "7")
        assert (await svc.client.get("/healthz")).status_code == 200  # liveness needs no database
        down, up, tracebacks = outage_lines(error_log)
        assert len(down) == 1 and not up and not tracebacks  # ... one log line, no traceback

        await svc.proxy.restore()
        # The first request after the database is back succeeds: stale pooled connections are
        # found by the pre-ping and replaced, no restart of the service.
        after = await requests_needing_the_database(svc.client, township_headers)
        assert [r.status_code for r in after] == [200, 200, 200, 401, 200], [r.text for r in after]
        down, up, tracebacks = outage_lines(error_log)
        assert len(down) == 1 and len(up) == 1 and not tracebacks

        # A second outage is logged again, once.
        await svc.proxy.cut()
        assert_503(await svc.client.get(PERSONS, headers=township_headers), "service.database_unavailable")
        assert_503(await svc.client.get(PERSONS, headers=township_headers), "service.database_unavailable")
        await svc.proxy.restore()
        assert (await svc.client.get(PERSONS, headers=township_headers)).status_code == 200
        down, up, _ = outage_lines(error_log)
        assert len(down) == 2 and len(up) == 2


async def test_an_exhausted_pool_answers_503_busy_instead_of_queueing(service, township_headers, error_log):
    faults.quiet._last.clear()
    async with service(db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.3) as svc:
        assert (await svc.client.get(PERSONS, headers=township_headers)).status_code == 200
        async with svc.app.state.sessionmaker() as holder, svc.app.state.read_engine.connect():
            # The pools' only connections, taken: the session pool's and the single-statement reads'
            # (a cached caller's list is read on the latter, app/db/fast.py).
            await holder.connection()
            for _ in range(3):
                r = await svc.client.get(PERSONS, headers=township_headers)
                assert_503(r, "service.busy", "2")
            r = await svc.client.post("/graphql", json=GRAPHQL_PAGE, headers=township_headers)
            assert_503(r, "service.busy")
        # An overloaded service logs its 503s at most one line per kind every few seconds.
        busy = [r for r in error_log.records if r.getMessage().startswith("no database connection free")]
        assert len(busy) == 1
        # Given back: served again.
        assert (await svc.client.get(PERSONS, headers=township_headers)).status_code == 200


async def _locked(database_url: str, record_id: int):
    """Another transaction holding the record's row lock until the returned connection is closed."""
    conn = await psycopg.AsyncConnection.connect(libpq_conninfo(database_url))
    await conn.execute("SELECT 1 FROM lg_person WHERE id = %s FOR UPDATE", (record_id,))
    return conn


async def test_lock_and_statement_timeouts_are_503_with_their_codes(
    service, township_headers, faults_database
):
    body = {
        "region_code": VILLAGE_A,
        "name": "王锁",
        "id_number": make_id_card("500118", date(1980, 5, 17), 41, "2"),
        "ethnicity": "01",
    }
    async with service(lock_timeout_ms=200) as svc:
        r = await svc.client.post(PERSONS, json=body, headers=township_headers)
        assert r.status_code == 201, r.text
        url = f"{PERSONS}/{r.json()['id']}"
        holder = await _locked(faults_database, r.json()["id"])
        try:
            r = await svc.client.patch(
                url, json={"name": "王等"}, headers={**township_headers, "If-Match": 'W/"1"'}
            )
            assert_503(r, "service.lock_timeout")
        finally:
            await holder.close()
        # Nothing half-written: the record is as it was, and the same edit now goes through.
        assert (await svc.client.get(url, headers=township_headers)).json()["name"] == "王锁"
        r = await svc.client.patch(
            url, json={"name": "王等"}, headers={**township_headers, "If-Match": 'W/"1"'}
        )
        assert r.status_code == 200, r.text

    async with service(lock_timeout_ms=0, statement_timeout_ms=1500) as svc:
        holder = await _locked(faults_database, r.json()["id"])
        try:
            r = await svc.client.patch(
                url, json={"name": "王超"}, headers={**township_headers, "If-Match": 'W/"2"'}
            )
            assert_503(r, "service.statement_timeout")
        finally:
            await holder.close()
        assert (await svc.client.get(url, headers=township_headers)).json()["name"] == "王等"


async def test_settings_reach_every_connection(service):
    async with service(
        statement_timeout_ms=12_000,
        lock_timeout_ms=3_000,
        idle_in_transaction_timeout_ms=45_000,
        db_pool_size=3,
        db_max_overflow=2,
    ) as svc:
        maker = svc.app.state.sessionmaker
        async with maker() as session:
            conn = await session.connection()
            shown = [
                (await conn.exec_driver_sql(f"SHOW {name}")).scalar()
                for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
            ]
            pool = conn.engine.pool
        assert shown == ["12s", "3s", "45s"]
        assert (pool.size(), pool._max_overflow) == (3, 2)


async def test_connection_lost_inside_a_graphql_field_is_a_503_for_the_whole_response(
    service, township_headers, error_log
):
    async with service() as svc:
        cut: list[asyncio.Task] = []

        def cut_on_ledger_statement(data: bytes) -> None:
            if b"lg_person" in data and not cut:
                cut.append(asyncio.get_running_loop().create_task(svc.proxy.cut()))

        svc.proxy.on_client_bytes = cut_on_ledger_statement
        r = await svc.client.post("/graphql", json=GRAPHQL_PAGE, headers=township_headers)
        assert cut, "the ledger statement never went out"
        await cut[0]
        body = assert_503(r, "service.database_unavailable")
        assert "data" not in body and "errors" not in body  # not a 200 with a field error
        assert not [rec for rec in error_log.records if rec.exc_info and rec.levelno >= logging.ERROR]
        svc.proxy.on_client_bytes = None
        await svc.proxy.restore()
        r = await svc.client.post("/graphql", json=GRAPHQL_PAGE, headers=township_headers)
        assert r.status_code == 200 and "errors" not in r.json(), r.text
