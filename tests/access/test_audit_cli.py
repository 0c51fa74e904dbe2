"""`onetable audit verify` against a committed audit log in its own database, before and after tampering."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from typer.testing import CliRunner

from app.access import audit, audit_chain
from app.cli import main
from app.config import get_settings
from app.db.engine import libpq_conninfo
from tests.conftest import own_database


@pytest.fixture
def audit_db(database_url):
    with own_database(database_url, "onetable_audit") as (url, _cfg):
        yield url


def _verify(url: str, monkeypatch):
    monkeypatch.setenv("ONETABLE_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, ["audit", "verify"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        get_settings.cache_clear()


async def _seed(url: str) -> None:
    engine = create_async_engine(url)
    async with async_sessionmaker(engine)() as s:
        for i in range(5):
            await audit.append(
                s,
                actor=f"user:{i}:u{i}",
                action="update",
                path="rest",
                ledger="person",
                record_ids=[i + 1],
                fields=["phone"],
            )
        await s.commit()
    assert await audit_chain.run_chainer(engine) is not None  # what the service does every second
    await engine.dispose()


def test_audit_verify_detects_a_hand_edited_row(audit_db, monkeypatch):
    # Sync test: the CLI runs its own event loop, as it does from a shell.
    asyncio.run(_seed(audit_db))
    ok = _verify(audit_db, monkeypatch)
    assert ok.exit_code == 0, ok.output
    assert "5" in ok.output
    with psycopg.connect(libpq_conninfo(audit_db), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # what a superuser bypassing the trigger does
        third = conn.execute("SELECT id FROM audit_log ORDER BY id OFFSET 2 LIMIT 1").fetchone()[0]
        conn.execute("UPDATE audit_log SET fields = '{name}' WHERE id = %s", (third,))
    bad = _verify(audit_db, monkeypatch)
    assert bad.exit_code == 1, bad.output
    assert str(third) in bad.output
