"""Apply one push request: every record checked, then written with a handful of bulk statements.

One transaction per request: the request's events, the values they carry, their history rows (with
the source and event id), the source's last-push time and one audit row commit together or not at
all, so a request killed half way leaves nothing and its retry applies everything once.

Per record, in `effective_at` order per natural key:
- an event id this source already used answers `already_applied` and writes nothing;
- an item whose stored value has a later `effective_at` (kept in the item's provenance) is not
  changed: the event is `superseded` and its value lands in history as op `superseded`;
- equal values are `unchanged` (no history, no `updated_at` change);
- anything else is `applied`. A record the ledger does not hold is created when the source owns
  every value a new record needs (and names its area, or its parent for an extension).
Pushes of one source are serialised by an advisory lock, so their order is the order they commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from sqlalchemy import BigInteger, String, Table, bindparam, column, func, insert, select, update
from sqlalchemy.dialects.postgresql import JSONB, array, insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import append
from app.auth.principal import Principal
from app.catalog.maintainers import may_push
from app.catalog.model import Catalog, Ledger
from app.db.ledger_tables import tables
from app.errors import FieldError, Problem, invalid, not_found
from app.ledger.history import jsonable
from app.push.models import PushEvent, PushSourceState
from app.push.records import (
    CLOSING_OPS,
    META,
    PushRecord,
    item_codes,
    new_record_values,
    read_record,
)
from app.requests import request_id_var

MAX_RECORDS = 20_000
CHUNK = 1_000  # rows per INSERT / UPDATE statement (well under PostgreSQL's 65,535 parameters)


@dataclass
class Outcome:
    index: int
    source_event_id: str | None
    status: str  # applied | unchanged | superseded | already_applied | rejected
    record_id: int | None = None
    fields: list[str] = field(default_factory=list)  # items this event changed
    superseded: list[str] = field(default_factory=list)  # items a later event already set
    reason_code: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "source_event_id": self.source_event_id,
            "status": self.status,
            "record_id": self.record_id,
        }
        if self.fields:
            out["fields"] = self.fields
        if self.superseded:
            out["superseded"] = self.superseded
        if self.reason:
            out["reason_code"], out["reason"] = self.reason_code, self.reason
        return out


@dataclass
class _State:
    """One record as the request sees it: stored values, then each event's effect in order."""

    record_id: int | None
    region_code: str | None
    values: dict[str, object]
    effective: dict[str, datetime]  # per item: the business time of its stored value
    parent_id: int | None = None
    new: bool = False
    deleted: bool = False
    closing: bool = False  # a moved_out / revoked event of this request
    dirty: dict[str, dict[str, Any]] = field(default_factory=dict)  # item -> provenance of its new value
    flags: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


class PushRefused(Problem):
    """The whole request is refused (403): nothing is written; the endpoint audits the refusal."""


def source_label(catalog: Catalog, department: str, event_id: str) -> str:
    d = catalog.departments.get(department)
    return f"{d.short_name if d else department} / {event_id}"


def authorise(principal: Principal, lg: Ledger, raws: list[dict[str, Any]], catalog: Catalog) -> str:
    """The pushing department, if it may push every item and operation the request names."""
    dept = principal.department_code
    if principal.org_unit_kind != "department" or not dept:
        raise PushRefused(403, "push.not_a_source", "只有部门业务系统或部门用户可以推送数据")
    if not lg.natural_key:
        raise invalid([FieldError("path.ledger", "push.no_natural_key", "该台账没有自然主键，不能推送")])
    codes: dict[str, None] = {}
    ops: set[str] = set()
    for raw in raws:
        codes.update(dict.fromkeys(item_codes(raw, lg.natural_key)))
        if isinstance(raw.get("op"), str):
            ops.add(raw["op"].strip())
    unknown = [c for c in codes if lg.field(c) is None]
    if unknown:
        raise invalid([FieldError(f"body.{c}", "field.unknown", "数据标准中没有该字段") for c in unknown])
    denied = []
    for c in codes:
        f = lg.field(c)
        if f is not None and not may_push(f, dept):
            owner = catalog.departments.get(f.owner or "")
            keeper = f"由{owner.short_name}维护" if owner else "不由部门系统维护"
            denied.append(FieldError(f"body.{c}", "push.field_not_owned", f"“{f.label}”{keeper}"))
    if ops & set(CLOSING_OPS) and lg.owner != dept:
        denied.append(FieldError("body.op", "push.op_not_owned", "只有台账所属部门可以办理迁出或注销"))
    death = lg.field("death_date")
    if "death" in ops and death is not None and not may_push(death, dept):
        denied.append(FieldError("body.op", "push.op_not_owned", "死亡日期不由本部门维护"))
    if denied:
        raise PushRefused(
            403,
            "push.field_not_owned",
            "只能推送本部门维护的数据项，本次推送未写入任何数据",
            errors=denied,
        )
    return dept


