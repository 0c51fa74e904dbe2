"""Audit appends under concurrency: the old global chain lock against the new unlocked append and a plain INSERT.

Each of --clients connections runs --tx transactions shaped like an audited request: the audit append,
then the rest of the request (--work-ms of server time, pg_sleep), then COMMIT. Variants:
  plain   INSERT of the same row into a copy of audit_log (no trigger, no chain): the floor
  locked  the append before migration 0014: pg_advisory_xact_lock, read the previous hash, INSERT the
          hashed row; the lock is held to COMMIT, so the rest of every request runs one at a time
  new     app.access.audit.append (INSERT, no lock, no hash) while the service's chainer
          (app.access.audit_chain.chain_forever) seals in the background every second
Prints transactions/s per variant and the ratios to plain, and checks the new rows end up sealed.
Runs in a scratch database it creates and drops (name onetable_bench_append_<pid>).

Usage: .venv/bin/python scripts/bench/audit_append.py [--database-url URL] [--clients 16] [--tx 40] [--work-ms 5]
Without --database-url: ONETABLE_DATABASE_URL (a PostgreSQL server; only its address is used).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from app.access import audit, audit_chain
from app.access.audit_models import AuditEntry
from app.db.engine import libpq_conninfo, normalise_url
from scripts.bench._env import print_environment

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--clients", "4", "--tx", "5", "--work-ms", "1"]


OLD_LOCK_KEY = 0x0E7AB1E


def _row(i: int) -> dict:
    return {
        "actor": f"user:{i}:bench",
        "action": "read_sensitive",
        "path": "graphql",
        "ledger": "person",
        "record_ids": [i, i + 1, i + 2],
        "fields": ["id_number"],
    }


async def plain(s, i: int) -> None:
    r = _row(i)
    await s.execute(
        text(
            "INSERT INTO bench_plain (at, actor, action, path, ledger, record_ids, fields, detail) "
            "VALUES (now(), :actor, :action, :path, :ledger, :record_ids, :fields, '{}')"
        ),
        r,
    )


async def locked(s, i: int) -> None:
    """app/access/audit.py's append before migration 0014, as it was."""
    await s.execute(select(func.pg_advisory_xact_lock(OLD_LOCK_KEY)))
    prev = await s.scalar(
        select(AuditEntry.hash).where(AuditEntry.hash.is_not(None)).order_by(AuditEntry.id.desc()).limit(1)
    )
    e = AuditEntry(
        at=datetime.now(UTC), detail={}, request_id=None, prev_hash=prev or audit_chain.GENESIS, **_row(i)
    )
    e.hash = audit_chain.digest(e.prev_hash, e)
    s.add(e)
    await s.flush()


async def new(s, i: int) -> None:
    await audit.append(s, **_row(i))


async def run(engine: AsyncEngine, variant, clients: int, tx: int, work_ms: float) -> float:
    maker = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    async def client(c: int) -> None:
        for t in range(tx):
            async with maker() as s:
                await variant(s, c * tx + t)
                await s.execute(text("SELECT pg_sleep(:s)"), {"s": work_ms / 1000})  # the rest of the request
                await s.commit()

    start = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return clients * tx / (time.perf_counter() - start)


async def bench(url: str, args: argparse.Namespace) -> None:
    engine = create_async_engine(url, pool_size=args.clients + 2, max_overflow=0)
    try:
        async with engine.begin() as c:
            await c.execute(
                text("CREATE TABLE bench_plain (LIKE audit_log INCLUDING DEFAULTS INCLUDING IDENTITY)")
            )
        await run(engine, new, 2, 5, 0)  # warm the pool and plans
        results = {}
        for name, variant in (("plain", plain), ("locked", locked), ("new", new)):
            async with engine.begin() as c:
                await c.execute(text("TRUNCATE audit_log, bench_plain RESTART IDENTITY"))
            chainer = None
            if name == "new":
                chainer = asyncio.create_task(audit_chain.chain_forever(engine, 1.0, None, 60.0))
            results[name] = await run(engine, variant, args.clients, args.tx, args.work_ms)
            if chainer is not None:
                await audit_chain.run_chainer(engine)  # the pass that catches the last commits
                chainer.cancel()
                async with engine.connect() as c:
                    report = await audit_chain.verify(c)
                assert report.ok and report.unsealed == 0 and report.checked == args.clients * args.tx, report
            print(f"{name:7} {results[name]:8.1f} tx/s", flush=True)
        print(
            f"clients {args.clients}, {args.tx} transactions each, {args.work_ms} ms of request after the append; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"ratio to plain INSERT: locked {results['locked'] / results['plain']:.2f}, "
            f"new {results['new'] / results['plain']:.2f}; new / locked {results['new'] / results['locked']:.1f}x"
        )
    finally:
        await engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default=os.environ.get("ONETABLE_DATABASE_URL"))
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--tx", type=int, default=40, help="transactions per client and variant")
    ap.add_argument("--work-ms", type=float, default=5.0, help="server time per request after the append")
    args = ap.parse_args()
    if not args.database_url:
        raise SystemExit(
            "--database-url or ONETABLE_DATABASE_URL: a PostgreSQL server to create a scratch database on"
        )
    name = f"onetable_bench_append_{os.getpid()}"
    url = make_url(normalise_url(args.database_url)).set(database=name).render_as_string(hide_password=False)
    admin = libpq_conninfo(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    print_environment(admin)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["url"] = url
        command.upgrade(cfg, "head")
        asyncio.run(bench(url, args))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
