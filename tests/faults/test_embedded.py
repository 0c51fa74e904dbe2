"""The embedded PostgreSQL under faults: a stale postmaster.pid naming an unrelated live process is
cleared without signalling that process, and a postmaster killed with SIGKILL is restarted by the
service's watcher, after which requests succeed again (same data, no service restart)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import psycopg

from app.config import Settings
from app.db import engine as engine_mod
from app.db.embedded import clear_stale_pid_files, embedded_url, is_our_postmaster, start_embedded
from app.db.engine import libpq_conninfo
from app.main import create_app


def _stale_pid_file(pgdata: Path, pid: int) -> None:
    """A postmaster.pid as PostgreSQL writes it, naming pid."""
    lines = [
        str(pid),
        str(pgdata),
        str(int(time.time())),
        "5432",
        str(pgdata),
        "",
        "  5432001         0",
        "ready   ",
    ]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")


def test_a_stale_pid_file_naming_another_process_never_signals_it(tmp_path):
    server = start_embedded(tmp_path)  # initdb, start
    pgdata = tmp_path / "pg"
    assert is_our_postmaster(server.get_pid(), pgdata)
    server.cleanup()  # stopped; postmaster.pid gone
    stranger = subprocess.Popen(["sleep", "300"])
    try:
        _stale_pid_file(pgdata, stranger.pid)
        assert not is_our_postmaster(stranger.pid, pgdata)

        again = start_embedded(tmp_path)  # the stale file is cleared, a real postmaster started
        assert again.get_pid() != stranger.pid and is_our_postmaster(again.get_pid(), pgdata)
        with psycopg.connect(libpq_conninfo(embedded_url(again, "postgres")), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        again.cleanup()  # stopping the server at exit signals only the postmaster
        assert stranger.poll() is None and psutil.Process(stranger.pid).status() != psutil.STATUS_ZOMBIE

        # And with the pid file of a process that is gone: cleared as well.
        _stale_pid_file(pgdata, stranger.pid)
        os.kill(stranger.pid, signal.SIGKILL)
        stranger.wait()
        assert clear_stale_pid_files(pgdata) and not (pgdata / "postmaster.pid").exists()
    finally:
        if stranger.poll() is None:
            stranger.kill()
            stranger.wait()


def test_a_live_postmaster_pid_file_is_left_alone(tmp_path):
    server = start_embedded(tmp_path)
    try:
        assert not clear_stale_pid_files(tmp_path / "pg")
        assert (tmp_path / "pg" / "postmaster.pid").exists() and is_our_postmaster(
            server.get_pid(), tmp_path / "pg"
        )
    finally:
        server.cleanup()


async def test_the_service_restarts_its_embedded_server_after_kill_9(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_mod, "_embedded_server", None)
    settings = Settings(
        database_url=None,
        data_dir=tmp_path,
        database_name="onetable_watch",
        secret_key="test-secret-key-at-least-32-bytes-long!!",
        embedded_watch_seconds=0.5,
    )
    app = create_app(settings)
    server = None
    try:
        async with app.router.lifespan_context(app):
            server = engine_mod._embedded_server
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/readyz")).status_code == 200
                first = server.get_pid()
                os.kill(first, signal.SIGKILL)
                await asyncio.to_thread(_wait_gone, first)

                seen = set()
                deadline = time.monotonic() + 90  # a bound for a busy machine, not a timing claim
                while time.monotonic() < deadline:
                    r = await client.get("/readyz")
                    seen.add(r.status_code)
                    if r.status_code == 200:
                        break
                    assert r.status_code == 503 and r.json()["code"] == "service.database_unavailable"
                    assert r.headers["retry-after"].isdigit()
                    await asyncio.sleep(0.3)
                assert 200 in seen, f"not restarted: {seen}"
                assert server.get_pid() != first and is_our_postmaster(server.get_pid(), tmp_path / "pg")
    finally:
        if server is not None:
            server.cleanup()


def _wait_gone(pid: int) -> None:
    try:
        psutil.Process(pid).wait(30)
    except psutil.NoSuchProcess:
        pass