def _prov(dept: str, rec: PushRecord, actor: str, label: str, at: str) -> dict[str, Any]:
    assert rec.effective_at is not None
    return {
        "source": f"department:{dept}",
        "event": rec.event_id,
        "effective_at": rec.effective_at.isoformat(),
        "label": label,
        "at": at,
        "actor": actor,
    }


def _stored_effective(provenance: dict[str, Any] | None) -> dict[str, datetime]:
    out = {}
    for code, p in (provenance or {}).items():
        if isinstance(p, dict) and p.get("effective_at"):
            out[code] = datetime.fromisoformat(p["effective_at"])
    return out


async def _load(
    session: AsyncSession, t: Table, lg: Ledger, keys: list[object], codes: list[str]
) -> dict[object, _State]:
    """Current values of the records the request names, locked until commit."""
    assert lg.natural_key is not None
    keycol = t.c[lg.natural_key]
    cols = [t.c[c] for c in dict.fromkeys(codes) if c != lg.natural_key]
    out: dict[object, _State] = {}
    for i in range(0, len(keys), CHUNK * 5):
        stmt = (
            select(t.c.id, t.c.region_code, t.c.provenance, t.c.deleted_at, keycol, *cols)
            .where(keycol.in_(keys[i : i + CHUNK * 5]))
            .order_by(t.c.id)
            .with_for_update()
        )
        for r in (await session.execute(stmt)).all():
            m = r._mapping
            out[m[lg.natural_key]] = _State(
                r.id,
                r.region_code,
                {c.name: m[c.name] for c in cols},
                _stored_effective(r.provenance),
                deleted=r.deleted_at is not None,
            )
    return out


async def _parents(
    session: AsyncSession, parent: Ledger, keys: list[object]
) -> dict[object, tuple[int, str]]:
    pt = tables().ledgers[parent.code]
    assert parent.natural_key is not None
    pk = pt.c[parent.natural_key]
    rows = (
        await session.execute(
            select(pk, pt.c.id, pt.c.region_code)
            .where(pk.in_(keys), pt.c.deleted_at.is_(None))
            .with_for_update(read=True, key_share=True)
        )
    ).all()
    return {r[0]: (r.id, r.region_code) for r in rows}


def _history_row(
    st: _State,
    lg: Ledger,
    op: str,
    code: str | None,
    before: object,
    after: object,
    source: str,
    actor: str,
) -> dict[str, Any]:
    return {
        "ledger": lg.code,
        "record_id": st.record_id,
        "region_code": st.region_code,
        "op": op,
        "field": code,
        "before": jsonable(before),
        "after": jsonable(after),
        "source": source[:80],
        "actor": actor,
        "request_id": request_id_var.get(),
    }


