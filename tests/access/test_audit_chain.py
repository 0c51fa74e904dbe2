"""The audit chain off the request path: appends that never wait for each other, one chainer that
seals committed rows in order, and verify naming edits, removals, insertions and a truncated tail.

Most tests commit for real (concurrency, rollbacks and the chainer's own transactions are the point),
so they use a database of their own, emptied before each test.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from typer.testing import CliRunner, Result

from app.access import audit, audit_chain
from app.access.audit_anchor import read_anchors
from app.access.audit_models import AuditEntry
from app.cli import main
from app.config import get_settings
from app.db.engine import libpq_conninfo
from tests.access.test_access_rules import grant
from tests.conftest import ROOT, own_database
from tests.ledger.test_records import create, person


@pytest.fixture(scope="module")
def chain_url(database_url):
    with own_database(database_url, "onetable_auditchain") as (url, _cfg):
        yield url


@pytest.fixture
async def eng(chain_url) -> AsyncEngine:
    engine = create_async_engine(chain_url, pool_size=4)
    async with engine.begin() as c:
        await c.execute(text("TRUNCATE audit_log RESTART IDENTITY"))  # TRUNCATE fires no row trigger
    yield engine
    await engine.dispose()


def _raw(url: str) -> psycopg.Connection:
    """A superuser's connection that bypasses the append-only trigger, as a tamperer would."""
    conn = psycopg.connect(libpq_conninfo(url), autocommit=True)
    conn.execute("SET session_replication_role = replica")
    return conn


async def _append(s, i: int) -> AuditEntry:
    return await audit.append(
        s,
        actor=f"user:{i}:u{i}",
        action="update",
        path="rest",
        ledger="person",
        record_ids=[i],
        fields=["phone"],
    )


async def _committed(engine: AsyncEngine, n: int, start: int = 1) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        for i in range(start, start + n):
            await _append(s, i)
        await s.commit()


async def _chain(engine: AsyncEngine) -> list[tuple[int, int | None]]:
    """(id, chain_pos) of every row, by id."""
    async with engine.connect() as c:
        return [
            tuple(r)
            for r in (
                await c.execute(select(AuditEntry.id, AuditEntry.chain_pos).order_by(AuditEntry.id))
            ).all()
        ]


async def _verify(engine: AsyncEngine, anchors=()) -> audit_chain.ChainReport:
    async with engine.connect() as c:
        return await audit_chain.verify(c, anchors)


async def test_appends_never_wait_for_each_other_and_late_commits_are_sealed_after(eng, chain_url):
    maker = async_sessionmaker(eng, expire_on_commit=False)
    async with maker() as a:
        first = await _append(a, 1)  # A: row inserted, transaction left open
        held = await a.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        )
        assert held == 0  # the old append held the one chain lock from here to commit
        async with maker() as b:
            # With the old global lock B waited on A, which is waiting on B: lock_timeout turns that
            # into an error instead of a hung test.
            await b.execute(text("SET LOCAL lock_timeout = '5s'"))
            second = await _append(b, 2)
            await b.commit()
        assert first.id < second.id
        # The chainer seals what is committed (B's row, the higher id) without waiting for A.
        run = await audit_chain.run_chainer(eng)
        assert run is not None and run.sealed == 1 and run.head.id == second.id
        await a.commit()
    run = await audit_chain.run_chainer(eng)
    assert run.sealed == 1 and run.head.pos == 2
    assert await _chain(eng) == [(first.id, 2), (second.id, 1)]  # seal order, not id order
    report = await _verify(eng)
    assert report.ok and report.checked == 2 and report.unsealed == 0


async def test_a_rolled_back_write_leaves_no_row_and_no_broken_chain(eng):
    await _committed(eng, 2)
    async with async_sessionmaker(eng, expire_on_commit=False)() as s:
        await _append(s, 3)
        await s.execute(text("SELECT 1"))  # ... the write fails after its audit row ...
        await s.rollback()
    await _committed(eng, 1, start=4)
    await audit_chain.run_chainer(eng)
    rows = await _chain(eng)
    assert [i for i, _ in rows] == [1, 2, 4]  # id 3 was handed out and rolled back: a gap
    assert [p for _, p in rows] == [1, 2, 3]  # positions have none
    report = await _verify(eng)
    assert report.ok and report.checked == 3


