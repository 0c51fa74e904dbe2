"""Onetable's GraphQL next to PostGraphile 4 on the same database, and a hand-SQL baseline.

One command:
    .venv/bin/python scripts/bench/peer_postgraphile.py \
        --database-url postgresql://postgres@127.0.0.1/DB --clients 1,32 --seconds 20
The database holds a demo district (`onetable demo --scale full` for the figures in
docs/benchmarks.md).

What it does, in order:
1. prints the environment line (scripts/bench/_env.py);
2. installs PostGraphile 4.14 with npm into a scratch folder outside the repository (--scratch,
   default ~/.cache/onetable-peer; bench-only, never a dependency of the service; no CDN);
3. creates the schema `peer_bench` in the database: views over lg_person, lg_house and
   rel_residence with the soft-delete filter, the house scope and the masks the demo department
   区民政局 (mzj) sees (ID number, birth date to the year, phone, both addresses; compiled from
   app/access/masks.py), plus one SQL function for the village aggregate (PostGraphile 4 has no
   aggregates of its own);
4. starts both servers, one process each (uvicorn for Onetable, node for PostGraphile, each with a
   pool of `db_pool_size` connections) and a no-op node HTTP server;
5. checks that the three answer the same (Onetable, PostGraphile, the hand-written SQL of
   scripts/bench/graphql.py) for sample pages, persons and townships, and stops if they differ;
6. runs each scenario at each client count in rounds interleaved A,B,C,A,B,C (Onetable,
   PostGraphile, hand SQL) from ONE closed-loop load generator (this process: raw HTTP/1.1
   keep-alive on asyncio, psycopg for SQL); the generator's own CPU use is printed per round, and
   the no-op server gives its ceiling, so a reader can see it is not the bottleneck;
7. prints a table: throughput, p50 / p99, server CPU per request and the ratios
   PostGraphile ÷ Onetable and SQL ÷ Onetable.

Scenarios (as scripts/bench/graphql.py): `page` = 100 persons (20 fields) + residence house from
a random keyset position; `single` = one person by id, same fields; `aggregate` = one township's
persons counted per village (counts only: 区民政局 sees birth dates masked to the year, and
Onetable refuses to aggregate a masked field).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, cast

import psutil
import psycopg
from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql

ROOT = Path(__file__).resolve().parents[2]
# scripts/bench/graphql.py would shadow graphql-core: keep this folder off the path.
sys.path[:] = [str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

from app.access.masks import mask_column
from app.auth.tokens import issue_token
from app.catalog.loader import load_catalog
from app.config import Settings
from app.db.engine import libpq_conninfo
from scripts.bench._env import print_environment

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): seconds, small district.
SMOKE_ARGS = [
    "--clients",
    "1,4",
    "--seconds",
    "1",
    "--rounds",
    "1",
    "--check",
    "2",
    "--skip-without-npm",
]


POSTGRAPHILE = "postgraphile@4.14.1"
SCHEMA = "peer_bench"
# Fields 区民政局 reads masked in the demo grants (docs/access.md): the rule is the catalogue's.
MASKED = ("id_number", "birth_date", "phone", "hukou_address", "residence_address")
PERSON_COLUMNS = (
    "id",
    "region_code",
    "name",
    "id_number",
    "sex",
    "birth_date",
    "ethnicity",
    "phone",
    "household_type",
    "hukou_address",
    "residence_address",
    "marital_status",
    "political_status",
    "employment_status",
    "elderly_living_alone",
    "is_veteran",
    "death_date",
    "remark",
    "created_at",
    "updated_at",
)
DISTRICT = "500118"  # the demo district; 区民政局's house scope


def _load_graphql_bench() -> ModuleType:
    """scripts/bench/graphql.py: the Onetable queries, the hand SQL, the server start-up."""
    spec = importlib.util.spec_from_file_location("bench_graphql", ROOT / "scripts/bench/graphql.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GB = _load_graphql_bench()

PG_NODE = (
    f"{GB.PERSON_FIELDS} residence: residenceByFromId {{ since house: houseByToId {{ {GB.HOUSE_FIELDS} }} }}"
)
PGQL = {
    "page": "query($after: Cursor) { persons: allPeople(first: 100, after: $after, "
    f"orderBy: PRIMARY_KEY_ASC) "
    f"{{ nodes {{ {PG_NODE} }} pageInfo {{ endCursor hasNextPage }} }} }}",
    "single": f"query($id: BigInt!) {{ person: personById(id: $id) {{ {PG_NODE} }} }}",
    "aggregate": "query($t: String!) { villageAggregate(township: $t) { nodes { village count } } }",
}


# ------------------------------------------------------------------------------------------
# PostGraphile: install, views, process


class NoNode(SystemExit):
    pass


def install_postgraphile(scratch: Path) -> Path:
    scratch = scratch.expanduser()
    cli = scratch / "node_modules" / ".bin" / "postgraphile"
    if cli.exists():
        return cli
    if not shutil.which("npm") or not shutil.which("node"):
        raise NoNode("npm not found: Node.js 18+ with npm is needed for the PostGraphile side")
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "package.json").write_text('{"private": true}\n')
    print(f"installing {POSTGRAPHILE} into {scratch} (npm) ...", flush=True)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", POSTGRAPHILE],
        cwd=scratch,
        check=False,
    )
    if done.returncode != 0 or not cli.exists():
        raise NoNode(f"npm install {POSTGRAPHILE} failed (exit {done.returncode}): no registry?")
    return cli


def _sql(expr: Any) -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(expr.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def views_sql() -> str:
    person = load_catalog().ledgers["person"]
    rules = {f.code: f.mask for f in person.fields}
    cols = []
    for c in PERSON_COLUMNS:
        if c in MASKED:
            masked = mask_column(rules[c], literal_column(f"p.{c}"))
            cols.append(f"{_sql(masked)} AS {c}")
        else:
            cols.append(f"p.{c}")
    return f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE VIEW {SCHEMA}.person AS SELECT {", ".join(cols)}
  FROM public.lg_person p WHERE p.deleted_at IS NULL;
CREATE VIEW {SCHEMA}.house AS SELECT h.id, h.house_code, h.standard_address, h.floor_area, h.use
  FROM public.lg_house h WHERE h.deleted_at IS NULL AND h.region_code LIKE '{DISTRICT}%';
CREATE VIEW {SCHEMA}.residence AS SELECT r.id, r.from_id, r.to_id, r.since
  FROM public.rel_residence r WHERE r.deleted_at IS NULL;
COMMENT ON VIEW {SCHEMA}.person IS E'@primaryKey id';
COMMENT ON VIEW {SCHEMA}.house IS E'@primaryKey id';
COMMENT ON VIEW {SCHEMA}.residence IS E'@primaryKey id\\n@unique from_id\\n'
  '@foreignKey (from_id) references {SCHEMA}.person (id)\\n'
  '@foreignKey (to_id) references {SCHEMA}.house (id)';
CREATE TYPE {SCHEMA}.village_count AS (village text, count bigint);
CREATE FUNCTION {SCHEMA}.village_aggregate(township text) RETURNS SETOF {SCHEMA}.village_count
  LANGUAGE sql STABLE AS $$
    SELECT left(region_code, 12), count(*) FROM {SCHEMA}.person
    WHERE region_code LIKE township || '%' GROUP BY 1 ORDER BY 1 $$;
"""


