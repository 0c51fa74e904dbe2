"""Bulk writes shared by commit, households and undo: ids from a ledger's identity in one query, history
rows in one INSERT … SELECT FROM unnest, typed values as the text PostgreSQL casts back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Text, bindparam, cast, func, insert, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias

from app.db.ledger_tables import tables
from app.requests import request_id_var

CHUNK = 20_000


def text_array(values: Iterable[str | None]) -> str:
    """A PostgreSQL text[] literal ({"a","b",NULL}). Sent as one text parameter and cast to text[]
    by the server: psycopg's own list adapter escapes every element with a regular expression in
    Python, which made up half of a large import's time; str.replace runs in C."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values
        )
        + "}"
    )


def rows_of(alias: str, columns: Mapping[str, Sequence[str | None]]) -> TableValuedAlias:
    """app/report/bulk.unnest for columns named after any field ("name" included): text arrays unnested
    into a table alias(col, ...), one bind parameter per column (a text[] literal, see text_array)."""
    arrays = [
        cast(bindparam(f"{alias}_{i}", text_array(v), type_=Text), ARRAY(Text))
        for i, v in enumerate(columns.values())
    ]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=alias)


def in_values(column: Any, name: str, values: Iterable[Any], typ: Any = Text) -> Any:
    """column IN (SELECT unnest(:name)), the values sent as one text[] literal (text_array) cast to
    typ[]. Not `= ANY(cast(...))`: the planner cannot see into a cast parameter, and would test each
    row against the whole list one element at a time (40 s for 6,000 addresses on a district's
    houses); a semi-join on the unnested list is hashed or uses the column's index."""
    array = cast(
        bindparam(name, text_array(None if v is None else str(v) for v in values), type_=Text), ARRAY(typ)
    )
    return column.in_(select(func.unnest(array)))


def text_rows(alias: str, **columns: Sequence[str | None]) -> TableValuedAlias:
    """rows_of with the columns as keyword arguments."""
    return rows_of(alias, columns)


HISTORY_COLUMNS = ("rid", "region", "op", "field", "before", "after", "source")


def as_text(v: Any) -> str | None:
    """A typed value as the text PostgreSQL casts back to the column's type."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return str(v)


async def allocate_ids(session: AsyncSession, table_name: str, n: int) -> list[int]:
    if n == 0:
        return []
    rows = await session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
        {"t": table_name, "n": n},
    )
    return [r[0] for r in rows]


async def insert_history(
    session: AsyncSession, ledger: str, cols: dict[str, list[str | None]], actor: str
) -> None:
    h = tables().history
    n = len(cols["rid"])
    rid = request_id_var.get()
    for start in range(0, n, CHUNK * 3):
        part = {k: v[start : start + CHUNK * 3] for k, v in cols.items()}
        u = rows_of("u", part)
        sel = select(
            literal(ledger, Text),
            cast(u.c.rid, BigInteger),
            u.c.region,
            u.c.op,
            u.c.field,
            cast(u.c.before, JSONB),
            cast(u.c.after, JSONB),
            u.c.source,
            literal(actor, Text),
            literal(rid, Text),
        )
        await session.execute(
            insert(h).from_select(
                [
                    "ledger",
                    "record_id",
                    "region_code",
                    "op",
                    "field",
                    "before",
                    "after",
                    "source",
                    "actor",
                    "request_id",
                ],
                sel,
            )
        )
