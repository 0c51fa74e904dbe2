"""Dispatch (一键下派): one task per township for a period, each pre-filled by one statement.

Pre-fill is a single INSERT … SELECT: the compiled template (app/report/compiler.py) runs as a CTE,
its rows land in report_row, and current ledger values of write-back gaps land in report_cell. Rows
are a snapshot; `refresh` re-runs it until the task is submitted, keeping what the township typed.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

from sqlalchemy import BigInteger, String, delete, func, insert, literal, select, true, union_all
from sqlalchemy.dialects.postgresql import JSONB, insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import audit
from app.access.policy import LedgerPolicy
from app.auth.principal import Principal
from app.errors import FieldError, Problem, invalid
from app.org.models import OrgUnit
from app.org.regions import region_prefix
from app.report.common import department_unit, latest_version, now, require_owner, spec_of, today, transition
from app.report.compiler import Compiled, compile_template, department_policies, department_principal
from app.report.dsl import TemplateSpec
from app.report.models import ReportCell, ReportRow, ReportTask, ReportTemplate

PREFILL_SETTINGS = {"plan_cache_mode": "force_custom_plan", "jit": "off"}  # for the pre-fill statement only
PREFILL_BATCH = 25  # tasks per INSERT … SELECT: a district's townships in one statement

_PERIOD = {
    "monthly": re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"),
    "quarterly": re.compile(r"^(\d{4})-Q([1-4])$"),
    "yearly": re.compile(r"^(\d{4})$"),
    "once": re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$"),
}
_PERIOD_HINT = {
    "monthly": "YYYY-MM，如 2026-11",
    "quarterly": "YYYY-Qn，如 2026-Q4",
    "yearly": "YYYY",
    "once": "字母数字和连字符，如 2026-census",
}


def period_end(kind: str, period: str) -> date | None:
    """Last day of a period, or None when the period string does not fit the template's period type."""
    m = _PERIOD[kind].match(period)
    if m is None:
        return None
    if kind == "monthly":
        y, mo = int(m[1]), int(m[2])
        return date(y, mo, calendar.monthrange(y, mo)[1])
    if kind == "quarterly":
        y, q = int(m[1]), int(m[2])
        return date(y, q * 3, calendar.monthrange(y, q * 3)[1])
    if kind == "yearly":
        return date(int(m[1]), 12, 31)
    return today()


def check_period(spec: TemplateSpec, period: str, path: str = "body.period") -> date:
    end = period_end(spec.period, period)
    if end is None:
        raise invalid(
            [FieldError(path, "report.period_format", f"报告期格式应为 {_PERIOD_HINT[spec.period]}")]
        )
    return end


def deadline_for(spec: TemplateSpec, end: date) -> date:
    d = spec.deadline
    if d.days_after_dispatch is not None or spec.period == "once":
        return today() + timedelta(days=d.days_after_dispatch or d.days_after_period_end or 0)
    assert d.days_after_period_end is not None  # a deadline names one of the two (dsl validation)
    return end + timedelta(days=d.days_after_period_end)


async def _audit_prefill(
    session: AsyncSession, task: ReportTask, compiled: Compiled, policies: dict[str, LedgerPolicy], actor: str
) -> None:
    """Pre-fill is a ledger read like any other: unmasked sensitive fields it copied are audited."""
    by_ledger: dict[str, list[str]] = {}
    for item in sorted(compiled.fields_used):
        ledger, _, fld = item.partition(".")
        if ledger in policies and fld in policies[ledger].plain_sensitive_fields:
            by_ledger.setdefault(ledger, []).append(fld)
    for ledger, fields in by_ledger.items():
        await audit.append(
            session,
            actor=actor,
            action="read_sensitive",
            path="report",
            ledger=ledger,
            fields=fields,
            detail={"task_id": task.id, "township": task.township_code, "rows": task.row_count},
        )


async def prefill(
    session: AsyncSession, task: ReportTask, compiled: Compiled, actor: str, policies: dict[str, LedgerPolicy]
) -> int:
    """(Re)fill a task's rows from the ledgers in one statement; returns the row count."""
    return (await prefill_many(session, [(task, compiled)], actor, policies))[task.id]


