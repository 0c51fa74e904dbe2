"""The audit chain's head anchored in a second PostgreSQL database (ONETABLE_AUDIT_ANCHOR_URL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from app.access import audit_chain
from app.access.audit_anchor import read_anchors_db
from app.cli import main
from app.config import get_settings
from app.db.engine import libpq_conninfo
from tests.access.test_audit_chain import (  # noqa: F401 (fixtures)
    _committed,
    _raw,
    _verify,
    chain_url,
    eng,
)
from tests.conftest import own_database


@pytest.fixture(scope="module")
def anchor_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "onetable_anchordb") as (url, _):
        yield url


@pytest.fixture
def anchor_url(anchor_db: str) -> str:
    with psycopg.connect(libpq_conninfo(anchor_db), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS audit_anchor")
    return anchor_db


def _cli_verify(monkeypatch: pytest.MonkeyPatch, chain: str, anchor: str) -> tuple[int, str]:
    monkeypatch.setenv("ONETABLE_DATABASE_URL", chain)
    monkeypatch.setenv("ONETABLE_AUDIT_ANCHOR_URL", anchor)
    monkeypatch.delenv("ONETABLE_AUDIT_ANCHOR_FILE", raising=False)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(main, ["audit", "verify"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        get_settings.cache_clear()
    return out.exit_code, out.output


async def test_a_truncated_tail_is_detected_against_the_anchor_database(
    eng,  # noqa: F811
    chain_url,  # noqa: F811
    anchor_url,
    monkeypatch,
):
    await _committed(eng, 6)
    run = await audit_chain.run_chainer(eng, anchor_url=anchor_url, force_anchor=True)
    assert run is not None and run.anchored and run.head.pos == 6
    anchors = read_anchors_db(anchor_url)
    assert [(a.pos, a.id, a.hash) for a in anchors] == [(6, run.head.id, run.head.hash)]

    # Intact: the chain agrees with the anchor in the other database.
    report = await _verify(eng, anchors)
    assert report.ok and report.anchors == 1 and report.checked == 6
    code, output = await asyncio.to_thread(_cli_verify, monkeypatch, chain_url, anchor_url)
    assert code == 0 and "与 1 个锚点一致" in output, output

    # The newest rows deleted: a valid, shorter chain on its own, a lost tail against the anchor.
    with _raw(chain_url) as conn:
        conn.execute("DELETE FROM audit_log WHERE chain_pos >= 5")
    assert (await _verify(eng)).ok
    report = await _verify(eng, read_anchors_db(anchor_url))
    assert report.missing == (5, 6) and report.broken_at == run.head.id and report.checked == 4
    code, output = await asyncio.to_thread(_cli_verify, monkeypatch, chain_url, anchor_url)
    assert code == 1 and "第 5–6 位缺失" in output and str(run.head.id) in output, output


async def test_anchor_database_rows_only_grow_and_respect_the_interval(eng, anchor_url):  # noqa: F811
    await _committed(eng, 2)
    first = await audit_chain.run_chainer(eng, anchor_url=anchor_url, anchor_every=3600)
    assert first is not None and first.anchored  # the first anchor is always due
    await _committed(eng, 1, start=3)
    again = await audit_chain.run_chainer(eng, anchor_url=anchor_url, anchor_every=3600)
    assert again is not None and again.sealed == 1 and not again.anchored  # not due yet
    forced = await audit_chain.run_chainer(eng, anchor_url=anchor_url, anchor_every=3600, force_anchor=True)
    assert forced is not None and forced.anchored
    same = await audit_chain.run_chainer(eng, anchor_url=anchor_url, anchor_every=0, force_anchor=True)
    assert same is not None and not same.anchored  # the head is anchored already
    assert [a.pos for a in read_anchors_db(anchor_url)] == [2, 3]