async def test_one_chainer_at_a_time(eng, chain_url):
    await _committed(eng, 2)
    with psycopg.connect(libpq_conninfo(chain_url), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (audit_chain.CHAIN_LOCK_KEY,))
        assert await audit_chain.run_chainer(eng) is None  # another process is chaining: skip
        assert [p for _, p in await _chain(eng)] == [None, None]
    run = await audit_chain.run_chainer(eng)
    assert run.sealed == 2
    report = await _verify(eng)
    assert report.ok and report.checked == 2 and report.unsealed == 0
    # The lock went back with the pass: a second pass takes it again and has nothing to do.
    assert (await audit_chain.run_chainer(eng)).sealed == 0


async def test_chainer_seals_a_valid_chain_and_anchors_its_head(eng, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    await _committed(eng, 5)
    assert (await _verify(eng)).unsealed == 5
    run = await audit_chain.run_chainer(eng, anchor_file=anchors, force_anchor=True)
    assert run.sealed == 5 and run.anchored and run.head.pos == 5
    async with async_sessionmaker(eng)() as s:
        rows = (await s.scalars(select(AuditEntry).order_by(AuditEntry.chain_pos))).all()
    prev = audit_chain.GENESIS
    for pos, e in enumerate(rows, 1):
        assert (e.chain_pos, e.prev_hash, e.hash) == (pos, prev, audit_chain.digest(prev, e))
        prev = e.hash
    (a,) = read_anchors(anchors)
    assert (a.pos, a.id, a.hash) == (5, rows[-1].id, rows[-1].hash)
    # Nothing new: no second line. New rows, anchor not yet due: none either; forced: one.
    assert not (await audit_chain.run_chainer(eng, anchor_file=anchors, force_anchor=True)).anchored
    await _committed(eng, 1, start=6)
    assert not (await audit_chain.run_chainer(eng, anchor_file=anchors, anchor_every=3600)).anchored
    assert (await audit_chain.run_chainer(eng, anchor_file=anchors, force_anchor=True)).anchored
    assert [x.pos for x in read_anchors(anchors)] == [5, 6]
    report = await _verify(eng, read_anchors(anchors))
    assert report.ok and report.checked == 6 and report.anchors == 2


async def test_the_seal_is_the_only_update_the_trigger_allows(eng, chain_url):
    await _committed(eng, 1)
    with psycopg.connect(libpq_conninfo(chain_url), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException):  # content change while unsealed
            conn.execute("UPDATE audit_log SET actor = 'x', chain_pos = 1, prev_hash = 'a', hash = 'b'")
        await audit_chain.run_chainer(eng)
        with pytest.raises(psycopg.errors.RaiseException):  # re-seal
            conn.execute("UPDATE audit_log SET chain_pos = 9")
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM audit_log")
        # A process still on the code before 0014 (rolling upgrade) appends rows with a hash of its
        # own and no position: they are sealed like the others, not left blocking the chain.
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, path, record_ids, fields, detail, prev_hash, hash) "
            "VALUES (now(), 'user:9:old', 'update', 'rest', '{}', '{}', '{}', %s, %s)",
            (audit_chain.GENESIS, "f" * 64),
        )
    assert (await audit_chain.run_chainer(eng)).sealed == 1
    report = await _verify(eng)
    assert report.ok and report.checked == 2 and report.unsealed == 0


async def _sealed(eng, tmp_path: Path, n: int = 6) -> tuple[dict[int, AuditEntry], list]:
    anchors = tmp_path / "anchors.jsonl"
    await _committed(eng, n)
    await audit_chain.run_chainer(eng, anchor_file=anchors, force_anchor=True)
    async with async_sessionmaker(eng)() as s:
        rows = (await s.scalars(select(AuditEntry))).all()
    return {e.chain_pos: e for e in rows}, read_anchors(anchors)


