"""Bulk parameters of the import (app/imports/writes.py): a text[] literal built in Python comes back
from PostgreSQL as exactly the strings sent, whatever they hold."""

from __future__ import annotations

from sqlalchemy import BigInteger, select

from app.imports.writes import in_values, text_rows

AWKWARD = [
    'a"b',
    "back\\slash",
    "{brace}",
    "co,mma",
    "",
    " lead",
    "NULL",
    "null",
    None,
    "王伟",
    '{"json": [1, "x"]}',
    "new\nline",
    "tab\tx",
    '\\"both\\"',
]


async def test_text_rows_round_trip(session):
    u = text_rows("u", n=[str(i) for i in range(len(AWKWARD))], v=AWKWARD)
    got = (await session.execute(select(u.c.n, u.c.v))).all()
    assert [v for _, v in sorted(got, key=lambda r: int(r[0]))] == AWKWARD


async def test_in_values_matches_exactly_the_values(session):
    u = text_rows("u", v=["x", 'a"b', "back\\slash", "other"])
    got = await session.execute(select(u.c.v).where(in_values(u.c.v, "w", ['a"b', "back\\slash", "nope"])))
    assert sorted(r[0] for r in got) == ['a"b', "back\\slash"]
    ids = text_rows("i", id=["1", "2", "3"])
    got = await session.execute(
        select(ids.c.id).where(in_values(ids.c.id.cast(BigInteger), "k", [2, 3], BigInteger))
    )
    assert sorted(r[0] for r in got) == ["2", "3"]