def _plan(
    recs: list[PushRecord],
    states: dict[object, _State],
    parents: dict[object, tuple[int, str]],
    done: dict[str, tuple[str, int | None]],
    lg: Ledger,
    dept: str,
    actor: str,
    catalog: Catalog,
) -> tuple[list[Outcome], list[tuple[PushRecord, _State, Outcome]]]:
    """Decide every record's outcome in effective_at order per key; nothing is written here."""
    outcomes = [Outcome(r.index, r.event_id, "rejected") for r in recs]
    events: list[tuple[PushRecord, _State, Outcome]] = []
    at = datetime.now(UTC).isoformat()
    order = sorted((r for r in recs if r.reason is None), key=lambda r: (str(r.key), r.effective_at, r.index))
    for rec in order:
        out = outcomes[rec.index]
        assert rec.event_id is not None and rec.effective_at is not None
        if rec.event_id in done:
            out.status, out.record_id = "already_applied", done[rec.event_id][1]
            continue
        label = source_label(catalog, dept, rec.event_id)
        source = f"department:{dept}/{rec.event_id}"
        prov = _prov(dept, rec, actor, label, at)
        st = states.get(rec.key)
        if st is None or st.deleted:
            if st is not None:
                rec.reject("push.record_closed", "该记录已迁出或注销")
            elif rec.op != "upsert":
                rec.reject("push.not_found", "台账中没有该记录")
            st = _create(rec, lg, parents, dept, catalog)
            if st is None:
                out.reason_code, out.reason = rec.reason_code, rec.reason
                continue
            states[rec.key] = st
            for c, v in st.values.items():
                if v is not None:
                    st.dirty[c] = prov
                    st.effective[c] = rec.effective_at
                    st.history.append(_history_row(st, lg, "create", c, None, v, source, actor))
            out.status, out.fields = "applied", [c for c, v in st.values.items() if v is not None]
            events.append((rec, st, out))
            continue
        if rec.op in CLOSING_OPS:
            st.deleted = st.closing = True
            st.history.append(_history_row(st, lg, "delete", None, None, None, source, actor))
            out.status = "applied"
            events.append((rec, st, out))
            continue
        for c, v in rec.values.items():
            stored = st.effective.get(c)
            if stored is not None and rec.effective_at < stored:
                out.superseded.append(c)
                st.history.append(_history_row(st, lg, "superseded", c, st.values.get(c), v, source, actor))
            elif st.values.get(c) != v:
                st.history.append(_history_row(st, lg, "update", c, st.values.get(c), v, source, actor))
                st.values[c] = v
                st.effective[c] = rec.effective_at
                st.dirty[c] = prov
                if c in rec.flags:
                    st.flags[c] = rec.flags[c]
                out.fields.append(c)
        out.status = "applied" if out.fields else "superseded" if out.superseded else "unchanged"
        events.append((rec, st, out))
    for rec in recs:
        if rec.reason is not None:
            outcomes[rec.index].reason_code, outcomes[rec.index].reason = (
                rec.reason_code,
                rec.reason,
            )
            outcomes[rec.index].status = "rejected"
    for _, st, out in events:
        out.record_id = st.record_id
    return outcomes, events


def _pushable(lg: Ledger, code: str, dept: str) -> bool:
    f = lg.field(code)
    return f is not None and may_push(f, dept)


def _create(
    rec: PushRecord, lg: Ledger, parents: dict[object, tuple[int, str]], dept: str, catalog: Catalog
) -> _State | None:
    if rec.reason is not None:
        return None
    parent_id = None
    if lg.kind == "extension":
        found = parents.get(rec.parent_key) if rec.parent_key is not None else None
        if found is None:
            rec.reject(
                "push.parent_not_found",
                "台账中没有该记录；新建需提供 parent_key（所属主体的主键）且主体已在台账中",
            )
            return None
        parent_id, region = found
    elif rec.region_code is None:
        rec.reject("push.not_found", "台账中没有该记录；新建需提供 region_code")
        return None
    else:
        region = rec.region_code
    vals = new_record_values(rec, lg, catalog)
    if vals is None:
        return None
    # The natural key names the record, whoever keeps it (a household's 户号 is the
    # township's numbering).
    foreign = [
        c for c, v in vals.items() if v is not None and c != lg.natural_key and not _pushable(lg, c, dept)
    ]
    if foreign:
        rec.reject(
            "push.create_not_owned",
            f"台账中没有该记录，新建所需的数据项不由本部门维护：{'、'.join(foreign)}",
        )
        return None
    return _State(None, region, dict(vals), {}, parent_id=parent_id, new=True, flags=dict(rec.flags))


