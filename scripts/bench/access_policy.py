"""Overhead of the access policy on a list of 1,000 persons, measured in one run.

Compares, on the loaded demo district (run `onetable demo --scale full` first):
  plain      the same columns by one hand-written SELECT: no masks, no row scope;
  scoped     plain plus the user's area written by hand (region_code LIKE ...): the SQL a clerk's
             report tool would run;
  policy     the statement the policy compiles for the user (masks in SQL, row scope);
  service    the whole REST service call (grants lookup, policy, query, audit, rows -> dicts).
Prints median and p95 per variant and the ratios to plain.

Usage: .venv/bin/python scripts/bench/access_policy.py [--database-url URL] [--rounds 30] [--user cl]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pydantic import SecretStr
from sqlalchemy import select, text

from app.access.policy import policy_for
from app.auth.deps import authenticate
from app.auth.tokens import issue_token
from app.config import Settings, get_settings
from app.db.engine import make_engine, make_sessionmaker, resolve_database_url
from app.ledger import service
from app.org.models import User
from scripts.bench._env import print_environment

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--rounds", "3"]

PAGE = 1000


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--user", default="cl", help="demo user whose grants apply (default: 区残联 cl)")
    args = ap.parse_args()
    settings: Settings = get_settings()
    if settings.secret_key is None:  # the token below is made and checked in this process only
        settings = settings.model_copy(
            update={"secret_key": SecretStr("access-policy-bench-secret-32-bytes!!")}
        )
    url = args.database_url or resolve_database_url(settings)
    print_environment(url)
    engine = make_engine(url, settings)
    maker = make_sessionmaker(engine)
    async with maker() as s:
        persons = (await s.execute(text("SELECT count(*) FROM lg_person"))).scalar()
        user = (await s.execute(select(User).where(User.username == args.user))).scalar_one()
        principal = await authenticate(s, settings, bearer=issue_token(settings, user), api_key=None)
        policy = await policy_for(s, principal, "person")
    t = policy.table
    cols = [t.c[c.name] for c in t.columns if c.name not in ("provenance", "flags", "deleted_at")]
    order = (t.c.region_code, t.c.id)  # the list endpoint's default order
    plain = select(*cols).order_by(*order).limit(PAGE)
    scoped = (
        select(*cols)
        .where(t.c.region_code.like(principal.region_prefix + "%"), t.c.deleted_at.is_(None))
        .order_by(*order)
        .limit(PAGE)
    )
    compiled = select(*policy.select_columns()).where(policy.scope_clause()).order_by(*order).limit(PAGE)

    async def run_plain(s):
        return len((await s.execute(plain)).all())

    async def run_scoped(s):
        return len((await s.execute(scoped)).all())

    async def run_policy(s):
        return len((await s.execute(compiled)).all())

    async def run_service(s):
        page = await service.list_records(s, principal, "person", [], order=None, limit=PAGE, cursor=None)
        await s.rollback()  # don't keep audit rows the benchmark wrote
        return len(page["items"])

    variants = {"plain": run_plain, "scoped": run_scoped, "policy": run_policy, "service": run_service}
    times: dict[str, list[float]] = {k: [] for k in variants}
    async with maker() as s:
        for fn in variants.values():  # warm-up: plans, caches, pages in memory
            assert await fn(s) == PAGE
        for _ in range(args.rounds):
            for name, fn in variants.items():  # interleaved so drift hits every variant alike
                t0 = time.perf_counter()
                await fn(s)
                times[name].append(time.perf_counter() - t0)
    await engine.dispose()
    base = statistics.median(times["plain"])
    print(
        f"persons in district: {persons:,}; page: {PAGE}; rounds: {args.rounds}; user: {args.user} "
        f"(scope {list(policy.scope)}, masked: {[f.field.code for f in policy.visible() if f.level == 1]})"
    )
    print(f"{'variant':<10}{'median ms':>12}{'p95 ms':>10}{'ratio':>8}")
    for name, ts in times.items():
        med = statistics.median(ts)
        p95 = sorted(ts)[int(0.95 * (len(ts) - 1))]
        print(f"{name:<10}{med * 1000:>12.2f}{p95 * 1000:>10.2f}{med / base:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