async def prefill_many(
    session: AsyncSession,
    items: list[tuple[ReportTask, Compiled]],
    actor: str,
    policies: dict[str, LedgerPolicy],
) -> dict[int, int]:
    """(Re)fill several tasks in one statement; returns {task id: row count}.

    Each task's compiled statement (its township's area and the department's policy, bound parameters)
    becomes one branch of a UNION ALL that feeds one INSERT … SELECT: one round trip and one plan for
    a whole dispatch, each branch planned for its own township prefix. Batches of PREFILL_BATCH tasks
    keep statements and their bound parameters within bounds for a city-wide dispatch (~1,000 townships).
    """
    counts: dict[int, int] = {}
    for i in range(0, len(items), PREFILL_BATCH):
        counts.update(await _prefill_batch(session, items[i : i + PREFILL_BATCH], actor))
    at = now()
    out = {}
    for task, compiled in items:
        task.row_count = out[task.id] = counts.get(task.id, 0)
        task.column_count = len(compiled.columns)
        task.gap_column_count = sum(1 for c in compiled.columns if c.kind == "gap")
        task.prefilled_at = at
        await _audit_prefill(session, task, compiled, policies, actor)
    return out


async def _prefill_batch(
    session: AsyncSession, items: list[tuple[ReportTask, Compiled]], actor: str
) -> dict[int, int]:
    rows, cells = ReportRow.__table__, ReportCell.__table__
    ids = [t.id for t, _ in items]
    await session.execute(delete(rows).where(rows.c.task_id.in_(ids)))
    await session.execute(delete(cells).where(cells.c.task_id.in_(ids), cells.c.origin == "prefill"))
    branches = [c.stmt.add_columns(literal(t.id, BigInteger).label("task_id")) for t, c in items]
    s = (branches[0] if len(branches) == 1 else union_all(*branches)).cte("s")
    ins_rows = (
        insert(rows)
        .from_select(
            ["task_id", "row_key", "row_no", "label", "record_id", "region_code", "data", "prov", "links"],
            select(
                s.c.task_id,
                s.c.row_key,
                s.c.row_no,
                s.c.label,
                s.c.record_id,
                s.c.region_code,
                s.c.data,
                s.c.prov,
                s.c.links,
            ),
        )
        .returning(rows.c.task_id)
        .cte("r")
    )
    if any(col.prefilled for _, c in items for col in c.columns):
        kv = func.jsonb_each(s.c.prefill).table_valued("key", "value").alias("kv")
        ins_cells = (
            pg_insert(cells)
            .from_select(
                ["task_id", "row_key", "column", "value", "origin", "updated_by", "updated_at"],
                select(
                    s.c.task_id,
                    s.c.row_key,
                    kv.c.key,
                    kv.c.value,
                    literal("prefill", String),
                    literal(actor, String),
                    func.now(),
                )
                .select_from(s)
                .join(kv, true())
                .where(kv.c.value.cast(JSONB) != literal("null").cast(JSONB)),
            )
            .on_conflict_do_nothing()  # a value the township typed wins over the ledger's
            .returning(cells.c.row_key)
            .cte("c")
        )
        # The cell count (unused) keeps the second insert in the statement.
        extra = [select(func.count()).select_from(ins_cells).scalar_subquery().label("cells")]
    else:
        # No write-back gap is pre-filled: no cells to insert, and `s`, read once, is not materialised.
        extra = []
    stmt = select(ins_rows.c.task_id, func.count().label("n"), *extra).group_by(ins_rows.c.task_id)
    # Settings for this statement only, put back right after it (a failed statement aborts the
    # transaction or savepoint, whose rollback reverts them anyway):
    # - plan_cache_mode: the same statement text recurs (every refresh of a template, every dispatch of
    #   it); once psycopg prepares it, a generic plan cannot turn the bound `region_code LIKE :prefix`
    #   into an index range;
    # - jit: a dispatch is one big UNION ALL whose cost is far above jit_above_cost, and on a server
    #   built with LLVM (PostgreSQL 15 on the full district) compiling its expressions took longer than
    #   running it (a 23-township aggregate: 117 s of JIT for 18 s of execution). See docs/reports.md.
    prev = await _set_local(session, PREFILL_SETTINGS)
    counts = {row[0]: row[1] for row in (await session.execute(stmt)).all()}
    await _set_local(session, prev)
    return counts