def _recordset(cols: list[tuple[str, Any]], rows: list[dict[str, Any]]) -> Any:
    """Rows as one JSON parameter, typed by jsonb_to_recordset: a statement of a few hundred bytes
    and one bind, however many rows (a multi-row VALUES of 1,000 rows × 20 columns costs more to
    build and parse than to run)."""
    data = [{k: jsonable(v) for k, v in r.items()} for r in rows]
    fn = func.jsonb_to_recordset(bindparam("rows", data, type_=JSONB))
    return fn.table_valued(*[column(n, ty) for n, ty in cols]).render_derived("d", with_types=True)


def _plain_type(col: Any) -> Any:
    """The column's type without a collation (a column definition list cannot carry one)."""
    ty = col.type
    return String(ty.length) if isinstance(ty, String) and getattr(ty, "collation", None) else ty


async def _write_creates(session: AsyncSession, t: Table, lg: Ledger, created: list[_State]) -> None:
    assert lg.natural_key is not None
    names = [f.code for f in lg.fields] + ["region_code", "provenance", "flags"]
    if lg.kind == "extension":
        names.append("parent_id")
    keycol = t.c[lg.natural_key]
    for i in range(0, len(created), CHUNK):
        part = created[i : i + CHUNK]
        rows = []
        for st in part:
            row: dict[str, Any] = {c: st.values.get(c) for c in names[: len(lg.fields)]}
            row.update(region_code=st.region_code, provenance=st.dirty, flags=st.flags)
            if lg.kind == "extension":
                row["parent_id"] = st.parent_id
            rows.append(row)
        d = _recordset([(n, _plain_type(t.c[n])) for n in names], rows)
        stmt = insert(t).from_select(names, select(*[d.c[n] for n in names])).returning(t.c.id, keycol)
        by_key = {r[1]: r.id for r in (await session.execute(stmt)).all()}
        for st in part:
            st.record_id = by_key[st.values[lg.natural_key]]


async def _write_updates(session: AsyncSession, t: Table, changed: list[_State]) -> None:
    groups: dict[tuple[str, ...], list[_State]] = {}
    for st in changed:
        groups.setdefault(tuple(sorted(st.dirty)), []).append(st)
    for codes, group in groups.items():
        for i in range(0, len(group), CHUNK):
            part = group[i : i + CHUNK]
            cols = [
                ("id", BigInteger()),
                *[(c, _plain_type(t.c[c])) for c in codes],
                ("prov", JSONB()),
                ("fl", JSONB()),
            ]
            d = _recordset(
                cols,
                [
                    {
                        "id": st.record_id,
                        **{c: st.values[c] for c in codes},
                        "prov": st.dirty,
                        "fl": st.flags,
                    }
                    for st in part
                ],
            )
            sets: dict[str, Any] = {c: d.c[c] for c in codes}
            sets.update(
                provenance=t.c.provenance.op("||")(d.c.prov),
                flags=t.c.flags.op("-")(array(list(codes))).op("||")(d.c.fl),
                version=t.c.version + 1,
                updated_at=func.now(),
            )
            await session.execute(update(t).where(t.c.id == d.c.id).values(**sets))


