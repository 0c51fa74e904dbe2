"""Import jobs: upload -> (sheet, mapping) -> dry run -> submit -> approve -> commit -> undo.

Every step takes the acting principal. The import reads and writes through the *uploader's*
LedgerPolicy (their fields, their area), whoever presses the button: a district reviewer approving
or committing a township's batch does not widen what the township's sheet may change.

Progress of running dry runs and commits is kept per process in `RUNNING` (phase, done, total, rows/s)
and shown by `GET /imports/{id}` and the CLI.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import (
    BigInteger,
    Integer,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.policy import policy_for
from app.auth.deps import principal_of
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.dedupe.candidates import find_candidates
from app.errors import FieldError, Problem
from app.imports.area import AreaIndex, load_area
from app.imports.mapping import ColumnMap, propose_mapping
from app.imports.models import ImportBatch, ImportFile, ImportMapping, ImportRow
from app.imports.plan import (
    ColumnPlan,
    Plan,
    Progress,
    RowPlan,
    check_households,
    convert_rows,
    create_or_error,
    decide,
    existing_by_key,
    issue,
    merge_in_file,
    place_rows,
    plan_columns,
)
from app.imports.reading import SheetTable, read_table
from app.imports.writes import rows_of, text_rows
from app.ledger.history import jsonable
from app.org.models import OrgUnit, User
from app.report.bulk import json_texts
from app.sheets.guard import SheetRefused

APPROVER_ROLES = frozenset({"platform_admin", "district_reviewer", "dept_admin"})
SUFFIXES = (".xlsx", ".xls", ".csv")


@dataclass
class Running:
    phase: str
    done: int
    total: int
    started: float

    def as_dict(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else None
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "rows_per_second": round(rate, 1),
            "eta_seconds": round(eta, 1) if eta is not None else None,
        }


RUNNING: dict[int, Running] = {}


def tracker(batch_id: int, also: Progress | None = None) -> Progress:
    started = time.monotonic()

    def progress(phase: str, done: int, total: int) -> None:
        RUNNING[batch_id] = Running(phase, done, total, started)
        if also is not None:
            also(phase, done, total)

    return progress


async def long_transaction(session: AsyncSession) -> None:
    """A dry run or commit of a large sheet spends minutes in one transaction, much of it converting rows
    in Python between statements: the service's per-request statement and idle-in-transaction timeouts
    would end it, so this transaction gets limits of its own (SET LOCAL: they end with it)."""
    await session.execute(text("SET LOCAL statement_timeout = '10min'"))
    await session.execute(text("SET LOCAL idle_in_transaction_session_timeout = '30min'"))


# ---- who may do what ----------------------------------------------------------------------------


def is_approver(p: Principal) -> bool:
    return (
        p.kind == "user" and p.org_unit_kind in ("platform", "department") and bool(p.roles & APPROVER_ROLES)
    )


def _conflict(code: str, title: str) -> Problem:
    return Problem(409, code, title)


async def load_batch(
    session: AsyncSession, principal: Principal, batch_id: int, *, lock: bool = False
) -> ImportBatch:
    """A batch its township (or a district reviewer over that township) may see; 404 for anyone else."""
    stmt = select(ImportBatch).where(ImportBatch.id == batch_id)
    if lock:
        stmt = stmt.with_for_update()
    batch = (await session.scalars(stmt)).first()
    if batch is None or not batch.township_code.startswith(principal.region_prefix):
        raise Problem(404, "import.not_found", "导入批次不存在或无权访问")
    return batch


async def importer_of(session: AsyncSession, batch: ImportBatch) -> Principal:
    row = (
        await session.execute(
            select(User, OrgUnit)
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .where(User.id == batch.uploader_user_id)
        )
    ).first()
    if row is None:
        raise Problem(409, "import.uploader_gone", "上传人账号已不存在，无法继续该批次")
    user, unit = row
    return principal_of("user", user.id, user.username, unit, frozenset(user.roles or ()))


def form_key(file_name: str) -> str:
    """The legacy form a file is, from its name without dates and numbers: 2026年11月人口台账.xlsx -> 人口台账."""
    stem = Path(file_name).stem
    stem = re.sub(r"\d+\s*[年月日号期季度]?", "", stem)
    stem = re.sub(r"[\s_\-()（）【】\[\].·]+", "", stem)
    return stem[:200] or "未命名表格"


# ---- upload, sheet, mapping --------------------------------------------------------------------


def _read(content: bytes, file_name: str, sheet: str | None) -> SheetTable:
    suffix = Path(file_name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="onetable-import-") as d:
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(content)
        table = read_table(path, sheet=sheet)
    table.file_name = file_name
    return table


async def read_sheet(content: bytes, file_name: str, sheet: str | None) -> SheetTable:
    """The parse runs in app/sheets' worker process (read_table); waiting for it happens off the loop."""
    try:
        return await anyio.to_thread.run_sync(_read, content, file_name, sheet)
    except SheetRefused as r:
        raise Problem(r.status, r.code, r.message) from None


