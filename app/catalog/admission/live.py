"""The catalogue in effect: ledgers/*.yaml plus every approved admission, per catalogue version.

Each request reads the newest `catalog_version` row through its own session (one indexed one-row
SELECT) and sets the catalogue of that version for itself (loader.IN_EFFECT). A version seen before
is served from memory; a new one is built once from the approved proposals. So every process picks up
an approval at its next request, with no restart, and a request whose transaction does not see the
approval (or sees it rolled back) keeps the catalogue that matches its database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.loader import IN_EFFECT, parse_field, yaml_catalog
from app.catalog.model import Catalog, CodeList, Ledger

YAML_STAMP = "yaml"
KEEP = 16  # catalogue versions kept built per process (each holds its tables and GraphQL schema)

_CURRENT = text("SELECT stamp FROM catalog_version ORDER BY version DESC LIMIT 1")
# The request's first statement: the catalogue stamp and the access version (app/access/cache.py) in
# one round trip, so a request that reads its caller's grants next reads them no older than the version.
_CURRENT_AND_ACCESS = text(
    "SELECT (SELECT stamp FROM catalog_version ORDER BY version DESC LIMIT 1) AS stamp, "
    "(SELECT version FROM access_version WHERE id = 1) AS access_version"
)
_known: OrderedDict[str, Catalog] = OrderedDict()
_lock = threading.Lock()


def apply_proposal(cat: Catalog, proposal: dict, stamp: str) -> Catalog:
    """A new catalogue, version `stamp`: `cat` with one proposal's code lists, fields or extension added."""
    out = Catalog(
        ledgers=dict(cat.ledgers),
        codelists=dict(cat.codelists),
        relations=dict(cat.relations),
        departments=dict(cat.departments),
        stamp=stamp,
    )
    for cl in proposal.get("codelists") or []:
        out.codelists[cl["code"]] = CodeList(
            cl["code"], cl["label"], {str(k): v for k, v in cl["values"].items()}, cl.get("standard")
        )
    fields = tuple(parse_field(f) for f in proposal["fields"])
    if proposal["kind"] == "extension":
        ext = proposal["extension"]
        out.ledgers[proposal["ledger"]] = Ledger(
            code=proposal["ledger"],
            label=ext["label"],
            kind="extension",
            fields=fields,
            owner=ext.get("owner"),
            description=ext.get("description"),
            parent=ext["parent"],
            cardinality=ext.get("cardinality", "one"),
        )
    else:
        lg = out.ledgers[proposal["ledger"]]
        out.ledgers[lg.code] = replace(lg, fields=lg.fields + fields)
    return out


def build(stamp: str, proposals: list[dict]) -> Catalog:
    cat = yaml_catalog()
    for p in proposals:
        cat = apply_proposal(cat, p, stamp)
    if cat is yaml_catalog():  # a version with no admitted item still is its own catalogue object
        cat = replace(cat, stamp=stamp, built={})
    return cat


_APPROVED = text(
    "SELECT kind, ledger, extension, fields, codelists FROM catalog_proposal "
    "WHERE state = 'approved' AND applied_version IS NOT NULL ORDER BY applied_version"
)


def remember(stamp: str, cat: Catalog) -> Catalog:
    with _lock:
        got = _known.setdefault(stamp, cat)
        _known.move_to_end(stamp)
        while len(_known) > KEEP:
            _known.popitem(last=False)
    return got


async def catalog_of(session: AsyncSession) -> Catalog:
    """The catalogue of the newest version this session's transaction sees."""
    return await _catalog_of_stamp(session, await session.scalar(_CURRENT))


async def _catalog_of_stamp(session: AsyncSession, stamp: str | None) -> Catalog:
    if stamp is None or stamp == YAML_STAMP:
        return yaml_catalog()
    cat = _known.get(stamp)
    if cat is None:
        rows = (await session.execute(_APPROVED)).mappings().all()
        cat = remember(stamp, build(stamp, [dict(r) for r in rows]))
    return cat


async def enter(session: AsyncSession) -> Catalog:
    """Make the session's catalogue the one in effect for the rest of this request (or task); the
    access version read with it is left in session.info["access_version"]."""
    row = (await session.execute(_CURRENT_AND_ACCESS)).one()
    session.info["access_version"] = row.access_version
    cat = await _catalog_of_stamp(session, row.stamp)
    IN_EFFECT.set(cat)
    return cat


def metadata_of(connection: Connection, base: MetaData) -> MetaData:
    """What Alembic compares with the database: `base` (models + ledgers/*.yaml) when nothing was
    admitted, else the models plus the tables of the catalogue in effect, admitted columns included."""
    if not inspect(connection).has_table("catalog_version"):
        return base
    stamp = connection.execute(_CURRENT).scalar()
    if stamp is None or stamp == YAML_STAMP:
        return base
    from app.db.ledger_tables import build_tables

    cat = build(stamp, [dict(r) for r in connection.execute(_APPROVED).mappings().all()])
    yaml_tables = {t.name for t in (*_tables_of(yaml_catalog()),)}
    out = MetaData(naming_convention=base.naming_convention)
    for t in base.tables.values():
        if t.name not in yaml_tables:
            t.to_metadata(out)
    build_tables(cat, out)
    return out


def _tables_of(cat: Catalog) -> list:
    from app.db.ledger_tables import tables

    token = IN_EFFECT.set(cat)
    try:
        lt = tables()
    finally:
        IN_EFFECT.reset(token)
    return [*lt.ledgers.values(), *lt.relations.values(), lt.history]


def forget() -> None:
    """Drop every built version (tests that roll an approval back may call it; correctness never needs it)."""
    with _lock:
        _known.clear()
