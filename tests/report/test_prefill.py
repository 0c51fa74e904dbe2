"""Pre-fill at dispatch: batched INSERT … SELECT and provenance stored once per record read.

The batched statement must give every task exactly what one statement per task gave: its township's
rows numbered from 1, per-task row counts, per-cell provenance of the record each cell came from, and
the same result on refresh."""

from __future__ import annotations

from sqlalchemy import func, select

from app.report import dispatch as dispatch_mod
from app.report.compiler import OutColumn, cell_provenance
from app.report.models import ReportRow
from tests.report.test_workflow import VISIT, ok
from tests.world import A, B

T = "/api/v1/report-templates"
TASKS = "/api/v1/report-tasks"


def test_cell_provenance_reads_both_layouts():
    cols = [
        OutColumn("name", "姓名", "field", "text", path="name", ledger_field="person.name", prov_key="$"),
        OutColumn(
            "dtype",
            "类别",
            "field",
            "code",
            path="disability.disability_type",
            ledger_field="disability.disability_type",
            prov_key="$disability",
        ),
        OutColumn(
            "addr",
            "地址",
            "field",
            "text",
            path="residence.standard_address",
            ledger_field="house.standard_address",
            prov_key="$residence",
        ),
        OutColumn("rid", "编号", "field", "integer", path="id", ledger_field="person.id"),
        OutColumn("visited", "走访", "gap", "boolean"),
    ]
    src = {"source": "township:500118101000", "at": "2026-11-01T00:00:00+00:00"}
    stored = {"$": {"name": src}, "$disability": {}, "$residence": None}
    got = cell_provenance(stored, cols)
    assert got == {"name": src, "addr": None, "dtype": None}
    assert list(got) == ["addr", "name", "dtype"]  # JSONB's key order, as when stored per cell
    # Rows stored per cell (before the per-record layout) read as they are.
    old = {"name": src, "dtype": None, "addr": None}
    assert cell_provenance(old, cols) is old
    assert cell_provenance({}, cols) == {} and cell_provenance(None, cols) == {}
    # A bulk load stamps every field with one "*" entry; a field's own entry still wins.
    bulk = {"source": "city_platform", "at": "2026-11-01T00:00:00+00:00"}
    mixed = {"$": {"*": bulk, "name": src}, "$disability": {"*": bulk}, "$residence": {}}
    assert cell_provenance(mixed, cols) == {"name": src, "addr": None, "dtype": bulk}


async def _approved(client, world, body) -> int:
    tid = (await ok(await client.post(T, json=body, headers=world.dept), 201))["id"]
    await ok(await client.post(f"{T}/{tid}/submit", headers=world.dept))
    await ok(await client.post(f"{T}/{tid}/approve", headers=world.admin))
    return tid


async def test_batches_of_one_and_of_all_store_the_same_rows(client, world, people, session, monkeypatch):
    one = await _approved(client, world, {**VISIT, "code": "visit_one"})
    many = await _approved(client, world, {**VISIT, "code": "visit_many"})
    monkeypatch.setattr(dispatch_mod, "PREFILL_BATCH", 1)
    d1 = await ok(await client.post(f"{T}/{one}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    monkeypatch.setattr(dispatch_mod, "PREFILL_BATCH", 25)
    d2 = await ok(await client.post(f"{T}/{many}/dispatch", json={"period": "2026-11"}, headers=world.dept))

    def rows_by_township(d):
        return {t["township_code"]: t["rows"] for t in d["tasks"]}

    assert rows_by_township(d1) == rows_by_township(d2) == {A + "000": 3, B + "000": 2}

    async def stored(d):
        out = {}
        for t in d["tasks"]:
            rows = (
                await session.execute(
                    select(ReportRow.row_key, ReportRow.row_no, ReportRow.data, ReportRow.prov)
                    .where(ReportRow.task_id == t["id"])
                    .order_by(ReportRow.row_no)
                )
            ).all()
            out[t["township_code"]] = [tuple(r) for r in rows]
        return out

    s1, s2 = await stored(d1), await stored(d2)
    assert s1 == s2
    assert [r[1] for r in s1[A + "000"]] == [1, 2, 3] and [r[1] for r in s1[B + "000"]] == [1, 2]

    # Per-cell provenance is each field's own, from the record the cell was read from.
    task_a = next(t["id"] for t in d2["tasks"] if t["township_code"] == A + "000")
    view = await ok(await client.get(f"{TASKS}/{task_a}", headers=world.a))
    for row in view["items"]:
        pid = int(row["key"])
        rec = await ok(await client.get(f"/api/v1/ledgers/person/records/{pid}", headers=world.a))
        assert row["provenance"]["name"] == rec["provenance"]["name"]
        assert row["provenance"]["id_number"] == rec["provenance"]["id_number"]
        house = await ok(
            await client.get(f"/api/v1/ledgers/house/records/{people.houses[pid]}", headers=world.a)
        )
        assert row["provenance"]["address"] == house["provenance"]["standard_address"]
        assert row["provenance"]["area"] == house["provenance"]["floor_area"]
        assert set(row["provenance"]) == {"name", "id_number", "dtype", "level", "address", "area", "subsidy"}

    # Refresh re-runs the same statement for one task: same rows.
    await ok(await client.post(f"{TASKS}/{task_a}/refresh", headers=world.a))
    after = await stored({"tasks": [t for t in d2["tasks"] if t["id"] == task_a]})
    assert after[A + "000"] == s2[A + "000"]


async def test_prefill_statement_runs_without_jit_and_puts_settings_back(client, world, people, monkeypatch):
    """JIT compiling a dispatch's big UNION ALL took longer than running it on PostgreSQL 15 (docs/reports.md):
    the pre-fill statement runs with jit and plan_cache_mode set for it only, then both are put back."""
    seen: list[tuple[dict[str, str], dict[str, str]]] = []
    real = dispatch_mod._set_local

    async def spy(session, settings):
        prev = await real(session, settings)
        now = (
            await session.execute(
                select(func.current_setting("jit"), func.current_setting("plan_cache_mode"))
            )
        ).one()
        seen.append((dict(settings), {"jit": now[0], "plan_cache_mode": now[1]}))
        return prev

    monkeypatch.setattr(dispatch_mod, "_set_local", spy)
    tid = await _approved(client, world, {**VISIT, "code": "visit_nojit"})
    await ok(await client.post(f"{T}/{tid}/dispatch", json={"period": "2026-11"}, headers=world.dept))
    assert len(seen) == 2
    (asked, during), (back, after) = seen
    assert asked == dispatch_mod.PREFILL_SETTINGS
    assert during == {"jit": "off", "plan_cache_mode": "force_custom_plan"}
    # Put back to what they were before the statement (the server's defaults here), not left off.
    assert after == back and set(back) == {"jit", "plan_cache_mode"}
    assert back["plan_cache_mode"] == "auto"
