"""Load test: a realistic mix of callers against the service, open-loop at a target rate, then
closed-loop to saturation. Prints throughput, p50/p95/p99 latency and errors by status.

Callers (each simulated user is one of them, drawn by --mix, default 70/15/15):
  township    a township administrator keeping its ledgers: lists persons (a page of 20, 50 %),
              opens one (30 %), edits one (20 %: PATCH with If-Match of the version it just read)
  department  a department opening aggregates: persons of a township counted per village (GraphQL)
  system      another system pulling GraphQL pages of 100 persons from a random keyset position

Open loop: requests arrive as a Poisson process at users / think-time per second (200 users, 2 s ->
~100 req/s), whatever the service's latency (latency counts from the intended send time, so a slow
service is not hidden by a slower client). Closed loop: N clients without think time, for each N of
--closed; throughput stops growing at saturation.

Without --url the script starts the service itself (uvicorn, one worker, a free port) on the demo
district of --database-url or the embedded server in ONETABLE_DATA_DIR (loading a small district
when the database has none). With --url it drives a running service (demo accounts, password
`onetable`). The machine's load average is printed: figures from a shared machine are not absolute.

  .venv/bin/python scripts/bench/load.py                                  # 200 users, 60 s, closed 16,64
  .venv/bin/python scripts/bench/load.py --users 40 --seconds 10 --closed 8 --closed-seconds 10
  make load LOAD_ARGS='--url http://127.0.0.1:8000'
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [str(ROOT)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--seconds", "2", "--users", "20", "--closed", "4", "--closed-seconds", "2", "--townships", "1"]


SECRET = "load-benchmark-secret-key-at-least-32-bytes!"
PASSWORD = "onetable"  # the demo district's accounts (app/demo/load.py)
PERSONS = "/api/v1/ledgers/person/records"
PAGE = (
    "query($after: String) { persons(first: 100, after: $after) { nodes { id name sex birthDate regionCode "
    "householdType } pageInfo { endCursor hasNextPage } } }"
)
AGGREGATE = (
    "query($t: String!) { personAggregate(filter: {regionCode: {prefix: $t}}, groupBy: [VILLAGE]) "
    "{ count groups { key { village } count } } }"
)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    started: float = 0.0
    ended: float = 0.0
    dropped: int = 0

    def add(self, kind: str, status: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.statuses[status] += 1

    def report(self, title: str) -> None:
        every = [x for xs in self.latencies.values() for x in xs]
        span = max(self.ended - self.started, 1e-9)
        errors = {k: v for k, v in self.statuses.items() if not k.startswith("2")}
        print(
            f"\n{title}: {len(every)} requests in {span:.1f} s = {len(every) / span:.1f} req/s; "
            f"errors {sum(errors.values())} {dict(sorted(errors.items())) or ''}"
            + (f"; {self.dropped} not sent (client at its in-flight cap)" if self.dropped else "")
        )
        print(f"  {'request':<22}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for kind, xs in [*sorted(self.latencies.items()), ("all", every)]:
            if xs:
                print(
                    f"  {kind:<22}{len(xs):>7}{pct(xs, 50):>10.0f}{pct(xs, 95):>10.0f}{pct(xs, 99):>10.0f}"
                    f"{max(xs) * 1000:>10.0f}"
                )
        print(f"  statuses {dict(sorted(self.statuses.items()))}")


def pct(xs: list[float], p: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(p / 100 * len(ys)) - 1))] * 1000 if ys else 0.0


@dataclass
class World:
    townships: list[tuple[str, dict[str, str]]]  # (region prefix, headers) per township account
    departments: list[dict[str, str]]
    system: dict[str, str]
    max_id: int
    ids: dict[str, list[int]] = field(default_factory=dict)  # record ids a township has seen


class Mix:
    def __init__(
        self, http: httpx.AsyncClient, world: World, weights: tuple[int, int, int], rnd: random.Random
    ):
        self.http, self.world, self.rnd = http, world, rnd
        self.kinds = rnd.choices(["township", "department", "system"], weights=weights, k=10_000)
        self.n = 0

    async def one(self, tally: Tally, intended: float | None = None) -> None:
        self.n += 1
        kind = self.kinds[self.n % len(self.kinds)]
        t0 = intended if intended is not None else time.perf_counter()
        name = kind
        try:
            if kind == "township":
                name, r = await self._township()
            elif kind == "department":
                prefix, _ = self.rnd.choice(self.world.townships)
                r = await self.http.post(
                    "/graphql",
                    json={"query": AGGREGATE, "variables": {"t": prefix}},
                    headers=self.rnd.choice(self.world.departments),
                )
                name = "department aggregate"
            else:
                after = self.rnd.randint(0, max(self.world.max_id - 100, 0))
                cursor = base64.urlsafe_b64encode(json.dumps([after]).encode()).decode().rstrip("=")
                r = await self.http.post(
                    "/graphql",
                    json={"query": PAGE, "variables": {"after": cursor}},
                    headers=self.world.system,
                )
                name = "system graphql page"
            status = str(r.status_code)
            if r.status_code == 200 and name.endswith(("aggregate", "page")) and b'"errors":' in r.content:
                status = "200+graphql-errors"
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        tally.add(name, status, time.perf_counter() - t0)

    async def _township(self) -> tuple[str, httpx.Response]:
        prefix, headers = self.rnd.choice(self.world.townships)
        seen = self.world.ids.get(prefix)
        roll = self.rnd.random()
        if not seen or roll < 0.5:
            # A page of 20 in one of the orders a township uses, from a random year of birth on.
            params = {
                "limit": 20,
                "order": self.rnd.choice(["name", "birth_date.desc", "id"]),
                "birth_date": f"gte.{self.rnd.randint(1930, 2015)}-01-01",
            }
            r = await self.http.get(PERSONS, params=params, headers=headers)
            if r.status_code == 200:
                items = r.json()
                items = items.get("items", items) if isinstance(items, dict) else items
                ids = [it["id"] for it in items if isinstance(it, dict) and "id" in it]
                if ids:
                    self.world.ids[prefix] = ids
            return "township list", r
        record = self.rnd.choice(seen)
        r = await self.http.get(f"{PERSONS}/{record}", headers=headers)
        if roll < 0.8 or r.status_code != 200:
            return "township read", r
        version = r.json()["version"]
        phone = f"139{self.rnd.randint(0, 99_999_999):08d}"
        r = await self.http.patch(
            f"{PERSONS}/{record}", json={"phone": phone}, headers={**headers, "If-Match": f'W/"{version}"'}
        )
        return "township edit (read+patch)", r


async def open_loop(mix: Mix, users: int, think: float, seconds: float, max_in_flight: int) -> Tally:
    tally = Tally()
    rate = users / think
    tasks: set[asyncio.Task] = set()
    tally.started = start = time.perf_counter()
    next_at = start
    while next_at < start + seconds:
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            tally.dropped += 1
        else:
            task = asyncio.create_task(mix.one(tally, intended=next_at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        next_at += mix.rnd.expovariate(rate)
    await asyncio.gather(*tasks)
    tally.ended = time.perf_counter()
    return tally


async def closed_loop(mix: Mix, clients: int, seconds: float) -> Tally:
    tally = Tally()
    tally.started = time.perf_counter()
    stop = tally.started + seconds

    async def client() -> None:
        while time.perf_counter() < stop:
            await mix.one(tally)

    await asyncio.gather(*(client() for _ in range(clients)))
    tally.ended = time.perf_counter()
    return tally


async def login(http: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    if r.status_code != 200:
        raise SystemExit(f"login as {username}: {r.status_code} {r.text[:300]}")
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def discover(http: httpx.AsyncClient, townships: int) -> World:
    admin = await login(http, "admin")
    r = await http.get("/api/v1/users", params={"limit": 500}, headers=admin)
    r.raise_for_status()
    names = sorted(u["username"] for u in r.json() if "township_admin" in u["roles"] and u["active"])
    if not names:
        raise SystemExit("no township accounts: is this the demo district? (onetable demo)")
    chosen = names[:townships]
    town = [(name[1:], await login(http, name)) for name in chosen]  # t<9-digit code>
    departments = [await login(http, name) for name in ("mzj", "cl")]
    system = await login(http, "mzj")
    r = await http.get(PERSONS, params={"limit": 1, "order": "id.desc"}, headers=system)
    max_id = 1000
    if r.status_code == 200:
        items = r.json()
        items = items.get("items", items) if isinstance(items, dict) else items
        max_id = max([it.get("id", 0) for it in items if isinstance(it, dict)] or [1000])
    return World(town, departments, system, max_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database(args) -> str:
    """The database URL to serve from, migrated, with a demo district in it (a small one if none)."""
    import psycopg
    from alembic import command
    from alembic.config import Config

    from app.config import get_settings
    from app.db.engine import libpq_conninfo, normalise_url, resolve_database_url
    from scripts.bench._env import print_environment

    # The embedded server (no --database-url) stays up while this process runs.
    url = normalise_url(args.database_url) if args.database_url else resolve_database_url(get_settings())
    print_environment(url)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    with psycopg.connect(libpq_conninfo(url)) as c:
        persons = c.execute("SELECT count(*) FROM lg_person").fetchone()[0]
    if not persons:
        from app.demo.load import load_demo

        print("no demo district in this database: loading a small one …", flush=True)
        load_demo(libpq_conninfo(url), scale="small", seed=20261123, reset=False)
    return url


def start_server(url: str, port: int, workers: int) -> subprocess.Popen:
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


async def wait_ready(base: str, proc: subprocess.Popen | None) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(300):
            if proc is not None and proc.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not become ready")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running service; without it one is started here")
    ap.add_argument("--database-url", help="database for the service started here (default: embedded)")
    ap.add_argument("--users", type=int, default=200, help="open loop: simulated users")
    ap.add_argument("--think", type=float, default=2.0, help="open loop: mean think time per user (s)")
    ap.add_argument("--seconds", type=float, default=60.0, help="open loop duration (0: skip)")
    ap.add_argument("--closed", default="16,64", help="closed loop client counts, comma-separated ('': skip)")
    ap.add_argument("--closed-seconds", type=float, default=30.0)
    ap.add_argument("--mix", default="70,15,15", help="weights township,department,system")
    ap.add_argument("--townships", type=int, default=8, help="township accounts used")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers of the service started here")
    ap.add_argument("--max-in-flight", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    proc = None
    base = args.url
    if base is not None:  # a running service: its database is not known here, the client side is
        from scripts.bench._env import describe_host

        print(f"environment: PostgreSQL of {base} not known here; {describe_host()}", flush=True)
    if base is None:
        url = database(args)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(url, port, args.workers)
    try:
        await wait_ready(base, proc)
        limits = httpx.Limits(max_connections=args.max_in_flight, max_keepalive_connections=256)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
            world = await discover(http, args.townships)
            weights = tuple(int(x) for x in args.mix.split(","))
            mix = Mix(http, world, weights, random.Random(args.seed))  # type: ignore[arg-type]
            print(
                f"service {base}; {len(world.townships)} township accounts, max person id {world.max_id}; "
                f"mix township/department/system {args.mix}; {os.cpu_count()} CPUs, "
                f"load average {os.getloadavg()[0]:.1f} (a shared machine: compare runs, not absolutes)",
                flush=True,
            )
            await closed_loop(mix, 4, 3.0)  # warm up: plans, caches, connections
            if args.seconds > 0:
                tally = await open_loop(mix, args.users, args.think, args.seconds, args.max_in_flight)
                tally.report(
                    f"open loop: {args.users} users, {args.think:g} s think time "
                    f"(offered {args.users / args.think:.0f} req/s) for {args.seconds:g} s"
                )
            for clients in [int(x) for x in args.closed.split(",") if x.strip()]:
                tally = await closed_loop(mix, clients, args.closed_seconds)
                tally.report(f"closed loop: {clients} clients, no think time, {args.closed_seconds:g} s")
            print(f"\nload average now {os.getloadavg()[0]:.1f}")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    asyncio.run(main())
