"""The environment line every benchmark prints before its figures.

A ratio measured on a loaded 2-core machine against PostgreSQL 15 is not the same figure as one
on a quiet machine against PostgreSQL 18: the server version, the settings that change plans, and
the load average go next to every number so two runs can be compared honestly.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

# Settings that change plans or timings of the statements the benches run.
PLAN_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "effective_cache_size",
    "random_page_cost",
    "jit",
    "max_parallel_workers_per_gather",
)


def describe(conn: Any) -> str:
    """One line: server version and plan settings (conn: psycopg or SQLAlchemy connection)."""
    values = []
    for name in PLAN_SETTINGS:
        try:
            row = conn.execute(f"SHOW {name}").fetchone()  # psycopg
        except TypeError:  # SQLAlchemy wants text()
            from sqlalchemy import text

            row = conn.execute(text(f"SHOW {name}")).fetchone()
        values.append(f"{name}={row[0]}")
    return f"environment: PostgreSQL {' '.join(values)}; {describe_host()}"


def describe_host() -> str:
    """The client side: interpreter, CPUs and load average (for runs against a remote service)."""
    load1, load5, _ = os.getloadavg()
    return (
        f"python {platform.python_version()} on {sys.platform}, {os.cpu_count()} CPUs, "
        f"load average {load1:.1f}/{load5:.1f}"
    )


def print_environment(database_url: str) -> None:
    """Connect once with psycopg and print the environment line."""
    import psycopg

    from app.db.engine import libpq_conninfo

    with psycopg.connect(libpq_conninfo(database_url), autocommit=True) as conn:
        print(describe(conn), flush=True)