async def test_verify_names_an_edited_row(eng, chain_url, tmp_path):
    by_pos, anchors = await _sealed(eng, tmp_path)
    with _raw(chain_url) as conn:
        conn.execute("UPDATE audit_log SET fields = '{name}' WHERE chain_pos = 3")
    report = await _verify(eng, anchors)
    assert (report.broken_at, report.checked) == (by_pos[3].id, 2) and "edited" in report.reason


async def test_verify_names_a_removed_middle_row(eng, chain_url, tmp_path):
    by_pos, anchors = await _sealed(eng, tmp_path)
    with _raw(chain_url) as conn:
        conn.execute("DELETE FROM audit_log WHERE chain_pos = 3")
    report = await _verify(eng, anchors)
    assert report.broken_at == by_pos[4].id and "position 3 missing" in report.reason
    # Closing the hole by renumbering does not help: the link from position 4 still names the old row 3.
    with _raw(chain_url) as conn:
        conn.execute("UPDATE audit_log SET chain_pos = chain_pos - 1 WHERE chain_pos > 3")
    report = await _verify(eng, anchors)
    assert report.broken_at == by_pos[4].id and "link broken" in report.reason


async def test_verify_names_an_inserted_row(eng, chain_url, tmp_path):
    by_pos, anchors = await _sealed(eng, tmp_path)
    # The forger even computes a valid hash for the row it slips in after position 3.
    forged = AuditEntry(
        at=by_pos[3].at,
        actor="user:0:nobody",
        action="update",
        path="rest",
        ledger="person",
        record_ids=[1],
        fields=["phone"],
        detail={},
        request_id=None,
    )
    forged_hash = audit_chain.digest(by_pos[3].hash, forged)
    with _raw(chain_url) as conn:
        conn.execute("UPDATE audit_log SET chain_pos = chain_pos + 100 WHERE chain_pos > 3")
        conn.execute("UPDATE audit_log SET chain_pos = chain_pos - 99 WHERE chain_pos > 100")
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, path, ledger, record_ids, fields, detail, "
            "chain_pos, prev_hash, hash) VALUES (%s, 'user:0:nobody', 'update', 'rest', 'person', "
            "'{1}', '{phone}', '{}', 4, %s, %s)",
            (forged.at, by_pos[3].hash, forged_hash),
        )
    report = await _verify(eng, anchors)
    # The row after it still links to the real row 3.
    assert report.broken_at == by_pos[4].id and "link broken" in report.reason and report.checked == 4


async def test_verify_names_a_truncated_tail_from_the_anchor(eng, chain_url, tmp_path, monkeypatch):
    by_pos, anchors = await _sealed(eng, tmp_path)
    with _raw(chain_url) as conn:
        conn.execute("DELETE FROM audit_log WHERE chain_pos >= 5")
    assert (await _verify(eng)).ok  # without an anchor a shorter chain is still a valid chain
    report = await _verify(eng, anchors)
    assert report.missing == (5, 6) and report.broken_at == by_pos[6].id and report.checked == 4
    assert "positions 5-6 missing" in report.reason

    monkeypatch.setenv("ONETABLE_DATABASE_URL", chain_url)
    monkeypatch.setenv("ONETABLE_AUDIT_ANCHOR_FILE", str(tmp_path / "anchors.jsonl"))
    get_settings.cache_clear()
    try:
        out = await asyncio.to_thread(
            CliRunner().invoke, main, ["audit", "verify"], env={"COLUMNS": "200", "NO_COLOR": "1"}
        )
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 1, out.output
    assert "第 5–6 位缺失" in out.output and str(by_pos[6].id) in out.output

    # New rows sealed over the cut take the lost positions with other hashes: the anchor still disagrees.
    await _committed(eng, 2, start=7)
    await audit_chain.run_chainer(eng)
    report = await _verify(eng, anchors)
    assert (
        report.checked == 5
        and "differs from the anchor" in report.reason
        and "after position 0" in report.reason
    )


