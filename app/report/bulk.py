"""Many rows in one statement without one bind parameter per value: columns travel as arrays and are
unnested in the database. A sheet of 20,000 rows × 10 gap columns is 200,000 cells; as a multi-row
VALUES list that is 1.4 million parameters (PostgreSQL allows 65,535 per statement) and a statement
SQLAlchemy takes long to compile, and as a list of row-value tuples in IN it exceeds the server's stack
depth. With arrays it is a handful of parameters, whatever the size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Text, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias


def unnest(name: str, **columns: Sequence[str | None]) -> TableValuedAlias:
    """A table of text columns from equally long lists: unnest(:a, :b, ...) AS name(a, b, ...)."""
    arrays = [bindparam(f"{name}_{k}", list(v), type_=ARRAY(Text)) for k, v in columns.items()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def json_texts(values: Sequence[object]) -> list[str]:
    """Cell values as JSON text (cast back with as_jsonb); None becomes JSON null, a typed empty cell."""
    return [json.dumps(v, ensure_ascii=False) for v in values]


def as_jsonb(col: ColumnElement) -> ColumnElement:
    return col.cast(JSONB)


__all__ = ["as_jsonb", "json_texts", "unnest"]
