"""kill -9 of the service in the middle of a dispatch and of an XLSX upload: all or nothing.

The service runs as a real subprocess (uvicorn) and reaches PostgreSQL through the test's proxy
(tests/faults/proxy.py), which watches the SQL the service sends: the moment the statement that
writes the dispatch's rows (or the upload's cells) goes out, before any COMMIT, the service gets
SIGKILL. Afterwards nothing of that request is in the database, and a restarted service does the
same request completely.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
from datetime import date

import httpx
import psycopg
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.db.engine import libpq_conninfo
from app.org.models import OrgUnit, User
from tests.conftest import ROOT
from tests.factories import auth_headers, make_org_unit, make_user
from tests.faults.conftest import proxied, target_of
from tests.faults.proxy import CuttableProxy
from tests.report.test_workflow import fill_sheet
from tests.world import VILLAGE_A, A

PERIOD = "2026-10"
TEMPLATE = {
    "code": "kill_visit",
    "name": "走访登记",
    "kind": "list",
    "ledger": "person",
    "columns": [
        {"kind": "field", "code": "name", "path": "name"},
        {"kind": "gap", "code": "visits", "label": "走访次数", "type": "integer", "min": 0},
    ],
}
PEOPLE = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """`uvicorn app.main:create_app` as a child process on a free port, its database behind the proxy."""

    def __init__(self, database_url: str, secret: str):
        self.database_url, self.secret = database_url, secret
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        env = {
            **os.environ,
            "ONETABLE_DATABASE_URL": self.database_url,
            "ONETABLE_SECRET_KEY": self.secret,
            "ONETABLE_LOG_LEVEL": "WARNING",
        }
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - only spawns; the waiting is polled asynchronously
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        async with httpx.AsyncClient(base_url=self.base) as c:
            for _ in range(600):
                assert self.proc.poll() is None, "the service exited during start-up"
                try:
                    if (await c.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the service did not start")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(30)


async def _accounts(url: str, settings) -> dict[str, dict[str, str]]:
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        unit = (await session.execute(select(OrgUnit).where(OrgUnit.code == A + "000"))).scalar_one_or_none()
        unit = unit or await make_org_unit(
            session, code=A + "000", name="临江镇", kind="township", region_code=A + "000"
        )
        ta = (await session.execute(select(User).where(User.username == "ta"))).scalar_one_or_none()
        ta = ta or await make_user(session, username="ta", org_unit=unit, roles=["township_admin"])
        cl_unit = await make_org_unit(
            session,
            code="dept:kl",
            name="区残联",
            kind="department",
            region_code="500118000000",
            department_code="cl",
        )
        platform = await make_org_unit(
            session, code="platform:k", name="区大数据局", kind="platform", region_code="500118000000"
        )
        cl = await make_user(session, username="kill_cl", org_unit=cl_unit, roles=["dept_admin"])
        admin = await make_user(session, username="kill_admin", org_unit=platform, roles=["platform_admin"])
        session.add(
            Grant(
                grantee_type="org_unit",
                org_unit_id=cl_unit.id,
                ledger="person",
                field="*",
                level="read",
                row_scope="own",
                created_by="test",
            )
        )
        await session.commit()
    await engine.dispose()
    return {
        "township": auth_headers(settings, ta),
        "department": auth_headers(settings, cl),
        "admin": auth_headers(settings, admin),
    }


async def _ok(r: httpx.Response, status: int = 200) -> dict:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def _count(url: str, sql: str, *args) -> int:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        return conn.execute(sql, args).fetchone()[0]


async def test_kill_9_during_dispatch_and_xlsx_upload_leaves_all_or_nothing(
    faults_database, township_headers, settings
):
    del township_headers  # the township account and grants of the module, made there
    secret = settings.secret_key.get_secret_value()
    tokens = await _accounts(faults_database, settings)
    proxy = CuttableProxy(*target_of(faults_database))
    await proxy.start()
    service = Service(proxied(faults_database, proxy.port), secret)
    killed = asyncio.Event()

    def kill_on(marker: bytes):
        def watch(data: bytes) -> None:
            if marker in data and not killed.is_set():
                service.kill9()  # SIGKILL while the statement is on its way, before any COMMIT
                killed.set()

        return watch

    try:
        await service.start()
        async with httpx.AsyncClient(base_url=service.base, timeout=60) as c:
            for i in range(PEOPLE):
                await _ok(
                    await c.post(
                        "/api/v1/ledgers/person/records",
                        headers=tokens["township"],
                        json={
                            "region_code": VILLAGE_A,
                            "name": f"走访{i}",
                            "id_number": make_id_card("500118", date(1960, 1, 1 + i % 28), 100 + i, "1"),
                            "ethnicity": "01",
                        },
                    ),
                    201,
                )
            tid = (
                await _ok(
                    await c.post("/api/v1/report-templates", headers=tokens["department"], json=TEMPLATE), 201
                )
            )["id"]
            if (
                await _ok(
                    await c.post(f"/api/v1/report-templates/{tid}/submit", headers=tokens["department"])
                )
            )["state"] != "approved":
                await _ok(await c.post(f"/api/v1/report-templates/{tid}/approve", headers=tokens["admin"]))

            # 1. Dispatch, killed as its rows are being written.
            proxy.on_client_bytes = kill_on(b"INSERT INTO report_row")
            with pytest.raises(httpx.TransportError):
                await c.post(
                    f"/api/v1/report-templates/{tid}/dispatch",
                    headers=tokens["department"],
                    json={"period": PERIOD},
                )
        assert killed.is_set()
        service.proc.wait(30)
        await asyncio.sleep(0.5)  # the proxy passes the hang-up on; PostgreSQL rolls the transaction back
        of_template = (
            "FROM report_task t JOIN report_template_version v ON v.id = t.version_id "
            "WHERE v.template_id = %s"
        )
        assert _count(faults_database, f"SELECT count(*) {of_template}", tid) == 0
        assert (
            _count(
                faults_database,
                f"SELECT count(*) FROM report_row r WHERE r.task_id IN (SELECT t.id {of_template})",
                tid,
            )
            == 0
        )

        proxy.on_client_bytes = None
        killed.clear()
        service = Service(proxied(faults_database, proxy.port), secret)
        await service.start()
        async with httpx.AsyncClient(base_url=service.base, timeout=60) as c:
            done = await _ok(
                await c.post(
                    f"/api/v1/report-templates/{tid}/dispatch",
                    headers=tokens["department"],
                    json={"period": PERIOD},
                )
            )
            task = next(t["id"] for t in done["tasks"] if t["township_code"] == A + "000")
            rows = _count(faults_database, "SELECT count(*) FROM report_row WHERE task_id = %s", task)
            assert rows >= PEOPLE  # all of them

            # 2. An XLSX upload filling every gap cell, killed as its cells are being written.
            sheet = await c.get(f"/api/v1/report-tasks/{task}/xlsx", headers=tokens["township"])
            assert sheet.status_code == 200
            grid = CalamineWorkbook.from_filelike(io.BytesIO(sheet.content)).get_sheet_by_index(0).to_python()
            head = [str(h) for h in grid[0]]
            visits = next(h for h in head if h.startswith("走访次数"))
            filled = fill_sheet(sheet.content, {str(line[0]): {visits: 3} for line in grid[1:]})
            before = _count(faults_database, "SELECT count(*) FROM report_cell WHERE task_id = %s", task)
            proxy.on_client_bytes = kill_on(b"report_cell")
            with pytest.raises(httpx.TransportError):
                await c.post(
                    f"/api/v1/report-tasks/{task}/xlsx",
                    headers=tokens["township"],
                    files={"file": ("t.xlsx", filled, "application/octet-stream")},
                )
        assert killed.is_set()
        service.proc.wait(30)
        await asyncio.sleep(0.5)
        assert _count(faults_database, "SELECT count(*) FROM report_cell WHERE task_id = %s", task) == before

        proxy.on_client_bytes = None
        service = Service(proxied(faults_database, proxy.port), secret)
        await service.start()
        async with httpx.AsyncClient(base_url=service.base, timeout=60) as c:
            up = await _ok(
                await c.post(
                    f"/api/v1/report-tasks/{task}/xlsx",
                    headers=tokens["township"],
                    files={"file": ("t.xlsx", filled, "application/octet-stream")},
                )
            )
            assert up["saved"] == rows and up["rejected"] == 0
            view = await _ok(await c.get(f"/api/v1/report-tasks/{task}", headers=tokens["township"]))
            assert all(item["cells"]["visits"] == 3 for item in view["items"])
    finally:
        service.stop()
        await proxy.stop()
