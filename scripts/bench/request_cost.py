"""The fixed cost of one request: one person by id, REST and GraphQL, against a plain psycopg SELECT.

The service runs in this process (its ASGI app called directly: routing, dependencies, access policy,
SQL, JSON — no HTTP server or client in the figures), one request at a time, warm caches. For each
path it prints the microseconds of this process's CPU per request (time.process_time: Python plus
psycopg/libpq, none of PostgreSQL's own work), the wall time, and the round trips to PostgreSQL per
request, counted on the wire (libpq trace: one per Sync or simple Query message). The same run
measures a plain psycopg SELECT of the same row (autocommit, one connection) and prints the ratios.

  .venv/bin/python scripts/bench/request_cost.py --database-url postgresql://…/onetable_bench_x
  (the demo district must be loaded: `onetable demo` or scripts/bench/load.py load one)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import orjson
import psycopg
from sqlalchemy import event

from scripts.bench._env import print_environment

SECRET = "request-cost-benchmark-secret-key-32-bytes!"
PERSON_Q = "query($id: ID!) { person(id: $id) { id name sex birthDate regionCode idNumber phone } }"
# The same with a field 民政局 reads unmasked although sensitive: audited, as REST's answer (all fields) is.
AUDITED_Q = PERSON_Q.replace("phone }", "phone lowIncomeStatus }")


async def asgi(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b"", query: bytes = b""
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    sent = False
    out: list[bytes] = []
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(out)


class Wire:
    """Round trips on every connection of the given engines (libpq trace, counted per request)."""

    def __init__(self) -> None:
        self.file = tempfile.NamedTemporaryFile(mode="w+b", suffix=".trace")
        self.on = False

    def attach(self, engine: Any) -> None:
        def traced(dbapi_connection: Any, record: Any) -> None:
            self.pgconns.append(dbapi_connection.driver_connection.pgconn)

        self.pgconns: list[Any] = getattr(self, "pgconns", [])
        event.listen(engine.sync_engine, "connect", traced)

    def count(self) -> int:
        self.file.flush()
        with open(self.file.name, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return sum(
            1 for ln in lines if ln.split("\t")[:1] == ["F"] and ln.split("\t")[2:3] in (["Sync"], ["Query"])
        )

    def start(self) -> None:
        self.file.truncate(0)
        self.file.seek(0)
        for pg in self.pgconns:
            pg.trace(self.file.fileno())
            pg.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def stop(self) -> None:
        for pg in self.pgconns:
            pg.untrace()


async def measure(
    name: str, n: int, one: Callable[[int], Awaitable[None]], ids: list[int]
) -> dict[str, float]:
    for i in range(min(50, n)):  # warm: caches, prepared statements, pool
        await one(ids[i % len(ids)])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        await one(ids[i % len(ids)])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=os.environ.get("ONETABLE_DATABASE_URL"), required=False)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--user", default="mzj", help="demo user (default 区民政局 mzj: ID numbers masked)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not args.database_url:
        sys.exit("--database-url (or ONETABLE_DATABASE_URL) is required")
    from app.config import Settings
    from app.db.engine import libpq_conninfo, normalise_url

    url = normalise_url(args.database_url)
    conninfo = libpq_conninfo(url)
    print_environment(conninfo)
    with psycopg.connect(conninfo, autocommit=True) as c:
        row = c.execute("SELECT id, token_version FROM app_user WHERE username = %s", (args.user,)).fetchone()
        if row is None:
            sys.exit(f"no user {args.user!r}: load the demo district first")
        ids = [
            r[0]
            for r in c.execute("SELECT id FROM lg_person WHERE deleted_at IS NULL ORDER BY id LIMIT 5000")
        ]
    random.Random(args.seed).shuffle(ids)

    os.environ.setdefault("ONETABLE_SECRET_KEY", SECRET)
    settings = Settings(database_url=url, secret_key=SECRET, audit_chain_interval_seconds=0)
    from app.auth.tokens import issue_token
    from app.main import create_app

    app = create_app(settings)
    token = issue_token(settings, SimpleNamespace(id=row[0], token_version=row[1]))
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    wire = Wire()
    results: dict[str, dict[str, float]] = {}
    async with app.router.lifespan_context(app):
        for engine in (getattr(app.state, "read_engine", None), app.state.sessionmaker.kw["bind"]):
            if engine is not None:
                wire.attach(engine)

        async def rest(pid: int) -> None:
            status, _ = await asgi(app, "GET", f"/api/v1/ledgers/person/records/{pid}", headers)
            assert status == 200, status

        def gql(query: str) -> Callable[[int], Awaitable[None]]:
            async def one(pid: int) -> None:
                body = orjson.dumps({"query": query, "variables": {"id": str(pid)}})
                status, out = await asgi(app, "POST", "/graphql", headers, body)
                assert status == 200 and b'"errors"' not in out, out[:300]

            return one

        for name, fn in (
            ("REST get one", rest),
            ("GraphQL person(id)", gql(PERSON_Q)),
            ("GraphQL + audited field", gql(AUDITED_Q)),
        ):
            await measure(name, 50, fn, ids)
            wire.start()
            for pid in ids[:20]:
                await fn(pid)
            wire.stop()
            trips = wire.count() / 20
            results[name] = {**await measure(name, args.requests, fn, ids), "trips": trips}

    aconn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    async with aconn:

        async def plain(pid: int) -> None:
            await (
                await aconn.execute("SELECT * FROM lg_person WHERE id = %s AND deleted_at IS NULL", (pid,))
            ).fetchone()

        results["plain psycopg SELECT"] = {**await measure("plain", args.requests, plain, ids), "trips": 1.0}

    base = results["plain psycopg SELECT"]
    print(f"one person by id, {args.requests} sequential requests each, user {args.user}, warm caches")
    print(
        f"  {'path':<24}{'CPU µs/req':>12}{'wall µs/req':>13}{'round trips':>13}{'CPU ÷ plain':>13}"
        f"{'wall ÷ plain':>14}"
    )
    for name, r in results.items():
        print(
            f"  {name:<24}{r['cpu_us']:>12.0f}{r['wall_us']:>13.0f}{r['trips']:>13.2f}"
            f"{r['cpu_us'] / base['cpu_us']:>13.1f}{r['wall_us'] / base['wall_us']:>14.1f}"
        )
    print(
        f"goal (issue 15): ≤ 1500 µs of Python per request, 1 round trip warm; load average now "
        f"{os.getloadavg()[0]:.1f}"
    )


# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--requests", "100"]

if __name__ == "__main__":
    asyncio.run(main())
