"""Load the demo district (永川区): migrate to head, then app.demo.load.load_demo.

python scripts/demo_district.py --scale full --reset
ONETABLE_DATA_DIR=/tmp/demo-pg python scripts/demo_district.py   # embedded server in that folder
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout

from alembic import command
from alembic.config import Config

from app.config import get_settings
from app.db.engine import libpq_conninfo, resolve_database_url
from app.demo.generate import SCALES
from app.demo.load import load_demo


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Load the 永川区 demo district into the database.")
    ap.add_argument("--scale", choices=list(SCALES), default="small")
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--reset", action="store_true", help="empty ledgers and org tables first")
    ap.add_argument("--database-url", help="default: ONETABLE_DATABASE_URL or the embedded server")
    args = ap.parse_args(argv)

    url = args.database_url or resolve_database_url(get_settings())
    started = time.perf_counter()
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    print(f"migrated           {time.perf_counter() - started:8.1f}s", flush=True)

    def progress(stage: str, rows: int) -> None:
        print(f"{stage:<18} {rows:>10,} rows {time.perf_counter() - started:8.1f}s", flush=True)

    result = load_demo(
        libpq_conninfo(url), scale=args.scale, seed=args.seed, reset=args.reset, progress=progress
    )
    elapsed = time.perf_counter() - started
    key = result.pop("service_account_key", None)
    print()
    for table, n in result.items():
        print(f"  {table:<24} {n:>10,}")
    print(f"  {'total':<24} {sum(int(n) for n in result.values()):>10,}")
    print(f"\nelapsed {elapsed:.1f}s")
    if key:
        print(f"service account demo-system key (shown once): {key}")
    print("demo users: admin, cl, mzj, nyncw, t<township code>, v<village code>; password: onetable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
