"""Schemathesis over schemas/openapi.json against the real app: zero 5xx, zero undocumented status codes
or media types, zero response-schema violations — as a platform admin and as a township.

The app runs under uvicorn on a random port of this test's event loop, with its own engine on a
database of its own (requests commit; the shared test database stays clean). `st run` is the
schemathesis command line, as a developer would run it (`make fuzz` runs the long profile).
Quick profile: a fixed seed and a few examples per operation; ONETABLE_TEST_PROFILE=long: more
examples, random seed. Every operation of the document is run except the three that end the
run's own session (logout, password change, deactivation; see SESSION_ENDING).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.access.models import Grant
from app.config import Settings
from app.main import create_app
from tests.conftest import ROOT, _drop, _recreate
from tests.factories import auth_headers, make_org_unit, make_user
from tests.profile import LONG, examples
from tests.world import A

ST = Path(sys.executable).with_name("st")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def fuzz_database(database_url: str):
    url = make_url(database_url)
    fuzz = url.set(database=f"{url.database}_fuzz").render_as_string(hide_password=False)
    _recreate(fuzz)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = fuzz
    command.upgrade(cfg, "head")
    yield fuzz
    _drop(fuzz)


async def _seed(url: str, settings: Settings) -> dict[str, dict[str, str]]:
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        township = await make_org_unit(session, code=A + "000", name="临江镇", kind="township",
                                       region_code=A + "000")
        platform = await make_org_unit(session, code="platform", name="区大数据局", kind="platform",
                                       region_code="500118000000")
        admin = await make_user(session, username="admin", org_unit=platform, roles=["platform_admin"])
        town = await make_user(session, username="ta", org_unit=township, roles=["township_admin"])
        session.add(Grant(grantee_type="role", role="township_admin", ledger="*", field="*", level="write",
                          row_scope="own", created_by="test"))
        await session.commit()
    await engine.dispose()
    return {"admin": auth_headers(settings, admin), "township": auth_headers(settings, town)}


SESSION_ENDING = r"^/api/v1/(auth/logout|auth/password|users/\{user_id\}/deactivate)$"


async def _st(base_url: str, headers: dict[str, str], cwd: Path) -> tuple[int, str]:
    args = [str(ST), "run", str(ROOT / "schemas" / "openapi.json"), "--url", base_url,
            "--checks", CHECKS, "--phases", "examples,fuzzing", "--continue-on-failure",
            "--max-examples", str(examples(10, 100)), "--workers", "2", "--request-timeout", "30",
            "--generation-allow-x00", "true", "--suppress-health-check", "all",
            *(["--seed", "20261129"] if not LONG else []),
            # Operations that end the run's own session (logout revokes the token, a password change or
            # deactivation revokes every token of the user) would turn the rest of the run into 401s.
            # They are tested case by case in tests/auth/test_login_security.py.
            "--exclude-path-regex", SESSION_ENDING]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, cwd=cwd,
                                                env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
    out, _ = await proc.communicate()
    return proc.returncode, out.decode("utf-8", "replace")


def _figures(report: str) -> str:
    tested = re.search(r"Tested: (\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    return f"operations {tested and tested.group(1)}, examples {generated and generated.group(1)}"


async def test_schemathesis_no_server_errors_or_schema_violations(fuzz_database, settings, tmp_path):
    fuzz_settings = Settings(database_url=fuzz_database, secret_key=settings.secret_key)
    tokens = await _seed(fuzz_database, fuzz_settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(fuzz_settings), log_level="warning", access_log=False,
                                           lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not serving.done(), "the server did not start"
            await asyncio.sleep(0.05)
        reports = {who: await _st(f"http://127.0.0.1:{port}", headers, tmp_path)
                   for who, headers in tokens.items()}
    finally:
        server.should_exit = True
        await serving
        sock.close()
    for who, (code, report) in reports.items():
        print(f"schemathesis as {who}: {_figures(report)}")
        assert code == 0, f"schemathesis as {who} found failures:\n{report[-20000:]}"
        assert "ST101" not in report  # server errors
