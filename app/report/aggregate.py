"""The department's view across townships: list reports concatenated, aggregate reports merged by row key
(counts and sums added, means recomputed from carried sums and counts, formulas and ratios recomputed),
with a district total row. Pull-only templates are read live from the ledgers in one statement.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.errors import FieldError, Problem, invalid
from app.org.regions import region_prefix
from app.query.formulas import evaluation_order
from app.report import formula as fm
from app.report.common import department_unit, latest_version, now, spec_of
from app.report.compiler import OutColumn, compile_template, department_policies, department_principal
from app.report.dispatch import check_period
from app.report.dsl import TemplateSpec
from app.report.models import ReportTask, ReportTemplate
from app.report.reader import DENIED, audit_rows, holds_township, narrowed, reader_cut
from app.report.tasks.rows import columns_for, rows_of

STATES = {"dispatched", "in_progress", "submitted", "returned", "approved"}


async def collect(
    session: AsyncSession,
    principal: Principal,
    template: ReportTemplate,
    *,
    period: str | None,
    states: set[str],
    path: str = "report:aggregate",
) -> dict:
    """The aggregate as this reader sees it: its rows, its field levels (app/report/reader.py)."""
    if not (principal.is_platform_admin or principal.department_code == template.department_code):
        raise Problem(403, "report.not_owner", "只有模板所属部门可以汇总")
    version = await latest_version(session, template, state="approved")
    if version is None:
        raise Problem(409, "report.not_approved", "报表模板尚未通过准入")
    spec = spec_of(version)
    head: dict[str, Any] = {
        "template": {
            "id": template.id,
            "code": template.code,
            "name": template.name,
            "version": version.version,
            "department_code": template.department_code,
            "kind": spec.kind,
            "pull_only": version.pull_only,
        },
        "period": period,
        "generated_at": now(),
    }
    if version.pull_only:
        dept = await department_unit(session, template)
        area = region_prefix(dept.region_code)
        policies = await department_policies(session, department_principal(dept))
        cols = compile_template(spec, policies, area).columns  # 403 if the department lost a grant
        cut = await reader_cut(session, principal, spec, cols)
        # Computed live: with both policies at once, so rows and aggregates are the reader's share only.
        live = compile_template(spec, narrowed(policies, cut.policies), area, strict=False).stmt.subquery("s")
        data, _ = cut.cells(cols, live.c.data, live.c.data, None)  # scopes already in the statement
        # Region rows (villages, townships) outside the reader's scope are left out; code-value rows
        # were counted over the reader's share only.
        rows = (
            await session.execute(
                select(live.c.row_key, live.c.label, live.c.record_id, live.c.region_code, data.label("data"))
                .where(or_(live.c.region_code.is_(None), cut.rows(live.c.region_code)))
                .order_by(live.c.row_no)
            )
        ).all()
        shown = cut.out_columns(cols)
        items = [_item(r, shown, None) for r in rows]
        tasks: list[dict] = []
        head["source"] = "ledger_live"
    else:
        if period is None:
            raise invalid([FieldError("query.period", "report.period_required", "需要报告期")])
        check_period(spec, period, "query.period")
        bad = states - STATES
        if bad:
            raise invalid([FieldError("query.states", "report.state_unknown", "未知的任务状态")])
        task_rows = (
            await session.scalars(
                select(ReportTask)
                .where(ReportTask.version_id == version.id, ReportTask.period == period)
                .order_by(ReportTask.township_code)
            )
        ).all()
        cols = await columns_for(session, template, spec)
        cut = await reader_cut(session, principal, spec, cols)
        shown = cut.out_columns(cols)
        included = [t for t in task_rows if t.state in states]
        names = {t.id: (t.township_code, t.township_name) for t in task_rows}
        rows = await rows_of(session, [t.id for t in included], cut=cut, cols=cols)
        items = [_item(r, shown, names[r.task_id]) for r in rows]
        tasks = [
            {
                "id": t.id,
                "township_code": t.township_code,
                "township_name": t.township_name,
                "state": t.state,
                "included": t.state in states,
                "rows": t.row_count,
                "prefilled_at": t.prefilled_at,
                "submitted_at": t.submitted_at,
                "approved_at": t.approved_at,
            }
            for t in task_rows
            if holds_township(cut.policies[spec.ledger].scope, t.township_code)
        ]
        head["source"] = "tasks"
        head["complete"] = bool(task_rows) and all(t.state == "approved" for t in task_rows)
    await audit_rows(
        session, cut, shown, [r.record_id for r in rows], path, {"template_id": template.id, "period": period}
    )
    total = None
    if spec.kind == "aggregate":
        withheld = [c.code for c in shown if cut.columns[c.code].level == DENIED]
        items = merge(items, shown, spec)
        total = merge(items, shown, spec, total=True)[0] if items else None
        for it in [*items, *([total] if total else [])]:
            it["cells"].update(dict.fromkeys(withheld))  # never recomputed from what the reader can't see
    return {**head, "columns": cut.public(cols), "tasks": tasks, "items": strip_carry(items), "total": total}


def _item(r, cols: list[OutColumn], township: tuple[str, str] | None) -> dict:
    gaps = getattr(r, "gaps", None) or {}
    cells = {c.code: gaps.get(c.code) if c.kind == "gap" else r.data.get(c.code) for c in cols}
    hidden = {k: v for k, v in r.data.items() if k.startswith("__")}
    out = {"key": r.row_key, "label": r.label, "region_code": r.region_code, "cells": cells}
    if r.record_id is not None:
        out["record_id"] = r.record_id
    if township:
        out["township_code"], out["township_name"] = township
    if hidden:
        out["_carry"] = hidden
    return out


def _num(v) -> Decimal | None:
    return None if v is None or isinstance(v, bool) else Decimal(str(v))


def merge(items: list[dict], cols: list[OutColumn], spec: TemplateSpec, *, total: bool = False) -> list[dict]:
    """Rows with the same key (code-value rows of several townships; or all rows for the total) become one."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault("__total__" if total else it["key"], []).append(it)
    if not total and all(len(g) == 1 for g in groups.values()):
        return items
    trees = fm.derived_trees(spec)
    order = evaluation_order({code: fm.refs(node) for code, (node, _) in trees.items()}).order
    out = []
    for key, group in groups.items():
        cells: dict[str, object] = {}
        carry: dict[str, Decimal | list[Any]] = {}  # sums, or distinct values
        for k in {k for it in group for k in it.get("_carry", {})}:
            if k.startswith("__d_"):
                carry[k] = _union([it.get("_carry", {}).get(k) for it in group])
                continue
            vals = [_num(it["_carry"].get(k)) for it in group]
            carry[k] = sum((v for v in vals if v is not None), Decimal(0))
        for c in cols:
            vals = [
                _num(it["cells"].get(c.code)) if c.type in ("integer", "decimal") else it["cells"].get(c.code)
                for it in group
            ]
            present = [v for v in vals if v is not None]
            if c.kind in ("formula", "ratio"):
                continue
            if c.fn == "avg":
                s, n = carry.get(f"__s_{c.code}"), carry.get(f"__n_{c.code}")
                cells[c.code] = (
                    round(s / n, 2) if isinstance(s, Decimal) and isinstance(n, Decimal) and n else None
                )
            elif c.fn in ("min", "max"):
                cells[c.code] = (min if c.fn == "min" else max)(present) if present else None
            elif c.fn == "count_distinct":
                # Distinct counts do not add up: the number of distinct values over the union of the parts'
                # carried values. A part stored without them (before they were carried) leaves it blank.
                values = [it.get("_carry", {}).get(f"__d_{c.code}") for it in group]
                known = all(
                    v is not None or not it["cells"].get(c.code) for v, it in zip(values, group, strict=True)
                )
                cells[c.code] = (
                    (present[0] if present else None)
                    if len(group) == 1
                    else (len(d) if isinstance(d := carry.get(f"__d_{c.code}"), list) else 0)
                    if known
                    else None
                )
            elif c.type in ("integer", "decimal"):
                cells[c.code] = sum(present, Decimal(0)) if present else None
            else:
                cells[c.code] = present[0] if len(set(map(str, present))) == 1 else None
        for code in order:  # formulas over formulas: each after the ones it uses (app/query/formulas.py)
            tree, scale = trees[code]
            v = fm.evaluate(tree, cells)
            cells[code] = None if v is None else fm.rounded(v, scale)
        cells = {
            k: (
                int(v)
                if isinstance(v, Decimal)
                and v == v.to_integral_value()
                and next(c for c in cols if c.code == k).type == "integer"
                else v
            )
            for k, v in cells.items()
        }
        first = group[0]
        out.append(
            {
                "key": "total" if total else key,
                "label": "合计" if total else first.get("label"),
                "region_code": None if total else first.get("region_code"),
                "cells": cells,
                **({"_carry": carry} if carry and not total else {}),
                **({"townships": len({it.get("township_code") for it in group})} if not total else {}),
            }
        )
    return out


def _union(parts: list[list | None]) -> list:
    """The distinct values of several parts' carried lists (JSON scalars), in a stable order."""
    seen: dict[str, object] = {}
    for part in parts:
        for v in part or []:
            seen.setdefault(json.dumps(v, sort_keys=True, default=str), v)
    return [seen[k] for k in sorted(seen)]


def strip_carry(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in it.items() if k != "_carry"} for it in items]
