"""Candidate pairs for rows without a natural key (the interface the import jobs call).

`find_candidates` never merges anything: it scores incoming rows against the ledger and returns the
likely duplicates; `enqueue_candidates` writes them to the review queue (dedupe_candidate), where a
reviewer accepts (merge, app.dedupe.merge) or rejects them.

Against the ledger, one SQL statement pre-blocks on exact keys the database can use (birth date and
its day/month swap, the name as typed and folded, phone, ID number), restricted to the importer's
area; the in-memory blocks and the Fellegi–Sunter score (app.dedupe.scoring) then decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert

from app.db.ledger_tables import tables
from app.dedupe import normalize as nz
from app.dedupe.blocking import pairs_between
from app.dedupe.models import DedupeCandidate
from app.dedupe.scoring import Profile, is_candidate, match_weight, probability, profile
from app.dedupe.spec import MatchSpec, spec_for

MAX_PER_ROW = 5
QUEUE: sqlalchemy.Table = DedupeCandidate.__table__


@dataclass(frozen=True)
class Candidate:
    """One incoming row (by index in the caller's list) that probably is an existing record."""

    row_index: int
    record_id: int
    score: float  # posterior match probability, 0..1
    reasons: list[str] = field(default_factory=list)  # zh-CN, e.g. "姓名一致（繁简、全半角折叠后）"


def _profile(spec: MatchSpec, row: dict[str, Any]) -> Profile:
    return profile(spec.as_profile_row(row), spec.address_roles)


def _prefetch(
    conn: sqlalchemy.Connection,
    spec: MatchSpec,
    table: sqlalchemy.Table,
    rows: list[dict[str, Any]],
    region_prefix: str | None,
) -> list[sqlalchemy.Row[Any]]:
    c = table.c
    names: set[str] = set()
    dates: set[date] = set()
    phones: set[str] = set()
    ids: set[str] = set()
    for r in rows:
        raw = r.get(spec.name)
        if raw:
            names.update({str(raw).strip(), nz.name_key(str(raw))})
        if spec.birth_date and (d := nz.to_date(r.get(spec.birth_date))) is not None:
            dates.add(d)
            if (s := nz.swapped(d)) is not None:
                dates.add(s)
        if spec.phone and r.get(spec.phone):
            phones.add(str(r[spec.phone]))
        if spec.id_number and (i := nz.id_key(r.get(spec.id_number))):
            ids.add(i)
    ors: list[Any] = []
    if names:
        ors.append(c[spec.name].in_(sorted(names)))
    if dates and spec.birth_date:
        ors.append(c[spec.birth_date].in_(sorted(dates)))
    if phones and spec.phone:
        ors.append(c[spec.phone].in_(sorted(phones)))
    if ids and spec.id_number:
        ors.append(c[spec.id_number].in_(sorted(ids)))
    if not ors:
        return []
    stmt = select(c.id, *[c[f] for f in spec.fields()]).where(c.deleted_at.is_(None), or_(*ors))
    if region_prefix:
        stmt = stmt.where(c.region_code.like(region_prefix + "%"))
    return list(conn.execute(stmt).all())


def find_candidates(
    conn: sqlalchemy.Connection,
    ledger: str,
    rows: list[dict[str, Any]],
    *,
    region_prefix: str | None = None,
) -> list[Candidate]:
    """Score `rows` (field code -> value, WITHOUT a natural key) against `ledger`.

    Only pairs whose posterior probability reaches scoring.CANDIDATE_PROBABILITY are returned, at
    most MAX_PER_ROW per row, ordered by row then best first. Nothing is merged or written.
    """
    spec = spec_for(ledger)
    if spec is None or not rows:
        return []
    table = tables().ledgers[ledger]
    existing = _prefetch(conn, spec, table, rows, region_prefix)
    if not existing:
        return []
    left = [_profile(spec, r) for r in rows]
    right = [_profile(spec, dict(r._mapping)) for r in existing]
    per_row: dict[int, list[Candidate]] = {}
    for i, j in pairs_between(left, right):
        weight, reasons = match_weight(left[i], right[j])
        if is_candidate(weight):
            per_row.setdefault(i, []).append(
                Candidate(i, int(existing[j].id), round(probability(weight), 6), reasons)
            )
    out: list[Candidate] = []
    for i in sorted(per_row):
        out += sorted(per_row[i], key=lambda c: -c.score)[:MAX_PER_ROW]
    return out


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items() if v is not None}


def enqueue_candidates(
    conn: sqlalchemy.Connection,
    ledger: str,
    candidates: list[Candidate],
    *,
    source: str,
    batch_id: int | None,
    rows: list[dict[str, Any]] | None = None,
) -> None:
    """Write `candidates` to the review queue. `rows` (the list given to find_candidates) lets the
    queue keep the incoming values, which an accepted merge applies; without it the reviewer sees
    the     pair and the reasons only. Enqueueing the same pair twice adds nothing."""
    if not candidates:
        return
    table = tables().ledgers[ledger]
    ids = sorted({c.record_id for c in candidates})
    got = conn.execute(select(table.c.id, table.c.region_code).where(table.c.id.in_(ids))).all()
    regions: dict[int, str] = {int(r.id): str(r.region_code) for r in got}
    values = [
        {
            "ledger": ledger,
            "region_code": regions[c.record_id],
            "record_id": c.record_id,
            "incoming": _jsonable(rows[c.row_index]) if rows is not None else None,
            "row_index": c.row_index,
            "batch_id": batch_id,
            "source": source,
            "score": c.score,
            "reasons": list(c.reasons),
        }
        for c in candidates
        if c.record_id in regions
    ]
    if values:
        conn.execute(insert(QUEUE).values(values).on_conflict_do_nothing())