async def test_cli_chain_seals_and_anchors(eng, chain_url, tmp_path, monkeypatch):
    await _committed(eng, 3)
    monkeypatch.setenv("ONETABLE_DATABASE_URL", chain_url)
    monkeypatch.setenv("ONETABLE_AUDIT_ANCHOR_FILE", str(tmp_path / "a.jsonl"))
    get_settings.cache_clear()
    try:

        def run(*args: str) -> Result:
            return CliRunner().invoke(main, ["audit", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})

        before = await asyncio.to_thread(run, "verify")
        chained = await asyncio.to_thread(run, "chain")
        after = await asyncio.to_thread(run, "verify")
    finally:
        get_settings.cache_clear()
    assert before.exit_code == 0 and "共校验 0 条" in before.output and "3 条尚未封存" in before.output
    assert chained.exit_code == 0 and "已封存 3 条" in chained.output and "已写入锚点" in chained.output
    assert after.exit_code == 0 and "共校验 3 条，与 1 个锚点一致" in after.output, after.output


async def test_a_departments_audited_graphql_read_commits_its_row_into_the_chain(client, world, session):
    rec = await create(client, world.a, person(11))
    await grant(
        client,
        world,
        grantee_type="org_unit",
        org_unit_code="dept:cl",
        ledger="person",
        field="*",
        level="read",
        row_scope="all",
    )
    r = await client.post(
        "/graphql", json={"query": "{ persons { nodes { id idNumber } } }"}, headers=world.dept
    )
    assert r.status_code == 200, r.text
    assert {"id": str(rec["id"]), "idNumber": rec["id_number"]} in r.json()["data"]["persons"]["nodes"]
    # The request has committed (released its savepoint); its audit row is there, unsealed, with no lock taken.
    read = (
        await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "read_sensitive", AuditEntry.path == "graphql")
        )
    ).one()
    assert rec["id"] in read.record_ids and "id_number" in read.fields and read.hash is None
    assert await audit_chain.seal_pending(session) >= 3  # create, grant, read
    report = await audit_chain.verify(session)
    assert report.ok and report.unsealed == 0
    assert (
        await session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.hash.is_(None)))
        == 0
    )


def test_migration_0014_keeps_a_chain_written_under_the_old_lock_valid(chain_url):
    """Rows chained before 0014 (id order, same digest) get positions by id and keep their hashes."""
    from datetime import datetime

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = chain_url
    command.downgrade(cfg, "0011")
    try:
        with psycopg.connect(libpq_conninfo(chain_url), autocommit=True) as conn:
            conn.execute("TRUNCATE audit_log RESTART IDENTITY")
            prev = audit_chain.GENESIS
            for i in (1, 2, 3):
                e = AuditEntry(
                    at=datetime(2026, 11, 1, i, tzinfo=UTC),
                    actor=f"user:{i}:u",
                    action="update",
                    path="rest",
                    ledger="person",
                    record_ids=[i],
                    fields=["phone"],
                    detail={},
                    request_id=None,
                )
                h = audit_chain.digest(prev, e)
                conn.execute(
                    "INSERT INTO audit_log (id, at, actor, action, path, ledger, record_ids, fields, detail, "
                    "prev_hash, hash) VALUES (%s, %s, %s, 'update', 'rest', 'person', %s, '{phone}', '{}', "
                    "%s, %s)",
                    (i * 10, e.at, e.actor, [i], prev, h),
                )
                prev = h
    finally:
        command.upgrade(cfg, "head")

    async def check() -> tuple[audit_chain.ChainReport, list]:
        engine = create_async_engine(chain_url)
        try:
            await _committed(engine, 1, start=4)
            await audit_chain.run_chainer(engine)
            return await _verify(engine), await _chain(engine)
        finally:
            await engine.dispose()

    report, rows = asyncio.run(check())
    assert report.ok and report.checked == 4
    by_pos = sorted(rows, key=lambda r: r[1])
    assert [i for i, _ in by_pos[:3]] == [10, 20, 30] and by_pos[3][1] == 4