async def _insert_rows(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    """Append rows (history, events) through one JSON parameter per chunk."""
    if not rows:
        return
    names = list(rows[0])
    for i in range(0, len(rows), CHUNK * 5):
        d = _recordset([(n, _plain_type(table.c[n])) for n in names], rows[i : i + CHUNK * 5])
        await session.execute(insert(table).from_select(names, select(*[d.c[n] for n in names])))


async def apply_push(
    session: AsyncSession,
    principal: Principal,
    lg: Ledger,
    raws: list[dict[str, Any]],
    catalog: Catalog,
) -> dict[str, Any]:
    if len(raws) > MAX_RECORDS:
        raise Problem(413, "push.too_many", f"一次最多推送 {MAX_RECORDS} 条记录")
    dept = authorise(principal, lg, raws, catalog)
    parent = catalog.ledger(lg.parent) if lg.parent else None
    recs = await anyio.to_thread.run_sync(
        lambda: [read_record(i, raw, lg, parent, catalog) for i, raw in enumerate(raws)]
    )
    seen: set[str] = set()
    for rec in recs:
        if rec.event_id is not None and rec.reason is None:
            if rec.event_id in seen:
                rec.reject("push.event_repeated", "同一请求中事件编号重复")
            seen.add(rec.event_id)
    # One source at a time: its pushes apply in commit order, and an event id is checked and stored
    # without a race between two requests carrying it.
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"onetable.push:{dept}"))))
    ids = [r.event_id for r in recs if r.reason is None]
    done: dict[str, tuple[str, int | None]] = {}
    for i in range(0, len(ids), CHUNK * 5):
        stmt = select(PushEvent.source_event_id, PushEvent.status, PushEvent.record_id).where(
            PushEvent.source == dept, PushEvent.source_event_id.in_(ids[i : i + CHUNK * 5])
        )
        done.update({r[0]: (r[1], r[2]) for r in (await session.execute(stmt)).all()})
    t = tables().ledgers[lg.code]
    key_field = lg.natural_key or ""
    live = [r for r in recs if r.reason is None and r.event_id not in done]
    codes = sorted({c for r in live for c in r.values})
    keys = list(dict.fromkeys(r.key for r in live))
    states = await _load(session, t, lg, keys, codes) if keys else {}
    parents: dict[object, tuple[int, str]] = {}
    if parent is not None:
        pkeys = list(
            dict.fromkeys(r.parent_key for r in live if r.parent_key is not None and r.key not in states)
        )
        parents = await _parents(session, parent, pkeys) if pkeys else {}
    outcomes, events = await anyio.to_thread.run_sync(
        lambda: _plan(recs, states, parents, done, lg, dept, principal.actor, catalog)
    )
    touched = list({id(st): st for _, st, _ in events}.values())
    await _write_creates(session, t, lg, [st for st in touched if st.new])
    await _write_updates(session, t, [st for st in touched if not st.new and st.dirty])
    closed = [st.record_id for st in touched if st.closing]  # created and closed alike
    if closed:
        await session.execute(
            update(t)
            .where(t.c.id.in_(closed))
            .values(deleted_at=func.now(), version=t.c.version + 1, updated_at=func.now())
        )
    for _, st, out in events:
        out.record_id = st.record_id
    history = [{**h, "record_id": st.record_id} for st in touched for h in st.history]
    await _insert_rows(session, tables().history, history)
    if events:
        await _insert_rows(
            session,
            PushEvent.__table__,
            [
                {
                    "source": dept,
                    "source_event_id": rec.event_id,
                    "ledger": lg.code,
                    "record_id": st.record_id,
                    "op": rec.op,
                    "status": out.status,
                    "fields": sorted({*rec.values, key_field}),
                    "effective_at": rec.effective_at,
                    "actor": principal.actor,
                    "request_id": request_id_var.get(),
                }
                for rec, st, out in events
            ],
        )
    await session.execute(
        pg_insert(PushSourceState)
        .values(source=dept, last_push_at=func.now(), last_records=len(raws))
        .on_conflict_do_update(
            index_elements=["source"],
            set_={"last_push_at": func.now(), "last_records": len(raws), "stale_since": None},
        )
    )
    counts = dict.fromkeys(("applied", "unchanged", "superseded", "already_applied", "rejected"), 0)
    for o in outcomes:
        counts[o.status] += 1
    written = sorted({st.record_id for st in touched if st.record_id is not None and st.history})
    await append(
        session,
        actor=principal.actor,
        action="push",
        path="push",
        ledger=lg.code,
        record_ids=written,
        fields=codes,
        detail={"source": dept, **counts},
    )
    return {
        "ledger": lg.code,
        "source": dept,
        "received": len(raws),
        "counts": counts,
        "results": [o.as_dict() for o in outcomes],
    }


def ledger_or_404(catalog: Catalog, code: str) -> Ledger:
    lg = catalog.ledger(code)
    if lg is None:
        raise not_found("台账")
    return lg


__all__ = [
    "MAX_RECORDS",
    "META",
    "PushRefused",
    "apply_push",
    "authorise",
    "ledger_or_404",
    "source_label",
]
