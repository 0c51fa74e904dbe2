"""Database faults as answers: unavailable, busy, timed out -> 503 problem+json with Retry-After.

A request that needs PostgreSQL while it is down, while every pooled connection stays taken past
`pool_timeout_seconds`, or whose statement hits `statement_timeout` / `lock_timeout`, gets a 503 with
a stable code instead of a 500 and a traceback. An outage is logged once when it starts (the first
failure) and once when a connection works again (`Outage`), not once per request.
"""

from __future__ import annotations

import logging
import time

import psycopg
from sqlalchemy.exc import DBAPIError, PendingRollbackError, TimeoutError as PoolTimeout

from app.errors import Problem

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying (Retry-After); settings can change it at start.
RETRY_AFTER = {"unavailable": 5, "busy": 2, "timeout": 5}

# SQLSTATEs: class 08 connection exceptions; 57P01-57P03 server shutting down / crashed / starting;
# 53300 too many connections (busy); 57014 query canceled (statement_timeout); 55P03 lock not
# available (lock_timeout); 40P01 deadlock, 40001 serialization failure (retry).
_SHUTDOWN = {"57P01", "57P02", "57P03"}
_BUSY = {"53300"}
_STATEMENT_TIMEOUT = "57014"
_LOCK_TIMEOUT = "55P03"
_RETRY = {"40P01", "40001"}


class _Quiet:
    """A warning per kind at most every `every` seconds, with the count of those not logged: an
    overloaded service answers many 503s and must not drown its log in them."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def warn(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.every) < self.every:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        log.warning("%s%s", message, f" (and {skipped} more since the last such line)" if skipped else "")


quiet = _Quiet()


class Outage:
    """Whether the database is down, as seen by this process; logs the edges, not every request."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, reason: str) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.error("database unavailable: %s — requests needing it answer 503 until it is back", reason)

    def recovered(self) -> None:
        if self.since is not None:
            seconds = time.monotonic() - self.since
            self.since = None
            log.warning("database available again after %.1f s", seconds)


outage = Outage()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0]}" if text else type(orig).__name__


def _unavailable() -> Problem:
    return Problem(
        503,
        "service.database_unavailable",
        "数据库暂时不可用，请稍后重试",
        headers={"Retry-After": str(RETRY_AFTER["unavailable"])},
    )


def problem_for(exc: BaseException) -> Problem | None:
    """The 503 for a database fault (recording an outage when the database is gone), else None."""
    if isinstance(exc, PoolTimeout):
        quiet.warn("busy", "no database connection free within the pool timeout: answered 503 service.busy")
        return Problem(
            503, "service.busy", "服务繁忙，请稍后重试", headers={"Retry-After": str(RETRY_AFTER["busy"])}
        )
    if isinstance(exc, PendingRollbackError):
        # Only "Can't reconnect until invalid transaction is rolled back" (code 8s2b): the request's
        # connection was lost mid-transaction. Other pending rollbacks are our bugs: a 500.
        if exc.code != "8s2b":
            return None
        outage.failed(_reason(exc))
        return _unavailable()
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if not isinstance(orig, (psycopg.Error, DBAPIError)) and not isinstance(exc, DBAPIError):
        return None
    state = getattr(orig, "sqlstate", None)
    if state == _STATEMENT_TIMEOUT:
        quiet.warn("statement_timeout", "statement timeout: answered 503 service.statement_timeout")
        return Problem(
            503,
            "service.statement_timeout",
            "查询超时，请缩小范围后重试",
            headers={"Retry-After": str(RETRY_AFTER["timeout"])},
        )
    if state == _LOCK_TIMEOUT:
        quiet.warn("lock_timeout", "lock timeout: answered 503 service.lock_timeout")
        return Problem(
            503,
            "service.lock_timeout",
            "数据正被其他操作占用，请稍后重试",
            headers={"Retry-After": str(RETRY_AFTER["busy"])},
        )
    if state in _RETRY:
        quiet.warn("retry", f"transaction aborted by PostgreSQL ({state}): answered 503 service.retry")
        return Problem(
            503,
            "service.retry",
            "操作与其他操作冲突，请重试",
            headers={"Retry-After": str(RETRY_AFTER["busy"])},
        )
    if state in _BUSY:
        quiet.warn("too_many", "database refused a connection (too many clients): answered 503 service.busy")
        return Problem(
            503, "service.busy", "服务繁忙，请稍后重试", headers={"Retry-After": str(RETRY_AFTER["busy"])}
        )
    lost = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if (lost or isinstance(orig, (psycopg.OperationalError, psycopg.InterfaceError))) and (
        state is None or state.startswith("08") or state in _SHUTDOWN
    ):
        outage.failed(_reason(exc))
        return _unavailable()
    return None
