"""The one Settings object; every knob is an ONETABLE_* environment variable."""

from __future__ import annotations

import os
import secrets
import time
from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The JWT secret is the platform administrator's master key: anyone who knows it signs tokens for
# any user. 32 bytes is the HS256 key size (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32
# Keys that were once built in or shown in examples: a service started with one of them is open.
KNOWN_WEAK_SECRETS = frozenset({"dev-only-change-me-onetable-secret-key", "changethis"})
DEMO_SECRET_FILE = "secret_key"


class InsecureSettings(RuntimeError):
    """The settings would run the service unprotected; the message tells the operator what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONETABLE_", env_file=".env", extra="ignore")

    # No URL -> an embedded PostgreSQL is started in data_dir/pg.
    database_url: str | None = None
    data_dir: Path = Path("var")
    database_name: str = "onetable"

    # Demo mode (`onetable serve --demo`, `make run`): docs on, and without ONETABLE_SECRET_KEY a
    # random key kept in data_dir/secret_key. Never for real data.
    demo: bool = False
    # No default: outside demo mode the service refuses to start without a key of 32+ bytes.
    secret_key: SecretStr | None = None
    token_ttl_minutes: int = 8 * 60
    # /docs, GraphiQL and GraphQL introspection. Unset: on in demo mode, off otherwise.
    expose_docs: bool | None = None

    # Login throttling (per submitted username and per client address, in PostgreSQL so that every
    # worker counts together): this many failures within the window answer 429 until it ends.
    login_account_attempts: int = 5
    login_address_attempts: int = 30
    login_window_seconds: int = 15 * 60
    # Consecutive failures (across windows) after which an account is locked until an admin unlocks it.
    login_lock_after: int = 10

    default_page_size: int = 50
    max_page_size: int = 1000
    # Connections (app/db/engine.py, docs/deployment.md). Pool: `db_pool_size` kept open plus up to
    # `db_max_overflow` more under load; a request that gets none within `db_pool_timeout_seconds`
    # answers 503 service.busy (bounded waiting, no unbounded queue). Per connection: statement and
    # lock timeouts (503 service.statement_timeout / service.lock_timeout), and idle transactions ended.
    db_pool_size: int = 10
    db_max_overflow: int = 5
    db_pool_timeout_seconds: float = 3.0
    db_connect_timeout_seconds: int = 5
    statement_timeout_ms: int = 30_000
    lock_timeout_ms: int = 5_000
    idle_in_transaction_timeout_ms: int = 60_000
    # Retry-After (seconds) on 503 service.database_unavailable.
    db_retry_after_seconds: int = 5
    # Embedded server only: how often the service checks its postmaster and restarts it when dead.
    embedded_watch_seconds: float = 2.0
    # Request body caps (app/inputs.py): JSON and forms, multipart uploads (XLSX), GraphQL documents.
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 25 * 1024 * 1024
    max_import_bytes: int = 100 * 1024 * 1024  # legacy sheets (/api/v1/imports): a 1M-row XLSX is ~60 MB
    graphql_max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    # Audit chain (app/access/audit_chain.py): the service seals new audit rows every this many seconds
    # (0: never; then run `onetable audit chain` from cron). The head is appended to the anchor file
    # (JSON lines, keep it off the database host) and/or to table audit_anchor in a second PostgreSQL
    # database (audit_anchor_url) at most once per anchor interval.
    audit_chain_interval_seconds: float = 1.0
    audit_anchor_file: Path | None = None
    audit_anchor_url: str | None = None
    audit_anchor_interval_seconds: float = 60.0
    # The built web UI (web/dist, made by `make run` / `npm run build`), served at / by app/web.py.
    web_dir: Path = Path(__file__).resolve().parents[1] / "web" / "dist"

    @model_validator(mode="after")
    def _demo_defaults(self) -> Settings:
        if self.expose_docs is None:
            self.expose_docs = self.demo
        if self.demo and self.secret_key is None:
            self.secret_key = SecretStr(demo_secret(self.data_dir))
        return self

    def check_secret_key(self) -> None:
        """Raise InsecureSettings unless the JWT secret is safe to serve with (demo mode accepts any)."""
        if self.demo:
            return
        key = self.secret_key.get_secret_value() if self.secret_key is not None else ""
        if not key:
            problem = "未设置"
        elif key in KNOWN_WEAK_SECRETS:
            problem = "是公开的默认值"
        elif len(key.encode()) < MIN_SECRET_BYTES:
            problem = f"太短（少于 {MIN_SECRET_BYTES} 字节）"
        else:
            return
        raise InsecureSettings(
            f"ONETABLE_SECRET_KEY {problem}，服务拒绝启动：用它签名的令牌可冒充任何用户（包括平台管理员）。"
            f"请设置至少 {MIN_SECRET_BYTES} 字节的随机密钥，例如 "
            "ONETABLE_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')；"
            "仅试用演示数据时可改用 onetable serve --demo。"
        )


def demo_secret(data_dir: Path) -> str:
    """The demo key of this data dir: created once (random, owner-only file), then reused, so logins
    survive a restart and every worker signs alike, while no two demo installations share a key."""
    path = Path(data_dir) / DEMO_SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two workers start at once, one writes and the other reads what it wrote.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.05)  # another worker has created the file and is about to write it
    raise InsecureSettings(f"演示密钥文件 {path} 为空：删除它后重新启动即可生成新的密钥")


@lru_cache
def get_settings() -> Settings:
    return Settings()
