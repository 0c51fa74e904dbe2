"""`onetable import FILE --ledger person --township CODE`: the same job as the API, from a shell.

Upload, dry run and submit run in one transaction; with --approve-as the named district reviewer
approves in it too, and the commit follows in a transaction of its own, so a commit that dies (kill -9,
lost connection) leaves the batch approved and `onetable import --batch ID` runs it again.
A progress line (rows/s, ETA) goes to stderr; the summary (the counts of GET /imports/{id}) to stdout.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import principal_of
from app.auth.principal import Principal
from app.errors import Problem
from app.imports.plan import Progress
from app.org.models import OrgUnit, User

PHASES = {
    "convert": "转换校验",
    "match": "查重比对",
    "write": "写入台账",
    "households": "户与房屋",
    "rows": "保存逐行结果",
    "read": "读取表格",
}
COUNT_LABELS = {
    "read": "读取",
    "created": "新增",
    "updated": "更新",
    "unchanged": "未变",
    "duplicates": "文件内重复",
    "candidates": "疑似重复（待人工核对）",
    "errors": "错误",
    "skipped": "跳过（标题/合计/空行）",
    "warnings": "警告",
    "columns_refused": "拒绝导入的列",
    "households_created": "新建户",
    "houses_created": "新建房屋",
    "member_links": "户成员关联",
}


def progress_line(out: Any = None) -> Progress:
    """rows/s and ETA per phase; one line per update (a redrawn line on a terminal)."""
    stream = out or sys.stderr
    tty = stream.isatty()
    state: dict[str, Any] = {"phase": None, "t0": 0.0, "last": 0.0}

    def show(phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != state["phase"]:
            state.update(phase=phase, t0=now, last=0.0)
        elif now - state["last"] < 0.5 and done < total:
            return
        state["last"] = now
        elapsed = max(now - state["t0"], 1e-6)
        rate = done / elapsed
        eta = f"，预计剩余 {(total - done) / rate:.0f} 秒" if rate > 0 and done < total else ""
        text = f"{PHASES.get(phase, phase)}：{done:,}/{total:,} 行，{rate:,.0f} 行/秒{eta}"
        stream.write(("\r" + text + "\033[K") if tty else text + "\n")
        if tty and done >= total:
            stream.write("\n")
        stream.flush()

    return show


async def user_principal(session: AsyncSession, username: str) -> Principal:
    row = (
        await session.execute(
            select(User, OrgUnit)
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .where(User.username == username, User.active.is_(True))
        )
    ).first()
    if row is None:
        raise Problem(404, "user.not_found", f"用户 {username} 不存在或已停用")
    user, unit = row
    return principal_of("user", user.id, user.username, unit, frozenset(user.roles or ()))


async def township_user(session: AsyncSession, township: str) -> Principal:
    """The township's first active township_admin (the uploader when --user is not given)."""
    code = township[:9] + "000"
    row = (
        await session.execute(
            select(User.username)
            .join(OrgUnit, OrgUnit.id == User.org_unit_id)
            .where(
                OrgUnit.region_code == code,
                OrgUnit.kind == "township",
                User.active.is_(True),
                literal("township_admin") == func.any(User.roles),
            )
            .order_by(User.id)
            .limit(1)
        )
    ).first()
    if row is None:
        raise Problem(404, "user.not_found", f"镇街 {code} 没有可用的镇街管理员账号，请用 --user 指定")
    return await user_principal(session, row[0])


async def run_import(
    in_session: Callable[[Callable[[AsyncSession], Awaitable[Any]]], Awaitable[Any]],
    *,
    file: Path | None,
    ledger: str,
    township: str | None,
    sheet: str | None,
    form_name: str | None,
    dry_only: bool,
    user: str | None,
    approver: str | None,
    batch_id: int | None,
    progress: Progress,
) -> dict[str, Any]:
    """in_session(work) runs work(session) in a transaction of its own and commits it."""
    from app.imports import commit as commit_job, jobs
    from app.imports.reading import read_table

    if batch_id is None:
        assert file is not None and township is not None
        progress("read", 0, 1)
        table = read_table(file, sheet=sheet)
        progress("read", len(table.rows), len(table.rows))
        content = await asyncio.to_thread(file.read_bytes)

        async def stage(session: AsyncSession) -> int:
            uploader = await (user_principal(session, user) if user else township_user(session, township))
            batch = await jobs.upload(
                session,
                uploader,
                ledger=ledger,
                township=township,
                file_name=file.name,
                content=content,
                sheet=sheet,
                form_name=form_name,
                table=table,
            )
            batch = await jobs.dry_run(session, uploader, batch.id, progress)
            if not dry_only:
                await jobs.submit(session, uploader, batch.id)
                if approver:
                    await jobs.approve(session, await user_principal(session, approver), batch.id)
            return batch.id

        batch_id = await in_session(stage)
        if dry_only or not approver:
            out: dict[str, Any] = await in_session(lambda s: _summary(s, batch_id))
            return out
    assert batch_id is not None
    bid: int = batch_id

    async def commit(session: AsyncSession) -> None:
        actor = await user_principal(session, approver) if approver else None
        if actor is None:
            from app.imports.models import ImportBatch

            batch = await session.get(ImportBatch, bid)
            if batch is None:
                raise Problem(404, "import.not_found", "导入批次不存在")
            actor = await jobs.importer_of(session, batch)
        await commit_job.commit(session, actor, bid, progress)

    await in_session(commit)
    done: dict[str, Any] = await in_session(lambda s: _summary(s, bid))
    return done


async def _summary(session: AsyncSession, batch_id: int) -> dict[str, Any]:
    from app.imports import jobs
    from app.imports.models import ImportBatch

    batch = await session.get(ImportBatch, batch_id)
    assert batch is not None
    return jobs.summary(batch)
