"""The audit chain's head written somewhere else, so that a truncated tail is noticed.

ONETABLE_AUDIT_ANCHOR_FILE is an append-only JSON-lines file, one line per anchor:
    {"pos": 1234, "id": 5678, "hash": "<sha256 of the row at that chain position>", "at": "<UTC ISO time>"}
Someone who can rewrite the database can delete the newest audit rows and leave a chain that is
valid up to its new, shorter head; the anchors still name the lost positions. The file is only
worth as much as its distance from the database: put it on another host's mount, append-only or
WORM storage, or a path the log shipper forwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

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


def append_if_due(path: Path, pos: int, row_id: int, hash_: str, every_seconds: float, force: bool = False) -> bool:
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
