"""Commit an approved batch: the dry run's plan if nothing it depends on changed since (jobs.reuse_plan),
else the plan computed again inside the commit's transaction (matched records are locked FOR UPDATE
either way), then applied with a few bulk
statements: ids allocated from the ledger's identity in one query, one INSERT … SELECT FROM unnest for
new records, one UPDATE … FROM unnest per set of changed fields, one INSERT for the history rows.

Atomic per batch: everything, the batch's status included, is one transaction. A process killed
mid-commit leaves nothing behind (PostgreSQL rolls the transaction back) and the batch `approved`, so
the commit is simply run again. Idempotent: committing the same file again finds every row unchanged.

Provenance: each written field's provenance names the batch and the row ("import:<batch>", row), and
each history row's source is "import:<batch>:<row>"; the batch holds the file, its SHA-256 and sheet.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Text, cast, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.audit import append
from app.access.policy import LedgerPolicy, policy_for
from app.auth.principal import Principal
from app.catalog.model import Field
from app.db.ledger_tables import column_type
from app.dedupe.candidates import Candidate, enqueue_candidates
from app.errors import Problem
from app.imports import households
from app.imports.jobs import (
    RUNNING,
    build_plan,
    importer_of,
    is_approver,
    load_batch,
    long_transaction,
    save_mapping,
    store_rows,
    tracker,
)
from app.imports.models import ImportBatch
from app.imports.plan import Plan, Progress, RowPlan
from app.imports.writes import (
    CHUNK,
    HISTORY_COLUMNS,
    allocate_ids,
    as_text,
    insert_history,
    rows_of,
)
from app.ledger.history import jsonable


def _provenance(codes: list[str] | Any, batch_id: int, row_no: int, actor: str, at: str) -> str:
    entry = {"source": f"import:{batch_id}", "at": at, "actor": actor, "batch": batch_id, "row": row_no}
    return json.dumps(dict.fromkeys(codes, entry), ensure_ascii=False)


async def insert_records(
    session: AsyncSession, policy: LedgerPolicy, rows: list[RowPlan], batch_id: int, actor: str, at: str
) -> None:
    t = policy.table
    fields = [f for f in policy.ledger.fields if any(f.code in r.changes for r in rows)]
    ids = await allocate_ids(session, t.name, len(rows))
    for rp, rid in zip(rows, ids, strict=True):
        rp.record_id = rid
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        cols: dict[str, list[str | None]] = {
            "_id": [str(r.record_id) for r in chunk],
            "_region": [r.region for r in chunk],
            "_prov": [_provenance(list(r.changes), batch_id, r.row_no, actor, at) for r in chunk],
            "_flags": [json.dumps(r.flags) for r in chunk],
        }
        for f in fields:
            cols[f.code] = [as_text(r.changes.get(f.code, (None, None))[1]) for r in chunk]
        u = rows_of("u", cols)
        sel = select(
            cast(u.c._id, BigInteger),
            u.c._region,
            cast(u.c._prov, JSONB),
            cast(u.c._flags, JSONB),
            *(cast(u.c[f.code], column_type(f)) for f in fields),
        )
        await session.execute(
            insert(t).from_select(
                ["id", "region_code", "provenance", "flags", *(f.code for f in fields)], sel
            )
        )


async def update_records(
    session: AsyncSession, policy: LedgerPolicy, rows: list[RowPlan], batch_id: int, actor: str, at: str
) -> None:
    """One UPDATE … FROM unnest per distinct set of changed fields (a sheet has few such sets)."""
    t = policy.table
    by_code = {f.code: f for f in policy.ledger.fields}
    groups: dict[tuple[str, ...], list[RowPlan]] = defaultdict(list)
    for rp in rows:
        groups[tuple(sorted(rp.changes))].append(rp)
    for codes, group in groups.items():
        fields: list[Field] = [by_code[c] for c in codes]
        for start in range(0, len(group), CHUNK):
            chunk = group[start : start + CHUNK]
            cols: dict[str, list[str | None]] = {
                "_id": [str(r.record_id) for r in chunk],
                "_prov": [_provenance(codes, batch_id, r.row_no, actor, at) for r in chunk],
                "_flags": [json.dumps(r.flags) for r in chunk],
            }
            for f in fields:
                cols[f.code] = [as_text(r.changes[f.code][1]) for r in chunk]
            u = rows_of("u", cols)
            values: dict[str, Any] = {f.code: cast(u.c[f.code], column_type(f)) for f in fields}
            values.update(
                version=t.c.version + 1,
                updated_at=func.now(),
                provenance=t.c.provenance.op("||")(cast(u.c._prov, JSONB)),
                flags=t.c.flags.op("-")(cast(list(codes), ARRAY(Text))).op("||")(cast(u.c._flags, JSONB)),
            )
            await session.execute(update(t).where(t.c.id == cast(u.c._id, BigInteger)).values(**values))


async def write_history(
    session: AsyncSession,
    ledger: str,
    rows: list[RowPlan],
    batch_id: int,
    actor: str,
    ops: dict[int, str] | None = None,
) -> None:
    cols: dict[str, list[str | None]] = {k: [] for k in HISTORY_COLUMNS}
    for rp in rows:
        op = (ops or {}).get(rp.row_no) or ("create" if rp.outcome == "create" else "update")
        for code, (before, after) in rp.changes.items():
            cols["rid"].append(str(rp.record_id))
            cols["region"].append(rp.region)
            cols["op"].append(op)
            cols["field"].append(code)
            cols["before"].append(json.dumps(jsonable(before), ensure_ascii=False))
            cols["after"].append(json.dumps(jsonable(after), ensure_ascii=False))
            cols["source"].append(f"import:{batch_id}:{rp.row_no}")
    await insert_history(session, ledger, cols, actor)


async def commit(
    session: AsyncSession, principal: Principal, batch_id: int, progress: Progress | None = None
) -> ImportBatch:
    batch = await load_batch(session, principal, batch_id, lock=True)
    if batch.status == "committed":
        raise Problem(409, "import.already_committed", "该批次已导入")
    if batch.status not in ("approved", "failed"):
        raise Problem(409, "import.approval_required", "该批次尚未通过审核，不能导入")
    if principal.id != batch.uploader_user_id and not is_approver(principal):
        raise Problem(403, "import.commit_forbidden", "仅上传人或区级审核人员可执行导入")
    importer = await importer_of(session, batch)
    await long_transaction(session)
    run = tracker(batch.id, progress)
    try:
        plan = await build_plan(session, batch, importer, lock=True, progress=run)
        await apply(session, batch, importer, plan, run)
    finally:
        RUNNING.pop(batch.id, None)
    batch.status = "committed"
    batch.committed_by = principal.actor
    batch.committed_at = datetime.now(UTC)
    batch.updated_at = batch.committed_at
    batch.column_issues = plan.columns.issues
    await save_mapping(session, batch, principal.actor)
    await session.flush()
    return batch


async def apply(
    session: AsyncSession, batch: ImportBatch, importer: Principal, plan: Plan, run: Progress
) -> None:
    policy = await policy_for(session, importer, batch.ledger)
    at = datetime.now(UTC).isoformat()
    creates = [r for r in plan.rows if r.outcome == "create"]
    updates = [r for r in plan.rows if r.outcome == "update"]
    total = len(creates) + len(updates)
    run("write", 0, total)
    await insert_records(session, policy, creates, batch.id, importer.actor, at)
    run("write", len(creates), total)
    await update_records(session, policy, updates, batch.id, importer.actor, at)
    await write_history(session, batch.ledger, creates + updates, batch.id, importer.actor)
    run("write", total, total)
    first = {r.row_no: r.record_id for r in plan.rows if r.outcome in ("create", "update", "unchanged")}
    for r in plan.rows:
        if r.outcome == "duplicate" and r.duplicate_of is not None:
            r.record_id = first.get(r.duplicate_of)
    links: dict[int, dict[str, Any]] = {}
    counts = plan.counts(len(batch.skipped or []))
    if batch.ledger == "person":
        run("households", 0, len(plan.rows))
        links, hh_counts = await households.link(session, batch, importer, plan.rows)
        counts.update(hh_counts)
    if plan.candidates:
        cands = [
            Candidate(i, rec, score, reasons) for i, (_, rec, score, reasons, _) in enumerate(plan.candidates)
        ]
        incoming = [values for _, _, _, _, values in plan.candidates]
        await session.run_sync(
            lambda s: enqueue_candidates(
                s.connection(),
                batch.ledger,
                cands,
                source=f"import:{batch.id}",
                batch_id=batch.id,
                rows=incoming,
            )
        )
    extra = {
        r.row_no: {
            "before": {k: jsonable(b) for k, (b, _) in r.changes.items()} if r.changes else None,
            "after": {k: jsonable(a) for k, (_, a) in r.changes.items()} if r.changes else None,
            "links": links.get(r.row_no),
        }
        for r in plan.rows
    }
    run("rows", 0, len(plan.rows))
    await store_rows(session, batch.id, plan.rows, extra, values=not plan.reused)
    batch.counts = counts
    ids = [r.record_id for r in creates + updates if r.record_id is not None]
    await append(
        session,
        actor=importer.actor,
        action="import_commit",
        path=f"import:{batch.id}",
        ledger=batch.ledger,
        record_ids=ids[:10_000],
        fields=sorted({c for r in creates + updates for c in r.changes}),
        detail={"batch": batch.id, "file_sha256": batch.file_sha256, "records": len(ids)},
    )
