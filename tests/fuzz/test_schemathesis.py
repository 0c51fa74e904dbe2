"""Schemathesis over schemas/openapi.json against the real app: zero 5xx, zero undocumented status codes
or media types, zero response-schema violations — as a platform admin, a township and a department.

The app runs under uvicorn on a random port of this test's event loop, with its own engine on a
database of its own (requests commit; the shared test database stays clean). `st run` is the
schemathesis command line, as a developer would run it (`make fuzz` runs the long profile).
Quick profile: a fixed seed and a few examples per operation; ONETABLE_TEST_PROFILE=long: more
examples, random seed. Every operation of the document is run except the three that end the
run's own session (logout, password change, deactivation; see SESSION_ENDING).

The database starts with a small report situation made through the API (`_seed_reports`): persons
and disability records in two townships, three templates of 区残联 approved, their tasks dispatched,
one submitted. A schemathesis.toml (`_config`) hands the fuzzer those template and task ids, row
keys, column codes and the period in three cases of four, so the report operations run their real
paths (found, wrong state, not yours, bad cell) as well as the not-found ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.config import Settings
from app.main import create_app
from app.org.models import Region
from tests.conftest import ROOT, _drop, _recreate
from tests.factories import auth_headers, make_org_unit, make_user
from tests.profile import LONG, examples
from tests.world import VILLAGE_A, VILLAGE_B, A, B

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
    """Accounts straight into the database (as tests/world.py does); everything else goes over HTTP."""
    engine = create_async_engine(url)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        for code, name, level, parent in REGIONS:
            session.add(Region(code=code, name=name, level=level, parent_code=parent))
        await session.flush()
        units = {
            "a": await make_org_unit(
                session, code=A + "000", name="临江镇", kind="township", region_code=A + "000"
            ),
            "b": await make_org_unit(
                session, code=B + "000", name="何埂镇", kind="township", region_code=B + "000"
            ),
            "cl": await make_org_unit(
                session,
                code="dept:cl",
                name="区残联",
                kind="department",
                region_code="500118000000",
                department_code="cl",
            ),
            "platform": await make_org_unit(
                session, code="platform", name="区大数据局", kind="platform", region_code="500118000000"
            ),
        }
        users = {
            "admin": await make_user(
                session, username="admin", org_unit=units["platform"], roles=["platform_admin"]
            ),
            "township": await make_user(
                session, username="ta", org_unit=units["a"], roles=["township_admin"]
            ),
            "department": await make_user(session, username="cl", org_unit=units["cl"], roles=["dept_admin"]),
            "township_b": await make_user(
                session, username="tb", org_unit=units["b"], roles=["township_admin"]
            ),
        }
        session.add(
            Grant(
                grantee_type="role",
                role="township_admin",
                ledger="*",
                field="*",
                level="write",
                row_scope="own",
                created_by="test",
            )
        )
        # 残联 reads persons, houses and the disability ledger in plain, district-wide (tests/report/conftest.py).
        for ledger in ("person", "disability", "house"):
            session.add(
                Grant(
                    grantee_type="org_unit",
                    org_unit_id=units["cl"].id,
                    ledger=ledger,
                    field="*",
                    level="read",
                    row_scope="own",
                    created_by="test",
                )
            )
        await session.commit()
    await engine.dispose()
    return {who: auth_headers(settings, user) for who, user in users.items()}


VILLAGE_A2 = A + "202"  # as in tests/report/conftest.py
REGIONS = [
    ("500118000000", "永川区", 3, None),
    (A + "000", "临江镇", 4, "500118000000"),
    (B + "000", "何埂镇", 4, "500118000000"),
    (VILLAGE_A, "临江村", 5, A + "000"),
    (VILLAGE_A2, "新华村", 5, A + "000"),
    (VILLAGE_B, "何埂村", 5, B + "000"),
]
# (township caller, village, disabled): three disabled persons and one not in A, one disabled in B.
PEOPLE = [
    ("township", VILLAGE_A, True),
    ("township", VILLAGE_A, False),
    ("township", VILLAGE_A2, True),
    ("township", VILLAGE_A2, True),
    ("township_b", VILLAGE_B, True),
]
PERIOD = "2026-11"
# A list template with gaps (one written back), an aggregate by village with a gap column, and a
# pull-only aggregate by code value (approved on submission, read live: never dispatched).
TEMPLATES = {
    "list": {
        "code": "fuzz_visit",
        "name": "残疾人走访月报",
        "kind": "list",
        "ledger": "person",
        "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        "columns": [
            {"kind": "field", "code": "name", "path": "name"},
            {"kind": "field", "code": "id_number", "path": "id_number"},
            {"kind": "field", "code": "dtype", "path": "disability.disability_type"},
            {"kind": "field", "code": "area", "path": "residence.floor_area"},
            {"kind": "field", "code": "subsidy", "path": "disability.subsidy_amount"},
            {"kind": "formula", "code": "subsidy_year", "label": "年补贴（元）", "expr": "subsidy * 12"},
            {"kind": "gap", "code": "visited", "label": "本月是否走访", "type": "boolean", "required": True},
            {"kind": "gap", "code": "visits", "label": "走访次数", "type": "integer", "min": 0, "max": 31},
            {
                "kind": "gap",
                "code": "note",
                "label": "备注",
                "type": "text",
                "max_length": 20,
                "pattern": "^[^0-9]*$",
            },
            {
                "kind": "gap",
                "code": "barrier",
                "label": "是否完成无障碍改造",
                "write_back": "disability.barrier_free_renovated",
            },
        ],
    },
    "aggregate": {
        "code": "fuzz_by_village",
        "name": "各村残疾人统计",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "village"},
        "columns": [
            {"kind": "aggregate", "code": "persons", "label": "人口数", "fn": "count"},
            {
                "kind": "aggregate",
                "code": "disabled",
                "label": "残疾人数",
                "fn": "count",
                "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
            },
            {
                "kind": "aggregate",
                "code": "subsidy",
                "label": "月补贴合计",
                "fn": "sum",
                "path": "disability.subsidy_amount",
            },
            {
                "kind": "aggregate",
                "code": "types",
                "label": "残疾类别数",
                "fn": "count_distinct",
                "path": "disability.disability_type",
            },
            {
                "kind": "ratio",
                "code": "share",
                "label": "残疾人占比（%）",
                "numerator": "disabled",
                "denominator": "persons",
            },
            {
                "kind": "gap",
                "code": "visits",
                "label": "本月走访人次",
                "type": "integer",
                "required": True,
                "min": 0,
            },
        ],
    },
    "live": {
        "code": "fuzz_by_sex",
        "name": "分性别残疾人",
        "kind": "aggregate",
        "ledger": "person",
        "rows": {"by": "code", "path": "sex"},
        "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        "columns": [
            {"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"},
            {
                "kind": "aggregate",
                "code": "avg_sub",
                "label": "平均补贴",
                "fn": "avg",
                "path": "disability.subsidy_amount",
            },
        ],
    },
}


async def _call(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], body=None) -> dict:
    r = await client.request(method, url, json=body, headers=headers)
    assert r.status_code in (200, 201), f"{method} {url}: {r.status_code} {r.text}"
    return r.json()


async def _seed_reports(base_url: str, tokens: dict[str, dict[str, str]]) -> dict[str, list]:
    """The report situation the run starts from, built through the API as townships and 残联 would:
    persons with houses and disability records, three approved templates, their tasks dispatched to
    both townships, township A's aggregate task filled and submitted. Returns the ids and keys the
    fuzzer is given (see _config)."""
    rows: list[str] = [VILLAGE_A, VILLAGE_A2, VILLAGE_B]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for i, (who, village, disabled) in enumerate(PEOPLE, start=1):
            number = make_id_card("500118", date(1950 + i * 5, 3, i), i * 7, "1" if i % 2 else "2")
            person = await _call(
                client,
                "POST",
                "/api/v1/ledgers/person/records",
                tokens[who],
                {
                    "region_code": village,
                    "name": f"李{'一二三四五'[i - 1]}",
                    "id_number": number,
                    "ethnicity": "01",
                    "is_disabled": disabled,
                    "phone": f"1390000{i:04d}",
                },
            )
            house = await _call(
                client,
                "POST",
                "/api/v1/ledgers/house/records",
                tokens[who],
                {
                    "region_code": village,
                    "house_code": f"{village}H{i:03d}",
                    "standard_address": f"永川区某镇某村{i}号",
                    "floor_area": 80 + i * 10,
                },
            )
            await _call(
                client,
                "POST",
                "/api/v1/relations/residence",
                tokens[who],
                {"from_id": person["id"], "to_id": house["id"]},
            )
            if disabled:
                rows.append(str(person["id"]))
                await _call(
                    client,
                    "POST",
                    "/api/v1/ledgers/disability/records",
                    tokens[who],
                    {
                        "parent_id": person["id"],
                        "certificate_number": number + f"{(i % 7) + 1}{(i % 4) + 1}",
                        "disability_type": str((i % 7) + 1),
                        "disability_level": str((i % 4) + 1),
                        "subsidy_amount": 100 * i,
                        "living_subsidy": i % 2 == 0,
                    },
                )
        dept, templates, tasks = tokens["department"], {}, {}
        for kind, spec in TEMPLATES.items():
            tid = (await _call(client, "POST", "/api/v1/report-templates", dept, spec))["id"]
            submitted = await _call(client, "POST", f"/api/v1/report-templates/{tid}/submit", dept)
            if submitted["state"] != "approved":
                await _call(client, "POST", f"/api/v1/report-templates/{tid}/approve", tokens["admin"])
                dispatched = await _call(
                    client, "POST", f"/api/v1/report-templates/{tid}/dispatch", dept, {"period": PERIOD}
                )
                tasks[kind] = {t["township_code"]: t["id"] for t in dispatched["tasks"]}
            templates[kind] = tid
        assert templates["live"] and set(tasks) == {"list", "aggregate"}
        assert all(set(by_town) == {A + "000", B + "000"} for by_town in tasks.values())
        # Township A fills its aggregate task and submits it: the department can return or approve it,
        # and the aggregate has submitted rows to read.
        agg_a = tasks["aggregate"][A + "000"]
        view = await _call(client, "GET", f"/api/v1/report-tasks/{agg_a}", tokens["township"])
        await _call(
            client,
            "PUT",
            f"/api/v1/report-tasks/{agg_a}/cells",
            tokens["township"],
            {"cells": [{"row": r["key"], "column": "visits", "value": 3} for r in view["items"]]},
        )
        await _call(client, "POST", f"/api/v1/report-tasks/{agg_a}/submit", tokens["township"])
    columns = sorted({c["code"] for spec in TEMPLATES.values() for c in spec["columns"]})
    return {
        "template_id": sorted(templates.values()),
        "task_id": sorted(t for by_town in tasks.values() for t in by_town.values()),
        "row": rows,
        "column": columns,
    }


def _config(path: Path, known: dict[str, list]) -> Path:
    """A schemathesis.toml that gives the report operations real ids, row keys and column codes (and
    a real period) most of the time and generated ones otherwise, so both the found and the not-found
    paths of every operation run. Bare parameter names apply wherever the name occurs (template_id is
    also a query parameter of GET /report-tasks)."""
    known = {
        **known,
        "period": [PERIOD],
        "states": ["submitted", "approved", "submitted,approved"],
        "township": [A + "000", B + "000"],
    }
    lines = ["[dictionaries]"]
    lines += [
        f"{name} = {{ values = {json.dumps(values, ensure_ascii=False)} }}" for name, values in known.items()
    ]
    lines += ["", "[parameters]"]
    lines += [f'{name} = {{ dictionary = "{name}", probability = {REAL_SHARE} }}' for name in known]
    # The same values inside bodies: cells to save or comment on, the period and townships of a dispatch.
    for key, name in (
        ("body.cells[*].row", "row"),
        ("body.cells[*].column", "column"),
        ("body.period", "period"),
        ("body.townships[*]", "township"),
    ):
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = {REAL_SHARE} }}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


REAL_SHARE = 0.75  # share of generated cases that take a real value for a bound parameter


# The admin runs last: its run deletes grants, (re)activates users and renames regions by guessed ids,
# which would leave the other callers a world without the grants the seeded reports were made under.
# township_b only seeds its own township's records.
CALLERS = ("township", "department", "admin")
SESSION_ENDING = r"^/api/v1/(auth/logout|auth/password|users/\{user_id\}/deactivate)$"


async def _st(base_url: str, headers: dict[str, str], config: Path) -> tuple[int, str]:
    args = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        str(ROOT / "schemas" / "openapi.json"),
        "--url",
        base_url,
        "--checks",
        CHECKS,
        "--phases",
        "examples,fuzzing",
        "--continue-on-failure",
        "--max-examples",
        str(examples(10, 100)),
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--generation-allow-x00",
        "true",
        "--suppress-health-check",
        "all",
        *(["--seed", "20261129"] if not LONG else []),
        # Operations that end the run's own session (logout revokes the token, a password change or
        # deactivation revokes every token of the user) would turn the rest of the run into 401s.
        # They are tested case by case in tests/auth/test_login_security.py.
        "--exclude-path-regex",
        SESSION_ENDING,
    ]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=config.parent,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"},
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode("utf-8", "replace")


def _failures(report: str, code: str) -> int:
    """Cases failing one check, from the run's summary (`❌ ST101 Server error: 3`); 0 when absent."""
    found = re.search(rf"{code} [^:\n]*: (\d+)", report)
    return int(found.group(1)) if found else 0