async def upload(
    session: AsyncSession,
    principal: Principal,
    *,
    ledger: str,
    township: str,
    file_name: str,
    content: bytes,
    sheet: str | None = None,
    form_name: str | None = None,
    table: SheetTable | None = None,
) -> ImportBatch:
    if principal.kind != "user":
        raise Problem(403, "import.users_only", "仅限工作人员账号导入")
    if get_catalog().ledger(ledger) is None:
        raise Problem(404, "ledger.not_found", "台账不存在")
    if not re.fullmatch(r"\d{9}(000)?", township):
        raise Problem(
            422,
            "validation.failed",
            "镇街区划代码应为 9 位或 12 位数字",
            errors=[FieldError("township", "division_code.format", "镇街区划代码格式不正确")],
        )
    township = township[:9] + "000"
    policy = await policy_for(session, principal, ledger)
    if not policy.in_scope(township) or not policy.can_write_any():
        raise Problem(403, "import.township_forbidden", "无权向该镇街的台账导入数据")
    if not file_name.lower().endswith(SUFFIXES):
        raise Problem(422, "import.file_type", "仅支持 XLSX、XLS 或 CSV 文件")
    if table is None:
        table = await read_sheet(content, file_name, sheet)
    batch = ImportBatch(
        ledger=ledger,
        township_code=township,
        file_name=file_name[:255],
        file_sha256=hashlib.sha256(content).hexdigest(),
        file_size=len(content),
        form_name=(form_name or form_key(file_name))[:200],
        uploader=principal.actor,
        uploader_user_id=principal.id,
        status="draft",
    )
    session.add(batch)
    await session.flush()
    session.add(ImportFile(batch_id=batch.id, content=content))
    await _stage(session, batch, table)
    return batch


async def _stage(session: AsyncSession, batch: ImportBatch, table: SheetTable) -> None:
    saved = (
        await session.scalars(
            select(ImportMapping.columns).where(
                ImportMapping.ledger == batch.ledger, ImportMapping.form_name == batch.form_name
            )
        )
    ).first()
    mapping = propose_mapping(batch.ledger, table.headers, saved)
    batch.sheet_name = table.sheet_name[:100] if table.sheet_name else None
    batch.sheet_names = list(table.sheet_names)
    batch.headers = list(table.headers)
    batch.mapping = [asdict(m) for m in mapping]
    batch.skipped = [list(s) for s in table.skipped]
    batch.column_issues = []
    batch.counts = {"read": len(table.rows), "skipped": len(table.skipped)}
    batch.status = "draft"
    batch.updated_at = datetime.now(UTC)
    await session.execute(delete(ImportRow).where(ImportRow.batch_id == batch.id))
    for start in range(0, len(table.rows), 50_000):
        chunk = table.rows[start : start + 50_000]
        u = text_rows(
            "u", row_no=[str(r.row_no) for r in chunk], raw=json_texts([list(r.cells) for r in chunk])
        )
        await session.execute(
            insert(ImportRow).from_select(
                ["batch_id", "row_no", "raw"],
                select(literal(batch.id), cast(u.c.row_no, Integer), cast(u.c.raw, JSONB)),
            )
        )
    await session.flush()


