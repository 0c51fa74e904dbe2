"""Department push throughput: POST /api/v1/push/person in process, against plain SQL doing the
same writes.

Phases (N records each, one request each, as a department system would send them):
  create   公安 pushes N new persons (name, ID, region): INSERT rows, history, events
  update   民政 pushes low_income_status for the same N persons: UPDATE rows, history, events
  replay   民政 sends the same update request again: every record already_applied, nothing written
The plain-SQL baseline does the row and history writes of `create` and `update` in one transaction
each
(multi-row INSERT, UPDATE … FROM VALUES) into copies of the tables, in the same run: the ratio is
push time / plain time (what the checks, JSON, events, provenance and audit cost on top of the
writes).
Runs in a scratch database it creates and drops (onetable_bench_push_<pid>).

Usage: .venv/bin/python scripts/bench/push_bulk.py [--database-url URL] [-n 10000]
Without --database-url: ONETABLE_DATABASE_URL (a PostgreSQL server; only its address is used).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# This directory holds graphql.py (a bench), which would shadow the graphql package the app imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import httpx
import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.auth.passwords import new_api_key
from app.catalog.validators import make_id_card
from app.config import Settings
from app.db.engine import libpq_conninfo, normalise_url
from app.org.models import OrgUnit, ServiceAccount
from scripts.bench._env import print_environment

VILLAGE = "500118101201"


def _ids(n: int) -> list[str]:
    return [
        make_id_card("500118", date(1940, 1, 1) + timedelta(days=i // 400), (i % 400) * 2, "2")
        for i in range(n)
    ]


async def _accounts(url: str) -> dict[str, dict[str, str]]:
    engine = create_async_engine(url)
    out = {}
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        for dept in ("gaj", "mzj"):
            unit = OrgUnit(
                code=f"dept:{dept}",
                name=dept,
                kind="department",
                region_code="500118000000",
                department_code=dept,
            )
            s.add(unit)
            await s.flush()
            key, prefix, key_hash = new_api_key()
            s.add(
                ServiceAccount(
                    name=f"{dept}-bench",
                    org_unit_id=unit.id,
                    key_prefix=prefix,
                    key_hash=key_hash,
                    active=True,
                )
            )
            out[dept] = {"X-API-Key": key}
        await s.commit()
    await engine.dispose()
    return out


def _plain(url: str, ids: list[str]) -> tuple[float, float]:
    """The same row and history writes as the create and update phases, in plain SQL."""
    with psycopg.connect(libpq_conninfo(url)) as conn:
        conn.execute(
            "CREATE TABLE bench_person (LIKE lg_person INCLUDING DEFAULTS INCLUDING IDENTITY "
            "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        )
        conn.execute(
            "CREATE TABLE bench_history (LIKE ledger_history INCLUDING DEFAULTS INCLUDING IDENTITY "
            "INCLUDING INDEXES)"
        )
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            rows = [
                (VILLAGE, f"居民{i}", n, "2", date(1940, 1, 1) + timedelta(days=i // 400))
                for i, n in enumerate(ids)
            ]
            got = []
            for k in range(0, len(rows), 1000):
                part = rows[k : k + 1000]
                q = (
                    "INSERT INTO bench_person (region_code, name, id_number, sex, birth_date)"
                    " VALUES " + ",".join(["(%s,%s,%s,%s,%s)"] * len(part)) + " RETURNING id"
                )
                cur.execute(q, [v for r in part for v in r])
                got += [r[0] for r in cur.fetchall()]
            hist = [
                ("person", rid, VILLAGE, "create", f, json.dumps(v), "department:gaj/x", "bench")
                for rid, r in zip(got, rows, strict=True)
                for f, v in (
                    ("name", r[1]),
                    ("id_number", r[2]),
                    ("sex", "2"),
                    ("birth_date", r[4].isoformat()),
                )
            ]
            cur.executemany(
                "INSERT INTO bench_history (ledger, record_id, region_code, op, field, after,"
                " source,"
                " actor) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                hist,
            )
        conn.commit()
        create = time.perf_counter() - t0
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            for k in range(0, len(got), 1000):
                part = got[k : k + 1000]
                q = (
                    "UPDATE bench_person t SET low_income_status = d.v, version = t.version + 1, "
                    "updated_at = now() FROM (VALUES "
                    + ",".join(["(%s::bigint, %s)"] * len(part))
                    + ") d(id, v) WHERE t.id = d.id"
                )
                cur.execute(q, [v for rid in part for v in (rid, "1")])
            cur.executemany(
                "INSERT INTO bench_history (ledger, record_id, region_code, op, field, before,"
                " after,"
                " source, actor) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [
                    (
                        "person",
                        rid,
                        VILLAGE,
                        "update",
                        "low_income_status",
                        None,
                        json.dumps("1"),
                        "department:mzj/x",
                        "bench",
                    )
                    for rid in got
                ],
            )
        conn.commit()
        return create, time.perf_counter() - t0


async def _push(url: str, n: int) -> dict[str, float]:
    from app.main import create_app

    accounts = await _accounts(url)
    settings = Settings(database_url=url, secret_key="bench-secret-key-at-least-32-bytes-long!!")
    app = create_app(settings, manage_engine=False)
    engine = create_async_engine(normalise_url(url), pool_size=2)
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    ids = _ids(n)
    creates = [
        {
            "source_event_id": f"GA-{i}",
            "effective_at": "2024-06-01",
            "id_number": x,
            "name": f"居民{i}",
            "region_code": VILLAGE,
        }
        for i, x in enumerate(ids)
    ]
    updates = [
        {
            "source_event_id": f"MZ-{i}",
            "effective_at": "2024-06-02",
            "id_number": x,
            "low_income_status": "1",
        }
        for i, x in enumerate(ids)
    ]
    out = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as c:
        for name, who, body, want in (
            ("create", "gaj", creates, "applied"),
            ("update", "mzj", updates, "applied"),
            ("replay", "mzj", updates, "already_applied"),
        ):
            t0 = time.perf_counter()
            r = await c.post("/api/v1/push/person", headers=accounts[who], json=body)
            out[name] = time.perf_counter() - t0
            assert r.status_code == 200, r.text[:500]
            assert r.json()["counts"][want] == n, r.json()["counts"]
    await engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=os.environ.get("ONETABLE_DATABASE_URL"))
    ap.add_argument("-n", type=int, default=10_000)
    args = ap.parse_args()
    if not args.database_url:
        sys.exit("--database-url or ONETABLE_DATABASE_URL is needed")
    base = make_url(normalise_url(args.database_url))
    name = f"onetable_bench_push_{os.getpid()}"
    url = base.set(database=name).render_as_string(hide_password=False)
    admin = libpq_conninfo(base.set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["url"] = url
        command.upgrade(cfg, "head")
        print_environment(url)
        pushed = asyncio.run(_push(url, args.n))
        plain_create, plain_update = _plain(url, _ids(args.n))
        n = args.n
        print(
            f"push create  {n} persons: {pushed['create']:.2f} s "
            f"({n / pushed['create']:.0f} records/s); "
            f"plain SQL {plain_create:.2f} s; ratio {pushed['create'] / plain_create:.1f}x"
        )
        print(
            f"push update  {n} persons: {pushed['update']:.2f} s "
            f"({n / pushed['update']:.0f} records/s); "
            f"plain SQL {plain_update:.2f} s; ratio {pushed['update'] / plain_update:.1f}x"
        )
        print(
            f"push replay  {n} events already applied: {pushed['replay']:.2f} s "
            f"({n / pushed['replay']:.0f} records/s)"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["-n", "200"]

if __name__ == "__main__":
    main()