def _figures(report: str) -> str:
    tested = re.search(r"Tested: (\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    return (
        f"operations {tested and tested.group(1)}, examples {generated and generated.group(1)}, "
        f"5xx {_failures(report, SERVER_ERROR)}, schema violations {_failures(report, SCHEMA_VIOLATION)}"
    )


SERVER_ERROR, SCHEMA_VIOLATION = "ST101", "ST108"  # schemathesis failure codes (`st explain ST101`)


async def test_schemathesis_no_server_errors_or_schema_violations(fuzz_database, settings, tmp_path):
    fuzz_settings = Settings(database_url=fuzz_database, secret_key=settings.secret_key)
    tokens = await _seed(fuzz_database, fuzz_settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(fuzz_settings), log_level="warning", access_log=False, lifespan="on")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not serving.done(), "the server did not start"
            await asyncio.sleep(0.05)
        base_url = f"http://127.0.0.1:{port}"
        config = _config(tmp_path / "schemathesis.toml", await _seed_reports(base_url, tokens))
        reports = {who: await _st(base_url, tokens[who], config) for who in CALLERS}
    finally:
        server.should_exit = True
        await serving
        sock.close()
    for who, (_, report) in reports.items():
        print(f"schemathesis as {who}: {_figures(report)}")
    for who, (code, report) in reports.items():
        assert code == 0, f"schemathesis as {who} found failures:\n{report[-20000:]}"
        assert SERVER_ERROR not in report and SCHEMA_VIOLATION not in report
