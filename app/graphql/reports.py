"""Read-only report access over GraphQL: the templates, tasks and aggregates the caller may see.

Thin strawberry resolvers over the report services (the same answers as /api/v1/report-*). Report
rows have the columns a department declared at runtime, not catalogue types, so they travel as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import strawberry
from strawberry.scalars import JSON

from app.errors import Problem
from app.graphql.errors import from_problem

T = TypeVar("T")


async def _run(info: strawberry.Info, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    ctx = info.context
    principal = ctx.require_principal()
    try:
        async with ctx.lock:  # one statement at a time on the request's session
            return await call(ctx.session, principal, *args, **kwargs)
    except Problem as p:
        raise from_problem(p) from None


async def report_templates(info: strawberry.Info) -> JSON | None:
    from app.report.templates import list_templates

    return JSON(await _run(info, list_templates))


async def report_tasks(
    info: strawberry.Info,
    period: str | None = None,
    state: str | None = None,
    template_id: strawberry.ID | None = None,
) -> JSON | None:
    from app.report.tasks.listing import list_tasks

    tid = int(template_id) if template_id and str(template_id).isdigit() else None
    return JSON(await _run(info, list_tasks, period=period, state=state, template_id=tid))


async def report_aggregate(
    info: strawberry.Info,
    template_id: strawberry.ID,
    period: str | None = None,
    states: list[str] | None = None,
) -> JSON | None:
    from app.report.aggregate import collect
    from app.report.common import load_template

    if not str(template_id).isdigit():
        raise from_problem(Problem(404, "report.template_not_found", "报表模板不存在或无权访问"))

    async def run(session, principal):
        t = await load_template(session, principal, int(template_id))
        return await collect(
            session, principal, t, period=period, states=set(states or ["approved"]), path="graphql:report"
        )

    return await _run(info, run)


FIELDS = {
    "report_templates": strawberry.field(
        resolver=report_templates,
        name="reportTemplates",
        description="可见的报表模板（部门：本部门；平台管理员：全部）",
    ),
    "report_tasks": strawberry.field(
        resolver=report_tasks,
        name="reportTasks",
        description="可见的报表任务（镇街：本镇街；部门：本部门模板），最多 1000 条",
    ),
    "report_aggregate": strawberry.field(
        resolver=report_aggregate,
        name="reportAggregate",
        description="报表汇总（与 REST 汇总接口相同）：states 默认只计已审核通过的任务",
    ),
}