def _editable(batch: ImportBatch) -> None:
    if batch.status not in ("draft", "dry_run", "awaiting_approval"):
        raise _conflict("import.not_editable", "该批次已审核或已导入，不能再修改")


async def choose_sheet(session: AsyncSession, principal: Principal, batch_id: int, sheet: str) -> ImportBatch:
    batch = await load_batch(session, principal, batch_id, lock=True)
    _uploader_only(principal, batch)
    _editable(batch)
    if sheet not in (batch.sheet_names or []):
        raise Problem(
            422,
            "import.sheet_unknown",
            "文件中没有该工作表",
            errors=[FieldError("body.sheet", "import.sheet_unknown", "工作表不存在")],
        )
    content = (await session.scalars(select(ImportFile.content).where(ImportFile.batch_id == batch.id))).one()
    await _stage(session, batch, await read_sheet(content, batch.file_name, sheet))
    return batch


def _uploader_only(principal: Principal, batch: ImportBatch) -> None:
    if principal.id != batch.uploader_user_id or principal.kind != "user":
        raise Problem(403, "import.uploader_only", "仅上传人可修改该批次")


async def set_mapping(
    session: AsyncSession, principal: Principal, batch_id: int, columns: dict[int, str | None]
) -> ImportBatch:
    """Adjust the mapping: column index -> field code (None to leave the column out, flagged)."""
    batch = await load_batch(session, principal, batch_id, lock=True)
    _uploader_only(principal, batch)
    _editable(batch)
    maps = [dict(m) for m in batch.mapping]
    by_index = {m["index"]: m for m in maps}
    errors = [
        FieldError(f"body.columns.{i}", "import.column_unknown", "没有该列")
        for i in columns
        if i not in by_index
    ]
    if errors:
        raise Problem(422, "validation.failed", "列映射有误", errors=errors)
    for i, code in columns.items():
        by_index[i]["field"] = code or None
        by_index[i]["how"] = "manual"
    batch.mapping = maps
    batch.status = "draft"
    batch.updated_at = datetime.now(UTC)
    await session.flush()
    return batch


# ---- plan (dry run) ----------------------------------------------------------------------------


@dataclass
class _DryRun:
    """A dry run's plan, kept in this process for the commit of the same batch."""

    fingerprint: tuple[Any, ...]
    plan: Plan
    columns: ColumnPlan  # what the importer's policy let through when the plan was made
    area: AreaIndex
    matched: dict[str, tuple[int, int, str]]  # natural key -> (record id, version, region)
    at: float


# Plans of recent dry runs by batch id. The commit takes its batch's entry (pop: a failed commit
# replans) and uses it only if nothing the plan depended on has changed since (reuse_plan). Bounded:
# a batch approved much later, or committed by another worker process, is simply planned again.
DRY_RUNS: dict[int, _DryRun] = {}
DRY_RUN_KEEP = 1  # a large sheet's plan is hundreds of MiB: keep the latest only
DRY_RUN_TTL = 6 * 3600.0


def _fingerprint(batch: ImportBatch, importer: Principal) -> tuple[Any, ...]:
    catalog = get_catalog()
    return (
        id(catalog),
        catalog.stamp,
        batch.ledger,
        batch.township_code,
        batch.file_sha256,
        batch.sheet_name,
        json.dumps(batch.mapping, sort_keys=True, ensure_ascii=False),
        importer.id,
        importer.region_prefix,
        tuple(sorted(importer.roles)),
    )


def _matched(existing: dict[str, dict[str, Any]]) -> dict[str, tuple[int, int, str]]:
    return {k: (int(r["id"]), int(r["version"]), str(r["region_code"])) for k, r in existing.items()}


