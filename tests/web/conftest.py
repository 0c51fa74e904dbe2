"""The real service for browser tests: its own committed database (the suite's others roll back, a
browser can't join them), uvicorn in a subprocess on a free port serving web/dist, Debian's chromium.

Seeded through the API as people would: two townships' persons, a department's template with three
gap columns, admission, dispatch. Chromium missing is the only reason to skip (CI installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.db.engine import libpq_conninfo
from app.org.models import OrgUnit, Region
from tests.factories import PASSWORD, make_org_unit, make_user
from tests.world import A, B, VILLAGE_A, VILLAGE_B

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
SECRET = "browser-test-secret-key-at-least-32-bytes!!"
CHROMIUM = os.environ.get("ONETABLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
ROWS_A = 20  # C6-2: 20 rows x 3 gap columns
C, VILLAGE_C = "500118103", "500118103201"
ROWS_C = 2000  # the first-load figure: a task grid of 2,000 rows

VISIT = {
    "code": "visit_ui", "name": "残疾人走访月报", "kind": "list", "ledger": "person",
    "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
    "instructions": "核对预填信息，填写本月走访情况。",
    "columns": [
        {"kind": "field", "code": "name", "path": "name"},
        {"kind": "field", "code": "id_number", "path": "id_number"},
        {"kind": "field", "code": "phone", "path": "phone"},
        {"kind": "gap", "code": "visited", "label": "本月是否走访", "type": "boolean", "required": True},
        {"kind": "gap", "code": "visits", "label": "走访次数", "type": "integer", "min": 0, "max": 31},
        {"kind": "gap", "code": "note", "label": "走访情况", "type": "text", "max_length": 100},
    ],
}


@dataclass
class Live:
    url: str
    template_id: int
    db: str
    tasks: dict[str, int] = field(default_factory=dict)  # township code -> task id
    screenshots: Path | None = None

    def api(self, username: str) -> httpx.Client:
        r = httpx.post(f"{self.url}/api/v1/auth/token", json={"username": username, "password": PASSWORD}, timeout=60)
        r.raise_for_status()
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {r.json()['access_token']}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_built() -> None:
    if (DIST / "index.html").is_file():
        return
    subprocess.run([str(ROOT / "scripts" / "build-web.sh")], cwd=ROOT, check=True,
                   env={**os.environ, "VENV": str(Path(sys.prefix))})


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        pytest.skip(f"chromium not installed at {CHROMIUM} (apt-get install -y chromium); .ci/run installs it")
    return CHROMIUM


async def _seed_accounts(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as s:
            for code, name, level, parent in [("500118000000", "永川区", 3, None), (A + "000", "临江镇", 4, "500118000000"),
                                              (B + "000", "何埂镇", 4, "500118000000"), (VILLAGE_A, "临江村", 5, A + "000"),
                                              (VILLAGE_B, "何埂村", 5, B + "000"),
                                              (C + "000", "双石镇", 4, "500118000000"), (VILLAGE_C, "双石村", 5, C + "000")]:
                s.add(Region(code=code, name=name, level=level, parent_code=parent))
            a = await make_org_unit(s, code=A + "000", name="临江镇", kind="township", region_code=A + "000")
            b = await make_org_unit(s, code=B + "000", name="何埂镇", kind="township", region_code=B + "000")
            c = await make_org_unit(s, code=C + "000", name="双石镇", kind="township", region_code=C + "000")
            cl = await make_org_unit(s, code="dept:cl", name="区残联", kind="department",
                                     region_code="500118000000", department_code="cl")
            platform = await make_org_unit(s, code="platform", name="区大数据局", kind="platform",
                                           region_code="500118000000")
            await make_user(s, username="ta", org_unit=a, roles=["township_admin"], display_name="临江镇数据员")
            await make_user(s, username="tb", org_unit=b, roles=["township_admin"], display_name="何埂镇数据员")
            await make_user(s, username="tc", org_unit=c, roles=["township_admin"], display_name="双石镇数据员")
            await make_user(s, username="cl", org_unit=cl, roles=["dept_admin"], display_name="残联审核员")
            await make_user(s, username="admin", org_unit=platform, roles=["platform_admin"])
            s.add(Grant(grantee_type="role", role="township_admin", ledger="*", field="*", level="write",
                        row_scope="own", created_by="test"))
            unit = (await s.scalars(select(OrgUnit).where(OrgUnit.code == "dept:cl"))).one()
            s.add(Grant(grantee_type="org_unit", org_unit_id=unit.id, ledger="person", field="*", level="read",
                        row_scope="own", created_by="test"))
            await s.commit()
    finally:
        await engine.dispose()


def _seed_through_api(live: Live) -> None:
    surnames = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张"
    with live.api("ta") as ta, live.api("tb") as tb:
        for i, (client, village) in enumerate([(ta, VILLAGE_A)] * ROWS_A + [(tb, VILLAGE_B)] * 2, start=1):
            number = make_id_card("500118", date(1950 + i, 1 + i % 12, 1 + i % 28), i * 3, "1" if i % 2 else "2")
            r = client.post("/api/v1/ledgers/person/records", json={
                "region_code": village, "name": f"{surnames[i - 1]}{'明华强丽军芳'[i % 6]}", "id_number": number,
                "ethnicity": "01", "is_disabled": True, "phone": f"1380000{i:04d}"})
            assert r.status_code == 201, r.text
    _many_persons(live, ROWS_C)
    with live.api("cl") as cl, live.api("admin") as admin:
        r = cl.post("/api/v1/report-templates", json=VISIT)
        assert r.status_code == 201, r.text
        live.template_id = tid = r.json()["id"]
        assert cl.post(f"/api/v1/report-templates/{tid}/submit").status_code == 200
        assert admin.post(f"/api/v1/report-templates/{tid}/approve").status_code == 200
        r = cl.post(f"/api/v1/report-templates/{tid}/dispatch", json={"period": "2026-11", "deadline": "2026-12-10"})
        assert r.status_code == 200, r.text
        live.tasks = {t["township_code"]: t["id"] for t in r.json()["tasks"]}


def _many_persons(live: Live, n: int) -> None:
    """Township C: one person through the API, n - 1 copies of its row in SQL (distinct ID numbers):
    only the size of the grid matters there, and 2,000 API calls would be most of the test's time."""
    with live.api("tc") as tc:
        r = tc.post("/api/v1/ledgers/person/records", json={
            "region_code": VILLAGE_C, "name": "陈一", "id_number": make_id_card("500118", date(1960, 5, 5), 11, "1"),
            "ethnicity": "01", "is_disabled": True, "phone": "13900000000"})
        assert r.status_code == 201, r.text
        first = r.json()["id"]
    with psycopg.connect(libpq_conninfo(live.db), autocommit=True) as conn:
        cols = [c for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'lg_person' "
            "AND column_name NOT IN ('id', 'id_number', 'name') AND is_generated = 'NEVER' "
            "AND identity_generation IS NULL")]
        listed = ", ".join(f'"{c}"' for c in cols)
        conn.execute(
            f"INSERT INTO lg_person (id_number, name, {listed}) "
            f"SELECT 'T' || lpad(g::text, 17, '0'), '测试' || g, {listed} FROM lg_person, generate_series(2, %s) g "
            f"WHERE id = %s", (n, first))


