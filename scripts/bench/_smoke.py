"""`make bench-smoke`: every benchmark once, briefly, on a small demo district (CI runs it on the
embedded PostgreSQL and on PostgreSQL 15).

Not a measurement: it proves each bench still starts, finds its data, checks its answers and prints
its environment line and ratios, so a bench broken by a schema or API change is noticed on the day.
Each bench declares its own quick profile as a module-level list `SMOKE_ARGS` (read here without
importing it); `--database-url URL` is appended. A bench without SMOKE_ARGS is reported and skipped.

Usage: .venv/bin/python scripts/bench/_smoke.py [--database-url postgresql://…/postgres]
       [--only NAME]
Without --database-url the embedded server in ONETABLE_DATA_DIR (default var/) is used. The district
goes into a scratch database `onetable_bench_smoke` on that server, dropped at the end.
"""

from __future__ import annotations

import argparse
import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

from sqlalchemy.engine import make_url

from app.config import Settings
from app.db.engine import ensure_database, libpq_conninfo, normalise_url, resolve_database_url

DATABASE = "onetable_bench_smoke"


def smoke_args(path: Path) -> list[str] | None:
    """The bench's SMOKE_ARGS literal, or None when it declares none."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "SMOKE_ARGS":
            return [str(v) for v in ast.literal_eval(value)]
    return None


def scratch_url(server_url: str | None) -> str:
    if server_url:
        url = make_url(normalise_url(server_url)).set(database=DATABASE).render_as_string(hide_password=False)
        ensure_database(url)
        return url
    # Embedded: this process keeps the server up while the benches run as child processes.
    return resolve_database_url(Settings(database_url=None, database_name=DATABASE))


def drop(url: str) -> None:
    import psycopg

    admin = libpq_conninfo(
        make_url(normalise_url(url)).set(database="postgres").render_as_string(hide_password=False)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--database-url",
        default=os.environ.get("ONETABLE_DATABASE_URL"),
        help="a PostgreSQL server (the database part is replaced); default: embedded",
    )
    ap.add_argument("--only", action="append", default=[], help="run only this bench (file stem); repeatable")
    ap.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per bench before it counts as failed"
    )
    args = ap.parse_args()

    from alembic import command
    from alembic.config import Config

    from app.demo.load import load_demo

    t0 = time.monotonic()
    url = scratch_url(args.database_url)
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["url"] = url
        command.upgrade(cfg, "head")
        load_demo(libpq_conninfo(url), scale="small", seed=20261123, reset=True)
        print(f"small demo district ready in {time.monotonic() - t0:.0f} s", flush=True)
        failed, skipped = [], []
        for path in sorted(HERE.glob("*.py")):
            if path.name.startswith("_") or (args.only and path.stem not in args.only):
                continue
            extra = smoke_args(path)
            if extra is None:
                skipped.append(path.name)
                continue
            cmd = [sys.executable, str(path), "--database-url", url, *extra]
            print(f"\n==> {path.name} {' '.join(extra)}", flush=True)
            started = time.monotonic()
            env = {**os.environ, "ONETABLE_DATABASE_URL": url}
            # Own process group: a bench that overruns is stopped with the servers it started.
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=args.timeout)
            except KeyboardInterrupt:
                os.killpg(proc.pid, signal.SIGTERM)
                raise
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                rc = -1
            print(
                f"<== {path.name}: {'ok' if rc == 0 else f'FAILED ({rc})'} in "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
            if rc != 0:
                failed.append(path.name)
    finally:
        drop(url)
    print(
        f"\nbench smoke: {len(failed)} failed {failed or ''}; without SMOKE_ARGS (skipped): "
        f"{skipped or 'none'}; {time.monotonic() - t0:.0f} s in all"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