def _keep(batch_id: int, kept: _DryRun) -> None:
    now = time.monotonic()
    for bid in [b for b, d in DRY_RUNS.items() if now - d.at > DRY_RUN_TTL]:
        DRY_RUNS.pop(bid, None)
    DRY_RUNS.pop(batch_id, None)
    while len(DRY_RUNS) >= DRY_RUN_KEEP:
        DRY_RUNS.pop(next(iter(DRY_RUNS)))
    DRY_RUNS[batch_id] = kept


async def reuse_plan(
    session: AsyncSession, batch: ImportBatch, importer: Principal, progress: Progress | None = None
) -> Plan | None:
    """The dry run's plan, if the commit may use it as is: same staged rows, mapping, catalogue,
    importer, columns allowed by the importer's policy now, division tree, and every record the
    plan matched by natural key still there with the same version and area (and no other record
    with one of the sheet's keys) -- checked with the commit's own FOR UPDATE lookup, so the check
    and the locks are one query. Rows without a natural key (dedupe candidates) are never reused."""
    kept = DRY_RUNS.pop(batch.id, None)
    if kept is None or time.monotonic() - kept.at > DRY_RUN_TTL:
        return None
    if kept.fingerprint != _fingerprint(batch, importer):
        return None
    policy = await policy_for(session, importer, batch.ledger)
    if plan_columns(policy, [ColumnMap(**m) for m in batch.mapping]) != kept.columns:
        return None
    if await load_area(session, batch.township_code[:6]) != kept.area:
        return None
    keys = sorted({rp.key for rp in kept.plan.rows if rp.key is not None})
    if progress:
        progress("match", 0, len(keys))
    existing = await existing_by_key(session, policy, keys, lock=True)
    if _matched(existing) != kept.matched:
        return None
    if any(
        not policy.in_scope(rp.region or "")
        for rp in kept.plan.rows
        if rp.outcome in ("create", "update", "unchanged")
    ):
        return None
    if progress:
        progress("match", len(keys), len(keys))
    return kept.plan


async def build_plan(
    session: AsyncSession,
    batch: ImportBatch,
    importer: Principal,
    *,
    lock: bool,
    progress: Progress | None = None,
) -> Plan:
    if lock:
        reused = await reuse_plan(session, batch, importer, progress)
        if reused is not None:
            reused.reused = True
            return reused
    policy = await policy_for(session, importer, batch.ledger)
    columns = plan_columns(policy, [ColumnMap(**m) for m in batch.mapping])
    raw_rows = [
        (r.row_no, list(r.raw))
        for r in (
            await session.execute(
                select(ImportRow.row_no, ImportRow.raw)
                .where(ImportRow.batch_id == batch.id)
                .order_by(ImportRow.row_no)
            )
        ).all()
    ]
    rows = await anyio.to_thread.run_sync(convert_rows, batch.ledger, columns, raw_rows, progress)
    del raw_rows
    area = await load_area(session, batch.township_code[:6])
    place_rows(rows, area, batch.township_code)
    first = merge_in_file(policy.ledger, rows)
    if progress:
        progress("match", 0, len(first))
    existing = await existing_by_key(session, policy, list(first), lock=lock)
    keyless = decide(policy, rows, first, existing, batch.township_code)
    plan = Plan(rows, columns)
    await _candidates(session, batch, policy, keyless, plan)
    check_households(rows)
    if progress:
        progress("match", len(first), len(first))
    if not lock and not keyless:
        _keep(
            batch.id,
            _DryRun(_fingerprint(batch, importer), plan, columns, area, _matched(existing), time.monotonic()),
        )
    return plan


