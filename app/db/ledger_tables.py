"""Physical ledger, relation and history tables generated from the catalogue.

Every ledger row carries region_code (the village or grid it belongs to, 12/15-digit division code),
version (optimistic concurrency), timestamps, soft-delete, per-field provenance and flags.
There are no foreign keys between ledger rows: tables are meant to be distributed by township code.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeEngine

from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, FieldType
from app.db.base import Base

REGION_LEN = 15
# Byte-wise collation: division codes are digit strings, and with "C" a plain btree index serves both
# `LIKE '500118101%'` (a subtree) and ORDER BY region_code, whatever the database's locale.
RegionCode = String(REGION_LEN, collation="C")


def column_type(f: Field) -> TypeEngine:
    match f.type:
        case FieldType.text:
            return String(f.max_length) if f.max_length else Text()
        case FieldType.integer:
            return Integer()
        case FieldType.decimal:
            return Numeric(f.precision, f.scale)
        case FieldType.date:
            return Date()
        case FieldType.datetime:
            return DateTime(timezone=True)
        case FieldType.boolean:
            return Boolean()
        case FieldType.code:
            return String(20)
        case FieldType.reference:
            return BigInteger()
    raise ValueError(f.type)


def _base_columns() -> list[Column]:
    return [
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("region_code", RegionCode, nullable=False),
        Column("version", Integer, nullable=False, server_default=text("1")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("deleted_at", DateTime(timezone=True)),
        # field code -> {"source": ..., "at": ..., "actor": ...}: who set the current value
        Column("provenance", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        # warnings kept on the record, e.g. {"credit_code": "checksum"} for a pre-2016 USCC
        Column("flags", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    ]


def _region_index(name: str) -> Index:
    # (region_code, id): a subtree in keyset order is one index range scan; lists default to this order.
    return Index(f"ix_{name}_region_id", "region_code", "id")


@dataclass(frozen=True)
class LedgerTables:
    ledgers: dict[str, Table]
    relations: dict[str, Table]
    history: Table


def build_tables(catalog: Catalog, metadata) -> LedgerTables:
    ledgers: dict[str, Table] = {}
    for lg in catalog.ledgers.values():
        cols = _base_columns()
        extra: list = [_region_index(lg.table_name)]
        if lg.kind == "extension":
            cols.append(Column("parent_id", BigInteger, nullable=False))
            if lg.cardinality == "one":
                extra.append(
                    Index(
                        f"uq_{lg.table_name}_parent",
                        "parent_id",
                        unique=True,
                        postgresql_where=text("deleted_at IS NULL"),
                    )
                )
            # Plain (not partial) so readers that don't repeat `deleted_at IS NULL` (BI, exports) join
            # on it too; the partial unique index above only serves queries carrying that predicate.
            extra.append(Index(f"ix_{lg.table_name}_parent", "parent_id"))
        for f in lg.fields:
            cols.append(Column(f.code, column_type(f), comment=f.label))
            if f.unique:
                extra.append(
                    Index(
                        f"uq_{lg.table_name}_{f.code}",
                        f.code,
                        unique=True,
                        postgresql_where=text("deleted_at IS NULL"),
                    )
                )
        ledgers[lg.code] = Table(lg.table_name, metadata, *cols, *extra, comment=lg.label)
    relations: dict[str, Table] = {}
    for rel in catalog.relations.values():
        cols = [
            Column("id", BigInteger, Identity(), primary_key=True),
            Column("region_code", RegionCode, nullable=False),
            Column("from_id", BigInteger, nullable=False),
            Column("to_id", BigInteger, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
            Column("deleted_at", DateTime(timezone=True)),
        ]
        cols += [Column(f.code, column_type(f), comment=f.label) for f in rel.attributes]
        live = text("deleted_at IS NULL")
        # A "one" side holds at most one live link per record (one residence per person); removed
        # (soft-deleted) links don't count. Names matter: the API maps uq_<table>_from/_to to 409s.
        ends = (
            [Index(f"uq_{rel.table_name}_from", "from_id", unique=True, postgresql_where=live)]
            if not rel.forward_many
            else []
        )
        if not rel.backward_many:
            ends.append(Index(f"uq_{rel.table_name}_to", "to_id", unique=True, postgresql_where=live))
        # Both ends also get a plain index: the partial ones above (and the pair index) serve only
        # queries that carry `deleted_at IS NULL`; BI tools and exports joining the link tables
        # without it would otherwise scan them whole.
        ends += [Index(f"ix_{rel.table_name}_from", "from_id"), Index(f"ix_{rel.table_name}_to", "to_id")]
        relations[rel.code] = Table(
            rel.table_name,
            metadata,
            *cols,
            _region_index(rel.table_name),
            Index(f"uq_{rel.table_name}_pair", "from_id", "to_id", unique=True, postgresql_where=live),
            *ends,
            comment=rel.label,
        )
    history = Table(
        "ledger_history",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("ledger", String(41), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        Column("region_code", RegionCode, nullable=False),
        Column("op", String(10), nullable=False),  # create | update | delete | restore
        Column("field", String(41)),
        Column("before", JSONB),
        Column("after", JSONB),
        Column("source", String(80), nullable=False),
        Column("actor", String(120), nullable=False),
        Column("request_id", String(64)),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_ledger_history_record", "ledger", "record_id", "id"),
        comment="台账变更历史",
    )
    return LedgerTables(ledgers, relations, history)


def tables() -> LedgerTables:
    """Tables of the catalogue in effect, built once per catalogue version: ledgers/*.yaml into
    Base.metadata (what Alembic compares), a catalogue with admitted items into a MetaData of its own."""
    cat = get_catalog()
    got = cat.built.get("tables")
    if got is None:
        metadata = (
            Base.metadata
            if cat.stamp == "yaml"
            else MetaData(naming_convention=Base.metadata.naming_convention)
        )
        got = cat.built["tables"] = build_tables(cat, metadata)
    return got
