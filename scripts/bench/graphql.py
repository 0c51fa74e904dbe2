"""GraphQL throughput and latency on the demo district, against one hand-written SQL statement.

Scenarios (a department user of 区民政局: ID numbers, phones and addresses come back masked):
  page       a page of 100 persons (20 fields) with their residence house, from a random keyset position
             (`after`), as a system syncing the district page by page does
  single     one person by record id, same fields and house
  aggregate  persons of one township counted per village (区民政局 sees birth dates masked to the
             year, and masked fields cannot be aggregated: counts only)
For each, at 1 and 32 concurrent clients: GraphQL over HTTP (httpx -> uvicorn on 127.0.0.1, started
here as a subprocess), then the same data by one hand-written SQL statement returning JSON (psycopg,
same concurrency, same masks and row scope) measured in the same run. Prints p50 / p99 latency,
throughput and the GraphQL / SQL ratios. Loops are bounded by --requests (and --max-seconds).

Usage: .venv/bin/python scripts/bench/graphql.py [--database-url URL] [--requests 400] [--user mzj]
Without --database-url the embedded server in ONETABLE_DATA_DIR (default var/) is used, database
ONETABLE_DATABASE_NAME; load the district first (`onetable demo --scale full`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
# This file is named graphql.py: keep its folder off the path so `import graphql` finds graphql-core.
sys.path[:] = [str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx
import psycopg

from app.auth.tokens import issue_token
from app.config import Settings, get_settings
from app.db.engine import libpq_conninfo, resolve_database_url
from scripts.bench._env import print_environment

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--requests", "10", "--max-seconds", "1"]


SECRET = "graphql-benchmark-secret-key-32-bytes-long!"
PERSON_FIELDS = (
    "id regionCode name idNumber sex birthDate ethnicity phone householdType hukouAddress "
    "residenceAddress maritalStatus politicalStatus employmentStatus elderlyLivingAlone isVeteran "
    "deathDate remark createdAt updatedAt"
)
HOUSE_FIELDS = "houseCode standardAddress floorArea use"
NODE = f"{PERSON_FIELDS} residence {{ since house {{ {HOUSE_FIELDS} }} }}"
GQL = {
    "page": f"query($after: String) {{ persons(first: 100, after: $after) "
    f"{{ nodes {{ {NODE} }} pageInfo {{ endCursor hasNextPage }} }} }}",
    "single": f"query($id: ID!) {{ person(id: $id) {{ {NODE} }} }}",
    "aggregate": "query($t: String!) { personAggregate(filter: {regionCode: {prefix: $t}}, groupBy: [VILLAGE]) "
    "{ count groups { key { village } count } } }",
}

# The same data by hand, as one statement returning JSON: the masks written out, the row scopes the
# demo grants give 区民政局 (persons: all rows by its grant; houses: its own subtree, the district) and
# the soft-delete filter, as a careful engineer would write it.
_ID = "CASE WHEN {c} IS NULL THEN NULL ELSE left({c},6)||repeat('*',greatest(length({c})-10,0))||right({c},4) END"
_PHONE = "CASE WHEN {c} IS NULL THEN NULL WHEN length({c})>=7 THEN left({c},3)||'****'||right({c},4) ELSE '****' END"
_ADDR = (
    "CASE WHEN {c} IS NULL THEN NULL ELSE coalesce(left({c}, least(nullif(strpos({c}, '村'), 0), "
    "nullif(strpos({c}, '社区'), 0) + 1, nullif(strpos({c}, '居委会'), 0) + 2)) || '***', left({c}, 6) || '***') END"
)
_NODE_SQL = f"""json_build_object('id', p.id::text, 'regionCode', p.region_code, 'name', p.name,
  'idNumber', {_ID.format(c="p.id_number")}, 'sex', p.sex, 'birthDate', left(p.birth_date::text, 4),
  'ethnicity', p.ethnicity,
  'phone', {_PHONE.format(c="p.phone")}, 'householdType', p.household_type,
  'hukouAddress', {_ADDR.format(c="p.hukou_address")}, 'residenceAddress', {_ADDR.format(c="p.residence_address")},
  'maritalStatus', p.marital_status, 'politicalStatus', p.political_status, 'employmentStatus', p.employment_status,
  'elderlyLivingAlone', p.elderly_living_alone, 'isVeteran', p.is_veteran, 'deathDate', p.death_date,
  'remark', p.remark, 'createdAt', p.created_at, 'updatedAt', p.updated_at,
  'residence', (SELECT json_build_object('since', r.since, 'house', json_build_object(
      'houseCode', h.house_code, 'standardAddress', h.standard_address, 'floorArea', h.floor_area, 'use', h.use))
    FROM rel_residence r JOIN lg_house h ON h.id = r.to_id AND h.deleted_at IS NULL AND h.region_code LIKE '500118%%'
    WHERE r.from_id = p.id AND r.deleted_at IS NULL ORDER BY h.id LIMIT 1))"""
SQL = {
    "page": f"""SELECT json_build_object('persons',
        json_build_object('nodes', coalesce(json_agg(n ORDER BY id), '[]')))::text
      FROM (SELECT p.id, {_NODE_SQL} AS n FROM lg_person p
            WHERE p.id > %(after_id)s AND p.deleted_at IS NULL
            ORDER BY p.id LIMIT 100) s""",
    "single": f"""SELECT json_build_object('person', {_NODE_SQL})::text FROM lg_person p
      WHERE p.id = %(id)s AND p.deleted_at IS NULL""",
    "aggregate": """SELECT json_build_object('personAggregate', json_build_object('count', coalesce(sum(n), 0),
        'groups', coalesce(json_agg(json_build_object('key', json_build_object('village', v), 'count', n)
          ORDER BY v), '[]')))::text
      FROM (SELECT left(region_code, 12) AS v, count(*) AS n
            FROM lg_person WHERE region_code LIKE %(t)s || '%%' AND deleted_at IS NULL GROUP BY 1) g""",
}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def load(
    call: Callable[[int], Awaitable[None]], concurrency: int, total: int, max_seconds: float
) -> dict:
    """`total` calls spread over `concurrency` workers (stops early after max_seconds)."""
    lat: list[float] = []
    left = [total]
    deadline = time.perf_counter() + max_seconds

    async def worker(w: int) -> None:
        while left[0] > 0 and time.perf_counter() < deadline:
            left[0] -= 1
            t0 = time.perf_counter()
            await call(w)
            lat.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - start
    return {"n": len(lat), "p50": pct(lat, 50) * 1000, "p99": pct(lat, 99) * 1000, "rps": len(lat) / wall}


def start_server(url: str, port: int, workers: int = 1) -> subprocess.Popen:
    env = {
        **os.environ,
        "ONETABLE_DATABASE_URL": url,
        "ONETABLE_SECRET_KEY": SECRET,
        "ONETABLE_LOG_LEVEL": "WARNING",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env)


async def wait_ready(base: str, proc: subprocess.Popen) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not start")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url")
    ap.add_argument("--requests", type=int, default=400, help="requests per scenario, API and concurrency")
    ap.add_argument("--max-seconds", type=float, default=60.0, help="cap per measurement")
    ap.add_argument("--user", default="mzj", help="demo user (default 区民政局 mzj)")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    settings: Settings = get_settings()
    url = args.database_url or resolve_database_url(settings)  # keeps an embedded server up while we run
    conninfo = libpq_conninfo(url)
    print_environment(conninfo)
    rnd = random.Random(args.seed)
    with psycopg.connect(conninfo) as c:
        persons, max_id = c.execute("SELECT count(*), max(id) FROM lg_person").fetchone()
        user_id = c.execute("SELECT id FROM app_user WHERE username = %s", (args.user,)).fetchone()[0]
        townships = [
            r[0]
            for r in c.execute(
                "SELECT DISTINCT left(region_code, 9) FROM lg_house WHERE region_code LIKE '500118%' ORDER BY 1"
            )
        ]
        server_version = c.execute("SHOW server_version").fetchone()[0]
    if not persons or not townships:
        print("no demo district in this database: load one first (`onetable demo --scale full`)")
        return
    print(
        f"demo district: {persons:,} persons, {len(townships)} townships; PostgreSQL {server_version}; "
        f"user {args.user}; {os.cpu_count()} CPUs; uvicorn workers {args.workers}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    token = issue_token(Settings(secret_key=SECRET), SimpleNamespace(id=user_id))

    def page_vars() -> dict:
        after_id = rnd.randint(0, max_id - 100)
        cursor = base64.urlsafe_b64encode(json.dumps([after_id]).encode()).decode().rstrip("=")
        return {"after": cursor, "after_id": after_id}

    variables = {
        "page": page_vars,
        "single": lambda: {"id": rnd.randint(1, max_id)},
        "aggregate": lambda: {"t": rnd.choice(townships)},
    }
    base = f"http://127.0.0.1:{args.port}"
    proc = start_server(url, args.port, args.workers)
    results: list[tuple] = []
    try:
        await wait_ready(base, proc)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=base, limits=limits, timeout=120, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            conns = [await psycopg.AsyncConnection.connect(conninfo, autocommit=True) for _ in range(32)]
            try:
                for name in GQL:

                    def gvars(name: str = name) -> dict:
                        v = variables[name]()
                        v.pop("after_id", None)
                        return {**v, "id": str(v["id"])} if "id" in v else v

                    async def gql_call(w: int, name: str = name) -> None:
                        r = await http.post("/graphql", json={"query": GQL[name], "variables": gvars()})
                        # Not parsed (the SQL side is not either): "errors" would follow "data".
                        if r.status_code != 200 or b'"errors":' in r.content:
                            raise SystemExit(f"{name}: {r.status_code} {r.text[:400]}")

                    async def sql_call(w: int, name: str = name) -> None:
                        cur = await conns[w].execute(SQL[name], variables[name]())
                        await cur.fetchone()

                    await load(gql_call, 4, 40, args.max_seconds)  # warm caches (server, plans, pages)
                    await load(sql_call, 4, 40, args.max_seconds)
                    for conc in (1, 32):
                        g = await load(gql_call, conc, args.requests, args.max_seconds)
                        s = await load(sql_call, conc, args.requests, args.max_seconds)
                        results.append((name, conc, g, s))
                        print(
                            f"  {name:9} c={conc:<2} graphql p50 {g['p50']:7.2f} ms p99 {g['p99']:7.2f} ms "
                            f"{g['rps']:7.1f}/s (n={g['n']}) | sql p50 {s['p50']:7.2f} ms p99 {s['p99']:7.2f} ms "
                            f"{s['rps']:7.1f}/s (n={s['n']})",
                            flush=True,
                        )
            finally:
                for c in conns:
                    await c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        "\n| scenario | clients | GraphQL p50 ms | p99 ms | req/s | SQL p50 ms | p99 ms | req/s | p50 ratio | "
        "throughput ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, conc, g, s in results:
        print(
            f"| {name} | {conc} | {g['p50']:.2f} | {g['p99']:.2f} | {g['rps']:.0f} | {s['p50']:.2f} | "
            f"{s['p99']:.2f} | {s['rps']:.0f} | {g['p50'] / s['p50']:.2f}x | {s['rps'] / g['rps']:.2f}x |"
        )
    print(
        "\nratio = GraphQL / SQL (p50 latency); throughput ratio = SQL req/s / GraphQL req/s. "
        f"Statistics over {statistics.mean([r[2]['n'] for r in results]):.0f} requests on average."
    )


if __name__ == "__main__":
    asyncio.run(main())
