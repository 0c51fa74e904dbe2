"""Households and houses from a person sheet (docs/households.md), in bulk.

Rows are grouped by their district-wide 户号 (village code + local number). A group's household is the
live one with that number, or a new 家庭户 in the head's village. Its house is the one the household
already lives in, else the house whose standard address is the head's address (现住址, else 户籍地址),
else a new house with a generated house code. Every person gets a `household_member` link with the
row's 与户主关系 unless they already belong to a household (a person in another household is left
there, with a warning: moving people between households is not a stock-data import's call).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import BigInteger, Text, cast, insert, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.db.ledger_tables import tables
from app.imports.models import ImportBatch
from app.imports.plan import RowPlan, issue
from app.imports.writes import HISTORY_COLUMNS, allocate_ids, in_values, insert_history, text_rows

LINKABLE = ("create", "update", "unchanged")


def _any(column: Any, name: str, values: list[Any], typ: Any = Text) -> Any:
    return in_values(column, name, values, typ)


async def link(
    session: AsyncSession, batch: ImportBatch, importer: Principal, rows: list[RowPlan]
) -> tuple[dict[int, dict[str, Any]], dict[str, int]]:
    """Returns per-row what was made (for undo) and counts."""
    t = tables()
    hh_t, house_t = t.ledgers["household"], t.ledgers["house"]
    member_t, hh_house_t = t.relations["household_member"], t.relations["household_house"]
    source = f"import:{batch.id}"
    groups: dict[str, list[RowPlan]] = defaultdict(list)
    for rp in rows:
        if rp.outcome in LINKABLE and rp.household_no and rp.record_id and rp.region:
            groups[rp.household_no].append(rp)
    made: dict[int, dict[str, Any]] = defaultdict(dict)
    counts = {"households_created": 0, "houses_created": 0, "member_links": 0}
    if not groups:
        return {}, counts
    heads = {no: next(m for m in members if m.relation == "01") for no, members in groups.items()}

    # households: existing by number, else new in the head's village
    existing: dict[str, int] = dict(
        (
            await session.execute(
                select(hh_t.c.household_no, hh_t.c.id).where(
                    _any(hh_t.c.household_no, "nos", list(groups)), hh_t.c.deleted_at.is_(None)
                )
            )
        )
        .tuples()
        .all()
    )
    new_nos = [no for no in groups if no not in existing]
    new_ids = await allocate_ids(session, hh_t.name, len(new_nos))
    if new_nos:
        prov = json.dumps({c: {"source": source} for c in ("household_no", "household_kind")})
        u = text_rows(
            "u", id=[str(i) for i in new_ids], no=new_nos, region=[heads[n].region for n in new_nos]
        )
        await session.execute(
            insert(hh_t).from_select(
                ["id", "household_no", "household_kind", "region_code", "provenance"],
                select(
                    cast(u.c.id, BigInteger),
                    u.c.no,
                    literal("1", Text),
                    u.c.region,
                    cast(literal(prov), JSONB),
                ),
            )
        )
        for no, hid in zip(new_nos, new_ids, strict=True):
            made[heads[no].row_no]["household_created"] = hid
        counts["households_created"] = len(new_nos)
    household_id = {**existing, **dict(zip(new_nos, new_ids, strict=True))}

    # houses: the household's, else by the head's address, else new
    hids = list(household_id.values())
    has_house: dict[int, int] = dict(
        (
            await session.execute(
                select(hh_house_t.c.from_id, hh_house_t.c.to_id).where(
                    _any(hh_house_t.c.from_id, "hids", hids, BigInteger), hh_house_t.c.deleted_at.is_(None)
                )
            )
        )
        .tuples()
        .all()
    )
    want: dict[str, str] = {}
    for no, head in heads.items():
        if household_id[no] not in has_house and head.address:
            want[no] = head.address
    houses: dict[str, int] = dict(
        (
            await session.execute(
                select(house_t.c.standard_address, house_t.c.id).where(
                    _any(house_t.c.standard_address, "addrs", sorted(set(want.values()))),
                    house_t.c.region_code.like(batch.township_code[:9] + "%"),
                    house_t.c.deleted_at.is_(None),
                )
            )
        )
        .tuples()
        .all()
    )
    missing = sorted({a for a in want.values() if a not in houses})
    house_ids = await allocate_ids(session, house_t.name, len(missing))
    if missing:
        first_no = {a: no for no, a in sorted(want.items(), reverse=True)}
        regions = [heads[first_no[a]].region or batch.township_code for a in missing]
        codes = [f"{r[:12]}IM{batch.id:06d}{i:06d}"[:30] for i, r in zip(house_ids, regions, strict=True)]
        prov = json.dumps({c: {"source": source} for c in ("house_code", "standard_address")})
        u = text_rows("u", id=[str(i) for i in house_ids], code=codes, addr=missing, region=regions)
        await session.execute(
            insert(house_t).from_select(
                ["id", "house_code", "standard_address", "region_code", "provenance"],
                select(cast(u.c.id, BigInteger), u.c.code, u.c.addr, u.c.region, cast(literal(prov), JSONB)),
            )
        )
        for a, hid in zip(missing, house_ids, strict=True):
            houses[a] = hid
            made[heads[first_no[a]].row_no]["house_created"] = hid
        counts["houses_created"] = len(missing)
    hh_house = [(household_id[no], houses[a], heads[no]) for no, a in want.items() if a in houses]
    if hh_house:
        link_ids = await allocate_ids(session, hh_house_t.name, len(hh_house))
        u = text_rows(
            "u",
            id=[str(i) for i in link_ids],
            f=[str(h) for h, _, _ in hh_house],
            t=[str(x) for _, x, _ in hh_house],
            region=[r.region for _, _, r in hh_house],
        )
        await session.execute(
            insert(hh_house_t).from_select(
                ["id", "from_id", "to_id", "region_code"],
                select(
                    cast(u.c.id, BigInteger), cast(u.c.f, BigInteger), cast(u.c.t, BigInteger), u.c.region
                ),
            )
        )
        for (_, _, head), lid in zip(hh_house, link_ids, strict=True):
            made[head.row_no]["house_link"] = lid

    # members
    members = [rp for group in groups.values() for rp in group]
    current: dict[int, int] = dict(
        (
            await session.execute(
                select(member_t.c.from_id, member_t.c.to_id).where(
                    _any(member_t.c.from_id, "pids", [rp.record_id for rp in members], BigInteger),
                    member_t.c.deleted_at.is_(None),
                )
            )
        )
        .tuples()
        .all()
    )
    new_links: list[RowPlan] = []
    seen: set[int] = set()
    for rp in members:
        hid = household_id[rp.household_no or ""]
        rid = rp.record_id or 0
        have = current.get(rid)
        if have is None and rid not in seen:
            seen.add(rid)
            new_links.append(rp)
        elif have is not None and have != hid:
            rp.issues.append(
                issue(
                    "户号",
                    rp.household_no,
                    "household_no",
                    "household.other",
                    "该人员已登记在其他户，未变更户籍关系",
                    "warning",
                )
            )
    if new_links:
        ids = await allocate_ids(session, member_t.name, len(new_links))
        u = text_rows(
            "u",
            id=[str(i) for i in ids],
            f=[str(rp.record_id) for rp in new_links],
            t=[str(household_id[rp.household_no or ""]) for rp in new_links],
            rel=[rp.relation for rp in new_links],
            region=[rp.region for rp in new_links],
        )
        await session.execute(
            insert(member_t).from_select(
                ["id", "from_id", "to_id", "relation_to_head", "region_code"],
                select(
                    cast(u.c.id, BigInteger),
                    cast(u.c.f, BigInteger),
                    cast(u.c.t, BigInteger),
                    u.c.rel,
                    u.c.region,
                ),
            )
        )
        hist: dict[str, list[str | None]] = {k: [] for k in HISTORY_COLUMNS}
        for rp, lid in zip(new_links, ids, strict=True):
            made[rp.row_no]["member_link"] = lid
            made[rp.row_no]["household"] = household_id[rp.household_no or ""]
            hist["rid"].append(str(rp.record_id))
            hist["region"].append(rp.region)
            hist["op"].append("link")
            hist["field"].append("household")
            hist["before"].append("null")
            hist["after"].append(json.dumps(household_id[rp.household_no or ""]))
            hist["source"].append(f"{source}:{rp.row_no}")
        await insert_history(session, "person", hist, importer.actor)
        counts["member_links"] = len(new_links)
    return dict(made), counts
