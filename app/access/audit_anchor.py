"""The audit chain's head written somewhere else, so that a truncated tail is noticed.

Two places, either or both:
- ONETABLE_AUDIT_ANCHOR_FILE, an append-only JSON-lines file, one line per anchor:
    {"pos": 1234, "id": 5678, "hash": "<sha256 of the row at that position>", "at": "<UTC ISO time>"}
- ONETABLE_AUDIT_ANCHOR_URL, a second PostgreSQL database (another server, another owner): one row
  per anchor in table `audit_anchor` (the same four values), inserted, never updated.
Someone who can rewrite the database can delete the newest audit rows and leave a chain that is
valid up to its new, shorter head; the anchors still name the lost positions. An anchor is only
worth as much as its distance from the database: put the file on another host's mount, append-only
or WORM storage, or a path the log shipper forwards; give the service's role in the anchor database
INSERT and SELECT on `audit_anchor` and nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

_TAIL_BYTES = 8192  # one anchor line is ~150 bytes; the last complete one is in the final 8 KiB


@dataclass(frozen=True)
class Anchor:
    pos: int
    id: int
    hash: str
    at: str
    line: int = 0  # line number in the file, for messages


class AnchorFileError(ValueError):
    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.line = line


def _parse(raw: bytes, path: Path, line: int) -> Anchor:
    try:
        d = orjson.loads(raw)
        a = Anchor(pos=int(d["pos"]), id=int(d["id"]), hash=str(d["hash"]), at=str(d["at"]), line=line)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise AnchorFileError(path, line, "not an anchor line") from None
    if a.pos < 1 or len(a.hash) != 64:
        raise AnchorFileError(path, line, "not an anchor line")
    return a


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor in the file, in file order; a missing file has none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [_parse(raw, path, n) for n, raw in enumerate(data.split(b"\n"), 1) if raw.strip()]


def last_anchor(path: Path) -> Anchor | None:
    """The last complete line, read from the end (the file grows for years; this stays constant-time)."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return None
    lines = [raw for raw in tail.split(b"\n") if raw.strip()]
    if not lines:
        return None
    try:
        return _parse(lines[-1], path, 0)
    except AnchorFileError:
        return None  # a torn last line (crash mid-write): the next anchor is appended after it


def append_if_due(
    path: Path, pos: int, row_id: int, hash_: str, every_seconds: float, force: bool = False
) -> bool:
    """Append the head unless the last anchor already covers it or is younger than every_seconds.

    Blocking file I/O: the service calls this through asyncio.to_thread.
    """
    last = last_anchor(path)
    now = datetime.now(UTC)
    if last is not None:
        if last.pos >= pos:
            return False
        try:
            age = (now - datetime.fromisoformat(last.at)).total_seconds()
        except ValueError:
            age = every_seconds
        if not force and age < every_seconds:
            return False
    line = orjson.dumps({"pos": pos, "id": row_id, "hash": hash_, "at": now.isoformat()}) + b"\n"
    # O_APPEND: one write() of a short line lands whole at the end even with several writers.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # never glue onto a torn last line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


# --- the second database ------------------------------------------------------------------

ANCHOR_TABLE_DDL = """CREATE TABLE IF NOT EXISTS audit_anchor (
    pos bigint PRIMARY KEY CHECK (pos > 0),
    id bigint NOT NULL,
    hash char(64) NOT NULL,
    at timestamptz NOT NULL DEFAULT now())"""
_CONNECT_TIMEOUT = 5  # seconds: an unreachable anchor database fails the pass, it does not hang it


def _connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    from app.db.engine import libpq_conninfo

    return psycopg.connect(libpq_conninfo(url), autocommit=True, connect_timeout=_CONNECT_TIMEOUT)


def read_anchors_db(url: str) -> list[Anchor]:
    """Every anchor in the anchor database, by position; none when the table is not there yet."""
    with _connect(url) as conn:
        if conn.execute("SELECT to_regclass('audit_anchor')").fetchone() == (None,):
            return []
        rows = conn.execute("SELECT pos, id, hash, at FROM audit_anchor ORDER BY pos").fetchall()
    return [Anchor(pos=p, id=i, hash=h, at=at.isoformat()) for p, i, h, at in rows]


def append_if_due_db(
    url: str, pos: int, row_id: int, hash_: str, every_seconds: float, force: bool = False
) -> bool:
    """append_if_due for the anchor database (blocking: called through asyncio.to_thread).

    The table is created on first use when the role may (or made beforehand by its owner, with only
    INSERT and SELECT granted to the service's role).
    """
    with _connect(url) as conn:
        if conn.execute("SELECT to_regclass('audit_anchor')").fetchone() == (None,):
            conn.execute(ANCHOR_TABLE_DDL)
        last = conn.execute(
            "SELECT pos, now() - at < make_interval(secs => %s) FROM audit_anchor ORDER BY pos DESC LIMIT 1",
            (every_seconds,),
        ).fetchone()
        if last is not None and (last[0] >= pos or (last[1] and not force)):
            return False
        cur = conn.execute(
            "INSERT INTO audit_anchor (pos, id, hash) VALUES (%s, %s, %s) ON CONFLICT (pos) DO NOTHING",
            (pos, row_id, hash_),
        )
        return cur.rowcount == 1