@pytest.fixture(scope="module")
def live(database_url: str, chromium_path: str) -> Iterator[Live]:
    _ensure_built()
    base = make_url(database_url)
    url = base.set(database=f"{base.database}_ui")
    from tests.conftest import _drop, _recreate

    rendered = url.render_as_string(hide_password=False)
    _recreate(rendered)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = rendered
    command.upgrade(cfg, "head")
    # In a thread of its own: sync Playwright may already run an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _seed_accounts(rendered)).result()

    port = _free_port()
    env = {**os.environ, "ONETABLE_DATABASE_URL": rendered, "ONETABLE_SECRET_KEY": SECRET,
           "ONETABLE_WEB_DIR": str(DIST), "ONETABLE_LOG_LEVEL": "WARNING"}
    env.pop("ONETABLE_DEMO", None)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        live_ = Live(url=f"http://127.0.0.1:{port}", template_id=0, db=rendered)
        for _ in range(240):
            try:
                if httpx.get(f"{live_.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with {proc.returncode}")
            time.sleep(0.5)
        else:
            raise RuntimeError("the service did not answer /healthz within 120 s")
        _seed_through_api(live_)
        shots = os.environ.get("ONETABLE_SCREENSHOTS")
        live_.screenshots = Path(shots) if shots else None
        yield live_
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if make_url(rendered).database.startswith("onetable_test_"):
            _drop(rendered)


@pytest.fixture(scope="module")
def browser(chromium_path: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        yield b
        b.close()
