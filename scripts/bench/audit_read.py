"""Audited GraphQL page reads, closed loop: the figure of issue 9 (audit serialised every unmasked read).

A department (区民政局, user mzj) is granted read on person.name and person.id_number for the run. Its
clients pull pages of 50 persons from random keyset positions, in turn:
  unaudited  { id name }            nothing sensitive unmasked: no audit row
  audited    { id name idNumber }   ID numbers unmasked: one audit row per page
  sql        the same page by one plain SQL statement (psycopg), same concurrency: the floor
Each for --seconds with --clients closed-loop clients against uvicorn started here. Prints req/s,
p50/p99 and the ratios audited/unaudited and audited/sql, then how many audit rows are still unsealed.

Before/after: --app-dir runs the server from another tree, e.g. the commit before the change:
  git archive 3f8e47b | tar -x -C /tmp/audit_before
  .venv/bin/python scripts/bench/audit_read.py --database-url URL --app-dir /tmp/audit_before
  .venv/bin/python scripts/bench/audit_read.py --database-url URL
The database needs the demo district (`onetable db upgrade && onetable demo`) at this tree's migrations.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx
import psycopg

from app.auth.tokens import issue_token
from app.config import Settings
from app.db.engine import libpq_conninfo, normalise_url
from scripts.bench._env import print_environment

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--clients", "4", "--seconds", "2"]


SECRET = "audit-read-benchmark-secret-key-32-bytes-long!"
QUERY = "query($after: String) {{ persons(first: 50, after: $after) {{ nodes {{ {fields} }} }} }}"
SQL = "SELECT id, name, id_number FROM lg_person WHERE id > %s AND deleted_at IS NULL ORDER BY id LIMIT 50"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs) or [0.0]
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def closed_loop(call, clients: int, seconds: float) -> dict:
    lat: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await call(c)
            lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return {
        "rps": len(lat) / (time.perf_counter() - start),
        "p50": pct(lat, 50) * 1000,
        "p99": pct(lat, 99) * 1000,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=os.environ.get("ONETABLE_DATABASE_URL"), required=False)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--user", default="mzj")
    ap.add_argument("--port", type=int, default=8767)
    ap.add_argument("--app-dir", type=Path, default=ROOT, help="tree to run the server from (before/after)")
    args = ap.parse_args()
    if not args.database_url:
        raise SystemExit("--database-url (or ONETABLE_DATABASE_URL) with the demo district loaded")
    url = normalise_url(args.database_url)
    conninfo = libpq_conninfo(url)
    print_environment(conninfo)
    rnd = random.Random(7)
    with psycopg.connect(conninfo, autocommit=True) as c:
        user_id, unit_id = c.execute(
            "SELECT id, org_unit_id FROM app_user WHERE username = %s", (args.user,)
        ).fetchone()
        max_id = c.execute("SELECT max(id) FROM lg_person").fetchone()[0]
        c.execute("DELETE FROM access_grant WHERE created_by = 'bench-audit'")
        for field in ("name", "id_number"):
            c.execute(
                "INSERT INTO access_grant (grantee_type, org_unit_id, ledger, field, level, allow_lookup, "
                "row_scope, regions, created_by) VALUES ('org_unit', %s, 'person', %s, 'read', false, 'all', "
                "'{}', 'bench-audit')",
                (unit_id, field),
            )
        audit_before = c.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    token = issue_token(Settings(secret_key=SECRET), SimpleNamespace(id=user_id))
    env = {
        **os.environ,
        "ONETABLE_DATABASE_URL": url,
        "ONETABLE_SECRET_KEY": SECRET,
        "ONETABLE_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - spawns the server; nothing waits on it here
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=args.app_dir,
        env=env,
    )
    base = f"http://127.0.0.1:{args.port}"
    results: dict[str, dict] = {}
    try:
        async with httpx.AsyncClient(
            base_url=base,
            timeout=120,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=64),
        ) as http:
            for _ in range(300):
                if proc.poll() is not None:
                    raise SystemExit("the server exited during start-up")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

            def after() -> tuple[int, str]:
                a = rnd.randint(0, max(0, max_id - 50))
                return a, base64.urlsafe_b64encode(json.dumps([a]).encode()).decode().rstrip("=")

            def gql(fields: str, expect_id: bool):
                async def call(c: int) -> None:
                    r = await http.post(
                        "/graphql",
                        json={"query": QUERY.format(fields=fields), "variables": {"after": after()[1]}},
                    )
                    body = r.json() if r.status_code == 200 else {}
                    nodes = (body.get("data") or {}).get("persons", {}).get("nodes") if body else None
                    if r.status_code != 200 or "errors" in body or not nodes:
                        raise SystemExit(f"{r.status_code} {r.text[:300]}")
                    if expect_id and "*" in (nodes[0]["idNumber"] or "*"):
                        raise SystemExit("ID numbers came back masked: the grant did not apply")

                return call

            conns = [
                await psycopg.AsyncConnection.connect(conninfo, autocommit=True) for _ in range(args.clients)
            ]

            async def sql_call(c: int) -> None:
                cur = await conns[c].execute(SQL, (after()[0],))
                await cur.fetchall()

            try:
                await closed_loop(gql("id name idNumber", True), 4, 2)  # warm up
                for name, call in (
                    ("unaudited", gql("id name", False)),
                    ("audited", gql("id name idNumber", True)),
                    ("sql", sql_call),
                ):
                    results[name] = await closed_loop(call, args.clients, args.seconds)
                    r = results[name]
                    print(
                        f"{name:10} {r['rps']:7.1f} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms",
                        flush=True,
                    )
            finally:
                for conn in conns:
                    await conn.close()
            await asyncio.sleep(2)  # the chainer's next pass
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        with psycopg.connect(conninfo, autocommit=True) as c:
            c.execute("DELETE FROM access_grant WHERE created_by = 'bench-audit'")
            rows, unsealed = c.execute(
                "SELECT count(*) FILTER (WHERE true), count(*) FILTER (WHERE chain_pos IS NULL) "
                "FROM audit_log"
            ).fetchone()
    a, u, s = results["audited"]["rps"], results["unaudited"]["rps"], results["sql"]["rps"]
    print(
        f"server from {args.app_dir}; {args.clients} clients, {args.seconds:.0f} s each; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"audited / unaudited {a / u:.2f}; audited / plain SQL {a / s:.3f}; unaudited / plain SQL {u / s:.3f}"
    )
    print(f"audit rows written {rows - audit_before}; still unsealed {unsealed}")


if __name__ == "__main__":
    asyncio.run(main())
