"""C2-6: a bulk push of 10,000 persons answers per record; kill -9 of the service mid-request and a
retry give exactly 10,000 applied, no duplicates.

The service runs as a real uvicorn process (tests/faults' Service) behind the test's TCP proxy; the
moment the push's history rows go out, after all its ledger rows and before COMMIT, it gets SIGKILL.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.catalog.validators import make_id_card
from app.db.engine import libpq_conninfo
from tests.conftest import own_database
from tests.factories import api_key_headers, make_org_unit, make_service_account
from tests.faults.conftest import proxied, target_of
from tests.faults.proxy import CuttableProxy
from tests.faults.test_kill_service import Service
from tests.world import VILLAGE_A

N = 10_000


def _ids() -> list[str]:
    return [
        make_id_card("500118", date(1950, 1, 1) + timedelta(days=i // 400), (i % 400) * 2, "2")
        for i in range(N)
    ]


def _count(url: str, sql: str) -> int:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def push_database(database_url: str):
    with own_database(database_url, "onetable_push_kill") as (url, _cfg):
        yield url


async def _gaj_key(url: str) -> dict[str, str]:
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        unit = await make_org_unit(
            session,
            code="dept:gaj",
            name="区公安局",
            kind="department",
            region_code="500118000000",
            department_code="gaj",
        )
        _, key = await make_service_account(session, unit, name="gaj-system")
        await session.commit()
    await engine.dispose()
    return api_key_headers(key)


async def test_c2_6_ten_thousand_persons_killed_mid_request_then_retried(push_database, settings):
    headers = await _gaj_key(push_database)
    body = [
        {
            "source_event_id": f"HZ-{i:05d}",
            "effective_at": "2024-06-01T08:00:00+08:00",
            "id_number": n,
            "name": f"居民{i}",
            "region_code": VILLAGE_A,
        }
        for i, n in enumerate(_ids())
    ]
    secret = settings.secret_key.get_secret_value()
    proxy = CuttableProxy(*target_of(push_database))
    await proxy.start()
    service = Service(proxied(push_database, proxy.port), secret)
    killed = asyncio.Event()

    def kill_on_history(data: bytes) -> None:
        if b"INSERT INTO ledger_history" in data and not killed.is_set():
            service.kill9()
            killed.set()

    try:
        await service.start()
        proxy.on_client_bytes = kill_on_history
        async with httpx.AsyncClient(base_url=service.base, timeout=300) as c:
            with pytest.raises(httpx.TransportError):
                await c.post("/api/v1/push/person", headers=headers, json=body)
        assert killed.is_set()
        service.proc.wait(30)
        await asyncio.sleep(0.5)  # PostgreSQL sees the hang-up and rolls the transaction back
        assert _count(push_database, "SELECT count(*) FROM lg_person") == 0
        assert _count(push_database, "SELECT count(*) FROM push_event") == 0

        proxy.on_client_bytes = None
        service = Service(proxied(push_database, proxy.port), secret)
        await service.start()
        async with httpx.AsyncClient(base_url=service.base, timeout=300) as c:
            r = await c.post("/api/v1/push/person", headers=headers, json=body)
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["counts"] == {
                "applied": N,
                "unchanged": 0,
                "superseded": 0,
                "already_applied": 0,
                "rejected": 0,
            }
            assert len(out["results"]) == N and len({x["record_id"] for x in out["results"]}) == N
            assert [x["source_event_id"] for x in out["results"][:2]] == ["HZ-00000", "HZ-00001"]
            # The client did not see the first answer: sending everything again changes nothing.
            again = (await c.post("/api/v1/push/person", headers=headers, json=body)).json()
            assert again["counts"]["already_applied"] == N and again["counts"]["applied"] == 0
        assert _count(push_database, "SELECT count(*) FROM lg_person") == N
        assert _count(push_database, "SELECT count(DISTINCT id_number) FROM lg_person") == N
        assert _count(push_database, "SELECT count(*) FROM push_event") == N
        assert _count(push_database, "SELECT count(DISTINCT record_id) FROM ledger_history") == N
    finally:
        service.stop()
        await proxy.stop()