async def _set_local(session: AsyncSession, settings: dict[str, str]) -> dict[str, str]:
    """Set settings for the rest of the transaction (set_config(..., true)); returns their previous values."""
    names = list(settings)
    cols = [func.current_setting(n) for n in names] + [func.set_config(n, settings[n], True) for n in names]
    row = (await session.execute(select(*cols))).one()
    return dict(zip(names, row[: len(names)], strict=True))


async def township_units(session: AsyncSession, dept: OrgUnit, codes: list[str] | None) -> list[OrgUnit]:
    prefix = region_prefix(dept.region_code)
    stmt = select(OrgUnit).where(OrgUnit.kind == "township", OrgUnit.region_code.like(prefix + "%"))
    units = list((await session.scalars(stmt.order_by(OrgUnit.region_code))).all())
    if codes is not None:
        known = {u.region_code: u for u in units}
        bad = [
            FieldError(f"body.townships.{i}", "report.township_unknown", "不是本部门辖区内的镇街")
            for i, c in enumerate(codes)
            if c not in known
        ]
        if bad:
            raise invalid(bad)
        units = [known[c] for c in dict.fromkeys(codes)]
    return units


async def dispatch(
    session: AsyncSession,
    principal: Principal,
    template: ReportTemplate,
    *,
    period: str,
    townships: list[str] | None = None,
    deadline: date | None = None,
) -> dict:
    require_owner(principal, template)
    version = await latest_version(session, template, state="approved")
    if version is None:
        raise Problem(409, "report.not_approved", "报表模板尚未通过准入，不能下派")
    if version.pull_only:
        raise Problem(409, "report.pull_only", "该报表全部由台账生成，无需下派，部门可直接取数")
    spec = spec_of(version)
    end = check_period(spec, period)
    due = deadline or deadline_for(spec, end)
    dept = await department_unit(session, template)
    units = await township_units(session, dept, townships)
    policies = await department_policies(session, department_principal(dept))
    # The database decides who creates a township's task: concurrent dispatches of the same period each
    # insert with ON CONFLICT DO NOTHING on (version, period, township), in township order (no deadlock
    # between two requests naming townships in different orders); the loser waits for the winner's
    # commit and skips, so every request answers 200 and each township has one task.
    at = now()
    rows = [
        {
            "version_id": version.id,
            "period": period,
            "township_code": u.region_code,
            "township_name": u.name,
            "state": "dispatched",
            "deadline": due,
            "dispatched_by": principal.actor,
            "dispatched_at": at,
        }
        for u in sorted(units, key=lambda u: u.region_code)
    ]
    created: list[ReportTask] = []
    if rows:
        stmt = (
            pg_insert(ReportTask)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["version_id", "period", "township_code"])
            .returning(ReportTask)
        )
        created = list((await session.scalars(stmt, execution_options={"populate_existing": True})).all())
    asked = {u.region_code: i for i, u in enumerate(units)}
    created.sort(key=lambda t: asked[t.township_code])  # in the order asked, as before
    await prefill_many(
        session,
        [(t, compile_template(spec, policies, region_prefix(t.township_code))) for t in created],
        principal.actor,
        policies,
    )
    for task in created:
        transition(session, actor=principal.actor, frm=None, to="dispatched", task_id=task.id)
    await session.flush()
    return {
        "template_id": template.id,
        "version": version.version,
        "period": period,
        "deadline": due,
        "created": len(created),
        "existing": len(units) - len(created),
        "tasks": [
            {
                "id": t.id,
                "township_code": t.township_code,
                "township_name": t.township_name,
                "rows": t.row_count,
            }
            for t in created
        ],
    }


async def refresh(
    session: AsyncSession,
    principal: Principal,
    task: ReportTask,
    template: ReportTemplate,
    spec: TemplateSpec,
) -> int:
    dept = await department_unit(session, template)
    policies = await department_policies(session, department_principal(dept))
    compiled = compile_template(spec, policies, region_prefix(task.township_code))
    return await prefill(session, task, compiled, principal.actor, policies)
