"""Is each department's feed fresh? Declared frequency × tolerance since its last push.

Each pushing department declares how often its system pushes (`push.frequency` in
ledgers/departments.yaml). `refresh_staleness` marks a feed overdue in push_source_state.stale_since
(the next push clears it), so the alerts job can raise one alert per stale period and resolve it
when
`stale_since` is cleared; until alerts exist, GET /api/v1/push/sources shows the state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.model import Catalog
from app.push.models import PushSourceState

PERIODS = {
    "realtime": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "yearly": timedelta(days=366),
}


def overdue_after(frequency: str, tolerance: float) -> timedelta:
    return PERIODS[frequency] * tolerance


async def refresh_staleness(
    session: AsyncSession, catalog: Catalog, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every declared source with its last push and state (fresh | stale | never); records
    stale_since."""
    now = now or datetime.now(UTC)
    states = {s.source: s for s in (await session.scalars(select(PushSourceState))).all()}
    out = []
    for d in catalog.departments.values():
        if not d.push_frequency:
            continue
        s = states.get(d.code)
        last = s.last_push_at if s else None
        limit = overdue_after(d.push_frequency, d.push_tolerance)
        due = last + limit if last else None
        stale_since = s.stale_since if s else None
        if last is None:
            state = "never"
        elif due is not None and now > due:
            state = "stale"
            if stale_since is None:
                stale_since = due
                await session.execute(
                    pg_insert(PushSourceState)
                    .values(source=d.code, last_records=0, stale_since=due, checked_at=now)
                    .on_conflict_do_update(
                        index_elements=["source"], set_={"stale_since": due, "checked_at": now}
                    )
                )
        else:
            state = "fresh"
        out.append(
            {
                "source": d.code,
                "name": d.name,
                "short": d.short_name,
                "frequency": d.push_frequency,
                "tolerance": d.push_tolerance,
                "last_push_at": last,
                "last_records": s.last_records if s else 0,
                "due_by": due,
                "state": state,
                "stale_since": stale_since if state == "stale" else None,
            }
        )
    return out