# ------------------------------------------------------------------------------------------
# One load generator: raw HTTP/1.1 keep-alive (httpx costs more CPU per request than the servers do)


class Http:
    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.port = port
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None
            try:
                self.writer.write(f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                return await self._read(self.reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()  # idle keep-alive closed by the server between rounds
                if attempt:
                    raise
        raise AssertionError

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "content-length" in hdrs:
            return status, await reader.readexactly(int(hdrs["content-length"]))
        chunks = []
        while True:  # chunked
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                return status, b"".join(c[:-2] for c in chunks)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass
        self.reader = self.writer = None


@dataclass
class Round:
    n: int = 0
    errors: int = 0
    wall: float = 0.0
    gen_cpu: float = 0.0  # load generator CPU seconds / wall seconds (1.0 = one core saturated)
    server_cpu: float = 0.0
    lat: list[float] = field(default_factory=list)


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def closed_loop(
    calls: list[Callable[[], Awaitable[None]]], seconds: float, server: psutil.Process | None
) -> Round:
    """Each call is one client's request; every client repeats its call until the time is up."""
    r = Round()
    stop = time.perf_counter() + seconds

    async def client(call: Callable[[], Awaitable[None]]) -> None:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:  # noqa: BLE001 - a failed request counts, and the round goes on
                r.errors += 1
                continue
            r.lat.append(time.perf_counter() - t0)

    def server_cpu() -> float:
        if server is None:
            return 0.0
        procs = [server, *server.children(recursive=True)]
        return sum(p.cpu_times().user + p.cpu_times().system for p in procs)

    cpu0, scpu0, t0 = time.process_time(), server_cpu(), time.perf_counter()
    await asyncio.gather(*(client(c) for c in calls))
    r.wall = time.perf_counter() - t0
    r.gen_cpu = (time.process_time() - cpu0) / r.wall
    r.server_cpu = (server_cpu() - scpu0) / r.wall
    r.n = len(r.lat)
    return r


# ------------------------------------------------------------------------------------------
# Answers: one normal form for the three sides


def _norm_value(key: str, v: Any) -> Any:
    if v is None:
        return None
    if key.endswith("At"):
        return datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    if key == "floorArea":
        return Decimal(str(v)).normalize()
    if key == "id":
        return str(v)
    return v


def _norm_node(node: dict[str, Any] | None) -> Any:
    if node is None:
        return None
    out: dict[str, Any] = {}
    for k, v in node.items():
        out[k] = _norm_node(v) if isinstance(v, dict) else _norm_value(k, v)
    return out


def normal(scenario: str, data: dict[str, Any]) -> Any:
    if scenario == "page":
        return [_norm_node(n) for n in data["persons"]["nodes"]]
    if scenario == "single":
        return _norm_node(data["person"])
    if "villageAggregate" in data:  # PostGraphile: one row per village
        rows = data["villageAggregate"]["nodes"]
        return sorted((r["village"], int(r["count"])) for r in rows)
    groups = data["personAggregate"]["groups"]
    return sorted((g["key"]["village"], int(g["count"])) for g in groups)


# ------------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    rounds: dict[tuple[str, int], list[Round]] = field(default_factory=dict)


def start_postgraphile(cli: Path, conninfo: str, port: int, pool: int) -> subprocess.Popen[bytes]:
    cmd = [
        str(cli),
        "-c",
        conninfo,
        "-s",
        SCHEMA,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-query-log",
        "--disable-default-mutations",
        "--no-setof-functions-contain-nulls",
        "--disable-graphiql",
        "--max-pool-size",
        str(pool),
    ]
    return subprocess.Popen(cmd, env={**os.environ, "NODE_ENV": "production"}, stdout=subprocess.DEVNULL)


NOOP_JS = """require('http').createServer((q, s) => { q.resume(); q.on('end', () => {
  s.writeHead(200, {'content-type': 'application/json', 'content-length': 11});
  s.end('{"data":{}}'); }); })
  .listen(+process.argv[1], '127.0.0.1');"""


async def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited during start-up")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit(f"{what} did not start")


async def run(args: argparse.Namespace) -> int:
    conninfo = libpq_conninfo(args.database_url)
    print_environment(conninfo)
    settings = Settings(database_url=args.database_url, secret_key=GB.SECRET)
    try:
        cli = await asyncio.to_thread(install_postgraphile, Path(args.scratch))
    except NoNode as exc:
        if args.skip_without_npm:
            print(f"skipped: {exc}")
            return 0
        raise
    rnd = random.Random(args.seed)
    with psycopg.connect(conninfo, autocommit=True) as c:
        persons, max_id = c.execute(
            "SELECT count(*), max(id) FROM lg_person WHERE deleted_at IS NULL"
        ).fetchone() or (0, 0)
        row = c.execute("SELECT id FROM app_user WHERE username = %s", (args.user,)).fetchone()
        townships = [
            r[0]
            for r in c.execute(
                "SELECT DISTINCT left(region_code, 9) FROM lg_house WHERE region_code LIKE %s ORDER BY 1",
                (DISTRICT + "%",),
            )
        ]
        if not persons or not townships or row is None:
            raise SystemExit(
                "no demo district in this database: load one first (`onetable demo --scale full`)"
            )
        with c.transaction():
            c.execute(views_sql().encode())
    print(
        f"demo district: {persons:,} persons, {len(townships)} townships; user {args.user}; "
        f"views in schema {SCHEMA}; PostGraphile {POSTGRAPHILE.split('@')[1]} in {args.scratch}",
        flush=True,
    )
    token = issue_token(settings, cast(Any, SimpleNamespace(id=row[0])))  # only .id is read

    onetable, peer, noop = (
        Side("Onetable", args.port),
        Side("PostGraphile", args.port + 1),
        Side("no-op", args.port + 2),
    )
    onetable.proc = GB.start_server(args.database_url, onetable.port)
    peer.proc = start_postgraphile(cli, conninfo, peer.port, settings.db_pool_size)
    noop.proc = await asyncio.to_thread(subprocess.Popen, ["node", "-e", NOOP_JS, str(noop.port)])
    sql_conns: list[psycopg.AsyncConnection[Any]] = []
    try:
        for side in (onetable, peer, noop):
            assert side.proc is not None
            await wait_port(side.port, side.proc, side.name)
        await GB.wait_ready(f"http://127.0.0.1:{onetable.port}", onetable.proc)
        maxc = max(args.clients)
        sql_conns = [await psycopg.AsyncConnection.connect(conninfo, autocommit=True) for _ in range(maxc)]

        def draw(scenario: str) -> dict[str, Any]:
            if scenario == "page":
                return {"after_id": rnd.randint(0, max(max_id - 100, 0))}
            if scenario == "single":
                return {"id": rnd.randint(1, max_id)}
            return {"t": rnd.choice(townships)}

        def ot_body(scenario: str, v: dict[str, Any]) -> bytes:
            if scenario == "page":
                cursor = base64.urlsafe_b64encode(json.dumps([v["after_id"]]).encode()).decode().rstrip("=")
                variables: dict[str, Any] = {"after": cursor}
            elif scenario == "single":
                variables = {"id": str(v["id"])}
            else:
                variables = {"t": v["t"]}
            return json.dumps({"query": GB.GQL[scenario], "variables": variables}).encode()

        def pg_body(scenario: str, v: dict[str, Any]) -> bytes:
            if scenario == "page":
                cursor = base64.b64encode(json.dumps(["primary_key_asc", [v["after_id"]]]).encode()).decode()
                variables: dict[str, Any] = {"after": cursor}
            elif scenario == "single":
                variables = {"id": str(v["id"])}
            else:
                variables = {"t": v["t"]}
            return json.dumps({"query": PGQL[scenario], "variables": variables}).encode()

        auth = {"Authorization": f"Bearer {token}"}

        async def answer(http: Http, body: bytes) -> dict[str, Any]:
            status, content = await http.post(body)
            doc = json.loads(content)
            if status != 200 or doc.get("errors"):
                raise SystemExit(f"error answer ({status}): {content[:500]!r}")
            return dict(doc["data"])

        # 1. Same answers.
        ot_http, pg_http = Http(onetable.port, "/graphql", auth), Http(peer.port, "/graphql", {})
        for scenario in args.scenarios:
            samples = [draw(scenario) for _ in range(args.check)]
            if scenario == "page":
                samples.append({"after_id": 0})
            for v in samples:
                a = normal(scenario, await answer(ot_http, ot_body(scenario, v)))
                b = normal(scenario, await answer(pg_http, pg_body(scenario, v)))
                cur = await sql_conns[0].execute(GB.SQL[scenario], v)
                got = await cur.fetchone()
                s = normal(scenario, json.loads(got[0]) if got else {"person": None})
                if not (a == b == s):
                    print(
                        f"answers differ for {scenario} {v}:\n  Onetable     {str(a)[:600]}\n"
                        f"  PostGraphile {str(b)[:600]}\n  SQL          {str(s)[:600]}"
                    )
                    return 1
        print(
            f"answers equal: {args.check} samples per scenario (+ the first page), "
            "Onetable = PostGraphile "
            "= hand SQL",
            flush=True,
        )
        await ot_http.close()
        await pg_http.close()

        # 2. Load: one generator, rounds interleaved.
        sql = Side("hand SQL")
        sides = [onetable, peer, sql]
        ot_proc = psutil.Process(onetable.proc.pid)
        pg_proc = psutil.Process(peer.proc.pid)
        round_s = args.seconds / args.rounds
        noop_rounds: dict[int, Round] = {}
        for clients in args.clients:
            https = [Http(noop.port, "/graphql", auth) for _ in range(clients)]
            body = ot_body("single", {"id": 1})

            def noop_call(h: Http, body: bytes) -> Callable[[], Awaitable[None]]:
                async def call() -> None:
                    await h.post(body)

                return call

            noop_rounds[clients] = await closed_loop([noop_call(h, body) for h in https], round_s, None)
            for h in https:
                await h.close()
            nr = noop_rounds[clients]
            print(
                f"no-op ceiling c={clients:<3} {nr.n / nr.wall:8.0f} req/s, load generator CPU "
                f"{nr.gen_cpu:.0%} of one core",
                flush=True,
            )

        for scenario in args.scenarios:
            for clients in args.clients:
                for rnd_no in range(-1, args.rounds):  # round -1 warms up (plans, caches, pools)
                    for side in sides:
                        if side is sql:

                            def sql_call(
                                conn: psycopg.AsyncConnection[Any], scenario: str
                            ) -> Callable[[], Awaitable[None]]:
                                async def call() -> None:
                                    cur = await conn.execute(GB.SQL[scenario], draw(scenario))
                                    await cur.fetchone()

                                return call

                            calls = [sql_call(sql_conns[i], scenario) for i in range(clients)]
                            https = []
                            proc = None
                        else:
                            make = ot_body if side is onetable else pg_body
                            https = [
                                Http(side.port, "/graphql", auth if side is onetable else {})
                                for _ in range(clients)
                            ]

                            def http_call(
                                h: Http, make: Callable[[str, dict[str, Any]], bytes], scenario: str
                            ) -> Callable[[], Awaitable[None]]:
                                async def call() -> None:
                                    status, content = await h.post(make(scenario, draw(scenario)))
                                    if status != 200 or b'"errors":' in content:
                                        raise RuntimeError(f"{status} {content[:200]!r}")

                                return call

                            calls = [http_call(h, make, scenario) for h in https]
                            proc = ot_proc if side is onetable else pg_proc
                        r = await closed_loop(calls, round_s if rnd_no >= 0 else min(round_s, 3.0), proc)
                        for h in https:
                            await h.close()
                        if rnd_no < 0:
                            continue
                        side.rounds.setdefault((scenario, clients), []).append(r)
                        print(
                            f"  {scenario:9} c={clients:<3} round {rnd_no + 1} {side.name:12} "
                            f"{r.n / r.wall:8.1f} req/s p50 {pct(r.lat, 50) * 1000:7.2f} ms "
                            f"errors {r.errors}; generator CPU {r.gen_cpu:4.0%}, server CPU "
                            f"{r.server_cpu:4.0%}",
                            flush=True,
                        )
    finally:
        for aconn in sql_conns:
            await aconn.close()
        for side in (onetable, peer, noop):
            if side.proc is not None:
                side.proc.terminate()
                try:
                    side.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    side.proc.kill()
        if not args.keep_views:
            with psycopg.connect(conninfo, autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")

    print_table(args, sides, noop_rounds)
    print_environment(conninfo)  # again: the load average after the run
    return 0


@dataclass(frozen=True)
class Merged:
    rps: float
    p50: float
    p99: float
    errors: int
    gen_cpu: float
    cpu_ms: float  # server CPU per request: steadier than req/s on a shared machine


def _merged(rounds: list[Round]) -> Merged:
    lat = [x for r in rounds for x in r.lat]
    n = sum(r.n for r in rounds)
    wall = sum(r.wall for r in rounds)
    cpu = sum(r.server_cpu * r.wall for r in rounds)
    return Merged(
        n / wall,
        pct(lat, 50) * 1000,
        pct(lat, 99) * 1000,
        sum(r.errors for r in rounds),
        max(r.gen_cpu for r in rounds),
        cpu / max(n, 1) * 1000,
    )


def print_table(args: argparse.Namespace, sides: list[Side], noop: dict[int, Round]) -> None:
    ot, pg, sql = sides
    print(
        "\n| scenario | clients | Onetable req/s | p50 / p99 ms | PostGraphile req/s "
        "| p50 / p99 ms | "
        "hand SQL req/s | p50 / p99 ms | PostGraphile ÷ Onetable | SQL ÷ Onetable | "
        "server CPU ms/req Onetable / PostGraphile | generator CPU (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    errors = 0
    for scenario in args.scenarios:
        for clients in args.clients:
            a, b, c = (_merged(s.rounds[(scenario, clients)]) for s in (ot, pg, sql))
            errors += a.errors + b.errors + c.errors
            print(
                f"| {scenario} | {clients} | {a.rps:.0f} | {a.p50:.2f} / {a.p99:.2f} | "
                f"{b.rps:.0f} | "
                f"{b.p50:.2f} / {b.p99:.2f} | {c.rps:.0f} | {c.p50:.2f} / {c.p99:.2f} | "
                f"**{b.rps / a.rps:.2f}×** | {c.rps / a.rps:.2f}× | "
                f"{a.cpu_ms:.2f} / {b.cpu_ms:.2f} | "
                f"{max(a.gen_cpu, b.gen_cpu, c.gen_cpu):.0%} |"
            )
    ceil = ", ".join(
        f"{r.n / r.wall:.0f} req/s at {c} client(s) ({r.gen_cpu:.0%} CPU)" for c, r in noop.items()
    )
    print(
        f"\nratios of throughput (> 1: the other side is faster). Load generator ceiling "
        f"against a no-op HTTP server: {ceil}. Rounds: {args.rounds} × "
        f"{args.seconds / args.rounds:.1f} s per side, "
        f"interleaved; errors: {errors}."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--database-url",
        default=os.environ.get("ONETABLE_DATABASE_URL"),
        help="database with a demo district (default: $ONETABLE_DATABASE_URL, else embedded)",
    )
    ap.add_argument("--clients", default="1,32", help="comma-separated client counts (default 1,32)")
    ap.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="measured seconds per side, scenario and client count (split over --rounds)",
    )
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    ap.add_argument("--scenarios", default="page,single,aggregate")
    ap.add_argument("--check", type=int, default=5, help="samples per scenario compared before the load")
    ap.add_argument(
        "--scratch",
        default=os.environ.get("ONETABLE_PEER_SCRATCH", "~/.cache/onetable-peer"),
        help="folder for the npm install of PostGraphile (outside the repository)",
    )
    ap.add_argument("--user", default="mzj", help="demo user whose masks the views reproduce (区民政局)")
    ap.add_argument("--port", type=int, default=8771, help="Onetable port; PostGraphile +1, no-op +2")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--skip-without-npm", action="store_true", help="exit 0 without Node.js/npm or PostGraphile"
    )
    ap.add_argument("--keep-views", action="store_true", help="leave schema peer_bench in the database")
    args = ap.parse_args()
    if not args.database_url:  # the embedded server in ONETABLE_DATA_DIR, kept up while we run
        from app.config import get_settings
        from app.db.engine import resolve_database_url

        args.database_url = resolve_database_url(get_settings())
    args.clients = [int(c) for c in args.clients.split(",")]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
