"""Undo a committed batch: every value the import wrote is set back to what it replaced, unless it was
changed since; such fields are reported as conflicts and left as they are (C1-8).

A record the import created is removed (soft delete) when none of its imported values changed since;
otherwise it stays and each changed field is a conflict. Links, households and houses the import made
are removed with it (a household or house only when nothing else links to it any more). Everything
is written in bulk, with history rows whose source is "import-undo:<batch>:<row>".
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Text, cast, exists, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import append
from app.auth.principal import Principal
from app.catalog.coerce import coerce
from app.catalog.loader import get_catalog
from app.catalog.model import Field
from app.db.ledger_tables import column_type, tables
from app.errors import Problem
from app.imports.jobs import importer_of, is_approver, load_batch
from app.imports.models import ImportBatch, ImportRow
from app.imports.plan import same
from app.imports.writes import HISTORY_COLUMNS, as_text, in_values, insert_history, rows_of
from app.ledger.history import jsonable


def _typed(f: Field, v: Any) -> Any:
    if v is None:
        return None
    return coerce(f, v, get_catalog()).value


def _still(f: Field, current: Any, imported: Any) -> bool:
    """Does the record still hold the value the import wrote (JSON as in import_row.after)? The JSON
    forms compared first: equal there means equal typed (most rows), else typed as the catalogue says."""
    if jsonable(current) == imported:
        return True
    return same(f, current, _typed(f, imported))


def _ids(column: Any, name: str, values: list[int]) -> Any:
    return in_values(column, name, values, BigInteger)


async def undo(session: AsyncSession, principal: Principal, batch_id: int) -> dict[str, Any]:
    batch = await load_batch(session, principal, batch_id, lock=True)
    if batch.status != "committed":
        raise Problem(409, "import.not_committed", "只能撤销已导入的批次")
    if principal.id != batch.uploader_user_id and not is_approver(principal):
        raise Problem(403, "import.undo_forbidden", "仅上传人或区级审核人员可撤销导入")
    importer = await importer_of(session, batch)
    lg = get_catalog().ledgers[batch.ledger]
    by_code = {f.code: f for f in lg.fields}
    t = tables().ledgers[batch.ledger]
    rows = (
        await session.execute(
            select(
                ImportRow.row_no,
                ImportRow.outcome,
                ImportRow.record_id,
                ImportRow.before,
                ImportRow.after,
                ImportRow.links,
            )
            .where(
                ImportRow.batch_id == batch.id,
                ImportRow.outcome.in_(("create", "update")),
                ImportRow.record_id.is_not(None),
            )
            .order_by(ImportRow.row_no)
        )
    ).all()
    ids = [r.record_id for r in rows]
    current = {
        r["id"]: dict(r)
        for r in (
            await session.execute(
                select(t).where(_ids(t.c.id, "rids", ids), t.c.deleted_at.is_(None)).with_for_update()
            )
        ).mappings()
    }

    conflicts: list[dict[str, Any]] = []
    deletes: list[tuple[int, int, str]] = []  # (row_no, record id, region)
    restores: dict[tuple[str, ...], list[tuple[int, int, str, dict[str, Any]]]] = defaultdict(list)
    hist: dict[str, list[str | None]] = {k: [] for k in HISTORY_COLUMNS}
    src = f"import-undo:{batch.id}"

    def log(row_no: int, rid: int, region: str, op: str, fld: str | None, before: Any, after: Any) -> None:
        hist["rid"].append(str(rid))
        hist["region"].append(region)
        hist["op"].append(op)
        hist["field"].append(fld)
        hist["before"].append(json.dumps(jsonable(before), ensure_ascii=False))
        hist["after"].append(json.dumps(jsonable(after), ensure_ascii=False))
        hist["source"].append(f"{src}:{row_no}")

    for r in rows:
        cur = current.get(r.record_id)
        after: dict[str, Any] = r.after or {}
        before: dict[str, Any] = r.before or {}
        if cur is None:
            conflicts.append(
                {
                    "row": r.row_no,
                    "record_id": r.record_id,
                    "field": None,
                    "code": "import.undo_record_gone",
                    "message": "记录已被删除，未撤销",
                }
            )
            continue
        edited = [c for c, v in after.items() if c in by_code and not _still(by_code[c], cur.get(c), v)]
        for c in edited:
            conflicts.append(
                {
                    "row": r.row_no,
                    "record_id": r.record_id,
                    "field": c,
                    "code": "import.undo_conflict",
                    "message": f"“{by_code[c].label}”导入后已被修改，保留现值",
                }
            )
        if r.outcome == "create":
            if not edited:
                deletes.append((r.row_no, r.record_id, cur["region_code"]))
            continue
        back = {c: _typed(by_code[c], before.get(c)) for c in after if c in by_code and c not in edited}
        if back:
            restores[tuple(sorted(back))].append((r.row_no, r.record_id, cur["region_code"], back))
            for c, v in back.items():
                log(r.row_no, r.record_id, cur["region_code"], "update", c, cur.get(c), v)

    if deletes:
        await session.execute(
            update(t)
            .where(_ids(t.c.id, "dids", [d[1] for d in deletes]))
            .values(deleted_at=func.now(), version=t.c.version + 1, updated_at=func.now())
        )
        for row_no, rid, region in deletes:
            log(row_no, rid, region, "delete", None, None, None)
    for codes, group in restores.items():
        cols: dict[str, list[str | None]] = {"_id": [str(g[1]) for g in group]}
        for c in codes:
            cols[c] = [as_text(g[3][c]) for g in group]
        u = rows_of("u", cols)
        values: dict[str, Any] = {c: cast(u.c[c], column_type(by_code[c])) for c in codes}
        values.update(
            version=t.c.version + 1,
            updated_at=func.now(),
            provenance=t.c.provenance.op("-")(cast(list(codes), ARRAY(Text))),
        )
        await session.execute(update(t).where(t.c.id == cast(u.c._id, BigInteger)).values(**values))
    await insert_history(session, batch.ledger, hist, importer.actor)
    removed = await _unlink(session, batch)

    now = datetime.now(UTC)
    batch.status = "undone"
    batch.undone_by = principal.actor
    batch.undone_at = now
    batch.updated_at = now
    restored = sum(len(g) for g in restores.values())
    batch.counts = {
        **batch.counts,
        "undo_deleted": len(deletes),
        "undo_restored": restored,
        "undo_conflicts": len(conflicts),
        **removed,
    }
    await append(
        session,
        actor=principal.actor,
        action="import_undo",
        path=f"import:{batch.id}",
        ledger=batch.ledger,
        record_ids=[d[1] for d in deletes][:10_000],
        detail={"batch": batch.id, "conflicts": len(conflicts)},
    )
    await session.flush()
    return {
        "id": batch.id,
        "status": batch.status,
        "deleted": len(deletes),
        "restored": restored,
        "conflicts": conflicts,
        **removed,
    }


async def _unlink(session: AsyncSession, batch: ImportBatch) -> dict[str, int]:
    """Remove the links the import made, then the households and houses it made that nothing links to."""
    t = tables()
    links = [
        r.links
        for r in (
            await session.execute(
                select(ImportRow.links).where(ImportRow.batch_id == batch.id, ImportRow.links.is_not(None))
            )
        ).all()
        if isinstance(r.links, dict)
    ]  # JSON null for rows that made nothing
    member = [v["member_link"] for v in links if v.get("member_link")]
    house_link = [v["house_link"] for v in links if v.get("house_link")]
    households = [v["household_created"] for v in links if v.get("household_created")]
    houses = [v["house_created"] for v in links if v.get("house_created")]
    for rel, ids in (("household_member", member), ("household_house", house_link)):
        if ids:
            lt = t.relations[rel]
            await session.execute(
                update(lt)
                .where(_ids(lt.c.id, "lids", ids), lt.c.deleted_at.is_(None))
                .values(deleted_at=func.now())
            )
    gone = {"undo_households_removed": 0, "undo_houses_removed": 0}
    for ledger, ids, rels, key in (
        ("household", households, ("household_member",), "undo_households_removed"),
        ("house", houses, ("household_house", "residence"), "undo_houses_removed"),
    ):
        if not ids:
            continue
        lt = t.ledgers[ledger]
        used = [
            exists().where(t.relations[r].c.to_id == lt.c.id, t.relations[r].c.deleted_at.is_(None))
            for r in rels
        ]
        stmt = (
            update(lt)
            .where(_ids(lt.c.id, "oids", ids), lt.c.deleted_at.is_(None), *(~u for u in used))
            .values(deleted_at=func.now(), version=lt.c.version + 1, updated_at=func.now())
            .returning(lt.c.id)
        )
        gone[key] = len((await session.execute(stmt)).all())
    return gone
