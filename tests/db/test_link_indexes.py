"""Readers that do not repeat the soft-delete filter (BI tools, exports) still get index plans."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.catalog.loader import load_catalog

# A BI-style join as a reporting tool writes it: no `deleted_at IS NULL` anywhere.
BI_JOIN = """SELECT p.name, r.to_id, r.since FROM lg_person p
  JOIN rel_residence r ON r.from_id = p.id WHERE p.id = 42"""


async def _plan(conn: AsyncConnection, sql: str) -> str:
    # Seq scans priced out: the question is whether an index is *usable*, not whether the planner
    # prefers it on a near-empty test table.
    await conn.execute(text("SET LOCAL enable_seqscan = off"))
    return json.dumps((await conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"))).scalar_one())


def _index_names(plan: str) -> set[str]:
    found: set[str] = set()

    def walk(node: dict) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return found


async def test_bi_join_without_soft_delete_filter_uses_plain_link_indexes(connection):
    assert "ix_rel_residence_from" in _index_names(await _plan(connection, BI_JOIN))
    # The other direction (house -> residents) too.
    names = _index_names(await _plan(connection, "SELECT * FROM rel_residence WHERE to_id = 7"))
    assert names == {"ix_rel_residence_to"}


async def test_without_the_plain_index_the_same_join_scans_the_link_table(connection):
    # The other side: only the partial indexes left, the join cannot use them without the predicate
    # (and with the predicate it can), so the assertion above is about the plain index.
    await connection.execute(text("DROP INDEX ix_rel_residence_from"))
    names = _index_names(await _plan(connection, BI_JOIN))
    assert not any(n.startswith(("ix_rel_residence", "uq_rel_residence")) for n in names)
    live = BI_JOIN.replace("WHERE p.id = 42", "AND r.deleted_at IS NULL WHERE p.id = 42")
    assert "uq_rel_residence_from" in _index_names(await _plan(connection, live))


@pytest.mark.parametrize("kind", ["relations", "extensions"])
async def test_every_link_table_and_extension_has_plain_indexes(connection, kind):
    catalog = load_catalog()
    if kind == "relations":
        wanted = {
            (r.table_name, f"ix_{r.table_name}_{end}")
            for r in catalog.relations.values()
            for end in ("from", "to")
        }
    else:
        wanted = {
            (lg.table_name, f"ix_{lg.table_name}_parent")
            for lg in catalog.ledgers.values()
            if lg.kind == "extension"
        }
    assert wanted
    rows = await connection.execute(
        text(
            "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND indexdef NOT LIKE '%WHERE%'"
        )
    )
    assert wanted <= {(r[0], r[1]) for r in rows}