async def _candidates(
    session: AsyncSession, batch: ImportBatch, policy: Any, keyless: list[RowPlan], plan: Plan
) -> None:
    """Rows without a natural key: likely duplicates become `candidate` (never merged); the rest are
    created if they are complete records, else errors."""
    if not keyless:
        return
    payload = [dict(rp.values) for rp in keyless]
    found = await session.run_sync(
        lambda s: find_candidates(
            s.connection(), batch.ledger, payload, region_prefix=batch.township_code[:9]
        )
    )
    best: dict[int, Any] = {}
    for c in found:
        if c.row_index not in best or c.score > best[c.row_index].score:
            best[c.row_index] = c
    for i, rp in enumerate(keyless):
        if i not in best:
            create_or_error(policy, rp)
            continue
        c = best[i]
        rp.outcome, rp.record_id = "candidate", c.record_id
        rp.issues.append(
            issue(
                None,
                None,
                None,
                "import.candidate",
                "可能与台账中已有记录为同一对象，已转人工核对：" + "；".join(c.reasons),
                "warning",
            )
        )
        plan.candidates.append((rp.row_no, c.record_id, c.score, list(c.reasons), dict(rp.values)))


async def dry_run(
    session: AsyncSession, principal: Principal, batch_id: int, progress: Progress | None = None
) -> ImportBatch:
    batch = await load_batch(session, principal, batch_id, lock=True)
    _uploader_only(principal, batch)
    _editable(batch)
    await long_transaction(session)
    run = tracker(batch.id, progress)
    try:
        plan = await build_plan(session, batch, principal, lock=False, progress=run)
        await store_rows(session, batch.id, plan.rows)
    finally:
        RUNNING.pop(batch.id, None)
    batch.column_issues = plan.columns.issues
    batch.counts = plan.counts(len(batch.skipped or []))
    batch.status = "dry_run"
    batch.updated_at = datetime.now(UTC)
    await session.flush()
    return batch


async def store_rows(
    session: AsyncSession,
    batch_id: int,
    rows: list[RowPlan],
    extra: dict[int, dict[str, Any]] | None = None,
    *,
    values: bool = True,
) -> None:
    """Outcome, values, issues and record of every staged row, in one UPDATE … FROM unnest per chunk.
    values=False leaves each row's converted values and duplicate_of as the dry run stored them (a
    commit that reused the dry run's plan: they are the same)."""
    extra = extra or {}
    for start in range(0, len(rows), 50_000):
        chunk = rows[start : start + 50_000]
        cols: dict[str, Sequence[str | None]] = {
            "row_no": [str(r.row_no) for r in chunk],
            "outcome": [r.outcome for r in chunk],
            "issues": json_texts([r.issues for r in chunk]),
            "record_id": [str(r.record_id) if r.record_id is not None else None for r in chunk],
            "before": json_texts([extra.get(r.row_no, {}).get("before") for r in chunk]),
            "after": json_texts(
                [
                    extra.get(r.row_no, {}).get("after")
                    or ({k: jsonable(a) for k, (_, a) in r.changes.items()} if r.changes else None)
                    for r in chunk
                ]
            ),
            "links": json_texts([extra.get(r.row_no, {}).get("links") for r in chunk]),
        }
        if values:
            cols["vals"] = json_texts([{k: jsonable(v) for k, v in r.values.items()} for r in chunk])
            cols["dup"] = [str(r.duplicate_of) if r.duplicate_of is not None else None for r in chunk]
        u = rows_of("u", cols)
        sets: dict[str, Any] = {
            "outcome": u.c.outcome,
            "issues": cast(u.c.issues, JSONB),
            "record_id": cast(u.c.record_id, BigInteger),
            "before": cast(u.c.before, JSONB),
            "after": cast(u.c.after, JSONB),
            "links": cast(u.c.links, JSONB),
        }
        if values:
            sets.update(values=cast(u.c.vals, JSONB), duplicate_of=cast(u.c.dup, Integer))
        await session.execute(
            update(ImportRow)
            .where(ImportRow.batch_id == batch_id, ImportRow.row_no == cast(u.c.row_no, Integer))
            .values(**sets),
            execution_options={"synchronize_session": False},
        )


# ---- review -----------------------------------------------------------------------------------


async def submit(session: AsyncSession, principal: Principal, batch_id: int) -> ImportBatch:
    batch = await load_batch(session, principal, batch_id, lock=True)
    _uploader_only(principal, batch)
    if batch.status != "dry_run":
        raise _conflict("import.dry_run_required", "请先完成试导入（dry run）再提交审核")
    batch.status = "awaiting_approval"
    batch.updated_at = datetime.now(UTC)
    await session.flush()
    return batch


async def approve(session: AsyncSession, principal: Principal, batch_id: int) -> ImportBatch:
    batch = await load_batch(session, principal, batch_id, lock=True)
    if not is_approver(principal):
        raise Problem(403, "import.approval_forbidden", "仅区级审核人员可审核导入批次")
    if principal.id == batch.uploader_user_id:
        raise Problem(403, "import.approval_forbidden", "不能审核自己上传的批次")
    if batch.status != "awaiting_approval":
        raise _conflict("import.not_awaiting_approval", "该批次不在待审核状态")
    batch.status = "approved"
    batch.approved_by = principal.actor
    batch.approved_at = datetime.now(UTC)
    batch.updated_at = batch.approved_at
    await session.flush()
    return batch


async def save_mapping(session: AsyncSession, batch: ImportBatch, actor: str) -> None:
    """The mapping a committed batch used, saved for its legacy form (C1-9)."""
    columns = {m["header"]: (m["field"] or "") for m in batch.mapping}
    stmt = pg_insert(ImportMapping).values(
        ledger=batch.ledger,
        form_name=batch.form_name or form_key(batch.file_name),
        columns=columns,
        saved_by=actor,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["ledger", "form_name"],
            set_={"columns": stmt.excluded.columns, "saved_by": actor, "updated_at": func.now()},
        )
    )


# ---- reading a batch --------------------------------------------------------------------------


def summary_progress(batch_id: int) -> dict[str, Any] | None:
    running = RUNNING.get(batch_id)
    return running.as_dict() if running else None


def summary(batch: ImportBatch) -> dict[str, Any]:
    return {
        "id": batch.id,
        "ledger": batch.ledger,
        "township": batch.township_code,
        "status": batch.status,
        "file_name": batch.file_name,
        "file_sha256": batch.file_sha256,
        "file_size": batch.file_size,
        "sheet": batch.sheet_name,
        "sheets": batch.sheet_names,
        "form_name": batch.form_name,
        "mapping": batch.mapping,
        "column_issues": batch.column_issues,
        "skipped": batch.skipped,
        "counts": batch.counts,
        "progress": summary_progress(batch.id),
        "uploader": batch.uploader,
        "approved_by": batch.approved_by,
        "approved_at": batch.approved_at,
        "committed_at": batch.committed_at,
        "undone_at": batch.undone_at,
        "error": batch.error,
        "created_at": batch.created_at,
    }


async def list_rows(
    session: AsyncSession,
    principal: Principal,
    batch_id: int,
    *,
    outcome: str | None,
    after_row: int,
    limit: int,
) -> dict[str, Any]:
    batch = await load_batch(session, principal, batch_id)
    stmt = (
        select(
            ImportRow.row_no,
            ImportRow.outcome,
            ImportRow.record_id,
            ImportRow.duplicate_of,
            ImportRow.issues,
            ImportRow.raw,
        )
        .where(ImportRow.batch_id == batch.id, ImportRow.row_no > after_row)
        .order_by(ImportRow.row_no)
        .limit(limit + 1)
    )
    if outcome:
        stmt = stmt.where(ImportRow.outcome == outcome)
    rows = (await session.execute(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    # Raw cells are what the importer's own township typed; record ids of candidates are not shown
    # (the candidate may be a record the uploader cannot read: the review queue decides).
    items = [
        {
            "row": r.row_no,
            "outcome": r.outcome,
            "record_id": r.record_id if r.outcome != "candidate" else None,
            "duplicate_of": r.duplicate_of,
            "issues": r.issues,
        }
        for r in rows
    ]
    return {"items": items, "next_after": rows[-1].row_no if more and rows else None}
