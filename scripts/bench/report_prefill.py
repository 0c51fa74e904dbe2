"""Benchmark: report pre-fill at dispatch on the demo district, against one hand-written SQL statement.

    ONETABLE_DATA_DIR=/tmp/report-pg ONETABLE_DATABASE_NAME=bench .venv/bin/python scripts/bench/report_prefill.py
    .venv/bin/python scripts/bench/report_prefill.py --database-url postgresql://…/demo

(a) an aggregate template (10 aggregate columns + a ratio over persons joined to their houses, one row per
village), (b) a list template of disabled persons (28 columns) and (c) 区民政局's 低保家庭住房安全情况
(app/demo/reports.py: households with a 低保 member, an exists filter over household.members, persons
per household, house area once per house, one row per village) are dispatched to every township:
compile + one INSERT … SELECT per task. Each is timed against one hand-written statement that computes
the same rows for the whole district, in the same run (with the server's settings and with jit=off, as the
pre-fill statement runs); the pre-filled cells must equal its answers cell by cell. It prints the
environment first, and splits the dispatch into the pre-fill statement, other statements and Python.
Everything happens in one transaction that is
rolled back: the database is left as it was (report tables are created inside it if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.access.models import Grant
from app.auth.principal import Principal
from app.config import get_settings
from app.db.engine import normalise_url, resolve_database_url
from app.demo.grants import DEMO_GRANTS
from app.demo.reports import LOW_INCOME_HOUSING
from app.org.models import OrgUnit
from app.org.regions import region_prefix
from app.report import dispatch as dispatch_mod
from app.report.dsl import parse_spec
from app.report.models import ReportTemplate, ReportTemplateVersion
from scripts.bench._env import print_environment

# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--repeat", "1"]

AGGREGATE = {
    "code": "bench_households",
    "name": "各村人口与住房统计",
    "kind": "aggregate",
    "ledger": "person",
    "rows": {"by": "village"},
    "columns": [
        {"kind": "aggregate", "code": "persons", "label": "人口数", "fn": "count"},
        {
            "kind": "aggregate",
            "code": "male",
            "label": "男性",
            "fn": "count",
            "filter": [{"path": "sex", "op": "eq", "value": "1"}],
        },
        {
            "kind": "aggregate",
            "code": "female",
            "label": "女性",
            "fn": "count",
            "filter": [{"path": "sex", "op": "eq", "value": "2"}],
        },
        {
            "kind": "aggregate",
            "code": "elderly",
            "label": "60 岁以上",
            "fn": "count",
            "filter": [{"path": "birth_date", "op": "lte", "value": "1966-11-30"}],
        },
        {
            "kind": "aggregate",
            "code": "disabled",
            "label": "残疾人",
            "fn": "count",
            "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
        },
        {
            "kind": "aggregate",
            "code": "houses",
            "label": "住房数",
            "fn": "count_distinct",
            "path": "residence.id",
        },
        {
            "kind": "aggregate",
            "code": "area",
            "label": "住房面积合计",
            "fn": "sum",
            "path": "residence.floor_area",
        },
        {
            "kind": "aggregate",
            "code": "avg_area",
            "label": "人均住房面积",
            "fn": "avg",
            "path": "residence.floor_area",
        },
        {
            "kind": "aggregate",
            "code": "newest",
            "label": "最新建成年份",
            "fn": "max",
            "path": "residence.built_year",
        },
        {
            "kind": "aggregate",
            "code": "dangerous",
            "label": "居住危房人数",
            "fn": "count",
            "filter": [{"path": "residence.is_dangerous", "op": "eq", "value": True}],
        },
        {
            "kind": "ratio",
            "code": "elderly_share",
            "label": "老龄化率（%）",
            "numerator": "elderly",
            "denominator": "persons",
        },
        {"kind": "gap", "code": "visits", "label": "本月入户走访户数", "type": "integer", "min": 0},
    ],
}
# (a) by hand. A house shared by several residents counts once per village in the house columns
# (count, area, mean area, newest), as the template means; the person columns count persons.
HAND_AGGREGATE = """
WITH pr AS (
  SELECT left(p.region_code, 12) AS k, p.sex, p.birth_date, p.is_disabled,
         h.id AS hid, h.floor_area, h.built_year, h.is_dangerous
  FROM lg_person p
  LEFT JOIN rel_residence l ON l.from_id = p.id AND l.deleted_at IS NULL
  LEFT JOIN lg_house h ON h.id = l.to_id AND h.deleted_at IS NULL
  WHERE p.deleted_at IS NULL AND p.region_code LIKE :prefix
), a AS (
  SELECT k, count(*) AS persons,
         count(*) FILTER (WHERE sex = '1') AS male, count(*) FILTER (WHERE sex = '2') AS female,
         count(*) FILTER (WHERE birth_date <= DATE '1966-11-30') AS elderly,
         count(*) FILTER (WHERE is_disabled) AS disabled, count(*) FILTER (WHERE is_dangerous) AS dangerous
  FROM pr GROUP BY k
), o AS (
  SELECT k, count(*) AS houses, sum(floor_area) AS area, round(avg(floor_area), 2) AS avg_area,
         max(built_year) AS newest
  FROM (SELECT DISTINCT k, hid, floor_area, built_year FROM pr WHERE hid IS NOT NULL) d GROUP BY k
)
SELECT r.code, r.name, coalesce(a.persons, 0), coalesce(a.male, 0), coalesce(a.female, 0),
       coalesce(a.elderly, 0), coalesce(a.disabled, 0), coalesce(o.houses, 0), coalesce(o.area, 0), o.avg_area,
       o.newest, coalesce(a.dangerous, 0),
       round(coalesce(a.elderly, 0)::numeric * 100 / nullif(coalesce(a.persons, 0), 0), 2)
FROM region r LEFT JOIN a ON a.k = r.code LEFT JOIN o ON o.k = r.code
WHERE r.level = 5 AND r.code LIKE :prefix
ORDER BY r.code
"""
AGGREGATE_CELLS = (
    "persons",
    "male",
    "female",
    "elderly",
    "disabled",
    "houses",
    "area",
    "avg_area",
    "newest",
    "dangerous",
    "elderly_share",
)

PERSON = [
    "name",
    "id_number",
    "sex",
    "birth_date",
    "ethnicity",
    "phone",
    "household_type",
    "hukou_address",
    "residence_address",
    "marital_status",
]
DISABILITY = [
    "certificate_number",
    "disability_type",
    "disability_level",
    "certificate_issued_on",
    "certificate_valid_until",
    "guardian_name",
    "guardian_phone",
    "living_subsidy",
    "care_subsidy",
    "subsidy_amount",
    "rehabilitation_need",
    "rehabilitation_received",
    "assistive_device",
    "employed",
    "education_level",
]
LIST = {
    "code": "bench_disabled",
    "name": "残疾人基本情况",
    "kind": "list",
    "ledger": "person",
    "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
    "columns": [{"kind": "field", "code": c, "path": c} for c in PERSON]
    + [{"kind": "field", "code": f"d_{c}", "path": f"disability.{c}"} for c in DISABILITY]
    + [
        {"kind": "field", "code": "address", "path": "residence.standard_address"},
        {"kind": "formula", "code": "subsidy_year", "label": "年补贴（元）", "expr": "d_subsidy_amount * 12"},
        {"kind": "gap", "code": "visited", "label": "本月是否走访", "type": "boolean", "required": True},
    ],
}
LIST_CELLS = (*PERSON, *(f"d_{c}" for c in DISABILITY), "address", "subsidy_year")
HAND_LIST = f"""
SELECT p.id, {", ".join("p." + c for c in PERSON)}, {", ".join("d." + c for c in DISABILITY)},
       h.standard_address, round(d.subsidy_amount * 12, 2)
FROM lg_person p
LEFT JOIN lg_disability d ON d.parent_id = p.id AND d.deleted_at IS NULL
LEFT JOIN rel_residence l ON l.from_id = p.id AND l.deleted_at IS NULL
LEFT JOIN lg_house h ON h.id = l.to_id AND h.deleted_at IS NULL
WHERE p.deleted_at IS NULL AND p.region_code LIKE :prefix AND p.is_disabled
ORDER BY p.region_code, p.id
"""

# (c) by hand: the households with a 低保 member, then their members and their houses, each house once.
HAND_HOUSEHOLDS = """
WITH hh AS (
  SELECT h.id, left(h.region_code, 12) AS k,
         EXISTS (SELECT 1 FROM rel_household_member m
                 JOIN lg_person p ON p.id = m.from_id AND p.deleted_at IS NULL AND p.region_code LIKE :prefix
                 WHERE m.to_id = h.id AND m.deleted_at IS NULL AND m.region_code LIKE :prefix
                   AND m.relation_to_head = '01' AND p.low_income_status = '1') AS head_low
  FROM lg_household h
  WHERE h.deleted_at IS NULL AND h.region_code LIKE :prefix AND EXISTS (
    SELECT 1 FROM rel_household_member m
    JOIN lg_person p ON p.id = m.from_id AND p.deleted_at IS NULL AND p.region_code LIKE :prefix
    WHERE m.to_id = h.id AND m.deleted_at IS NULL AND m.region_code LIKE :prefix AND p.low_income_status = '1')
), counted AS (
  SELECT k, count(*) AS households, count(*) FILTER (WHERE head_low) AS head_low FROM hh GROUP BY k
), members AS (
  SELECT hh.k, count(DISTINCT p.id) AS persons
  FROM hh JOIN rel_household_member m ON m.to_id = hh.id AND m.deleted_at IS NULL AND m.region_code LIKE :prefix
  JOIN lg_person p ON p.id = m.from_id AND p.deleted_at IS NULL AND p.region_code LIKE :prefix
  GROUP BY hh.k
), homes AS (
  SELECT k, sum(floor_area) AS area, count(*) FILTER (WHERE is_dangerous) AS repair
  FROM (SELECT DISTINCT hh.k, o.id, o.floor_area, o.is_dangerous
        FROM hh JOIN rel_household_house l ON l.from_id = hh.id AND l.deleted_at IS NULL
                 AND l.region_code LIKE :prefix
        JOIN lg_house o ON o.id = l.to_id AND o.deleted_at IS NULL AND o.region_code LIKE :prefix) d
  GROUP BY k
)
SELECT r.code, r.name, coalesce(c.households, 0), coalesce(m.persons, 0), coalesce(c.head_low, 0),
       coalesce(x.area, 0), coalesce(x.repair, 0)
FROM region r LEFT JOIN counted c ON c.k = r.code LEFT JOIN members m ON m.k = r.code
LEFT JOIN homes x ON x.k = r.code
WHERE r.level = 5 AND r.code LIKE :prefix
ORDER BY r.code
"""
HOUSEHOLD_CELLS = ("households", "persons", "head_low", "area", "repair")
# 残联 reads what its hand-written statements read: persons, disability rows and houses in plain (the
# ID number and the certificate number by name, newer than the demo's masked grant, so the birth date
# derived from it is plain too);
# 民政局 has exactly the demo district's grants (app/demo/grants.py).
BENCH_GRANTS = {
    "cl": [
        *(
            {"ledger": lg, "field": "*", "level": "read", "row_scope": "own"}
            for lg in ("person", "disability", "house")
        ),
        {"ledger": "person", "field": "id_number", "level": "read", "row_scope": "own"},
        {"ledger": "disability", "field": "certificate_number", "level": "read", "row_scope": "own"},
    ],
    "mzj": [g for g in DEMO_GRANTS if g["grantee"] == ("org_unit", "dept:mzj")],
}
NAMES = {"cl": "区残联", "mzj": "区民政局"}


async def _setup(session: AsyncSession, code: str) -> tuple[Principal, OrgUnit]:
    from app.db.models import metadata

    conn = await session.connection()
    report_tables = [t for name, t in metadata.tables.items() if name.startswith("report_")]
    await conn.run_sync(lambda c: metadata.create_all(c, tables=report_tables, checkfirst=True))
    dept = (
        await session.scalars(
            select(OrgUnit).where(OrgUnit.kind == "department", OrgUnit.department_code == code)
        )
    ).first()
    if dept is None:
        dept = OrgUnit(
            code=f"dept:{code}",
            name=NAMES[code],
            kind="department",
            region_code="500118000000",
            department_code=code,
        )
        session.add(dept)
        await session.flush()
    for g in BENCH_GRANTS[code]:
        session.add(
            Grant(
                grantee_type="org_unit",
                org_unit_id=dept.id,
                ledger=g["ledger"],
                field=g["field"],
                level=g["level"],
                row_scope=g.get("row_scope", "own"),
                created_by="bench",
            )
        )
    await session.flush()
    principal = Principal(
        kind="user",
        id=0,
        name="bench",
        org_unit_id=dept.id,
        org_unit_kind="department",
        region_code=dept.region_code,
        region_prefix=region_prefix(dept.region_code),
        department_code=code,
        roles=frozenset({"dept_admin"}),
    )
    return principal, dept


async def _template(session: AsyncSession, dept: OrgUnit, raw: dict) -> ReportTemplate:
    spec = parse_spec(raw)
    t = ReportTemplate(
        department_code=dept.department_code,
        org_unit_id=dept.id,
        code=spec.code,
        name=spec.name,
        latest_version=1,
        created_by="bench",
    )
    session.add(t)
    await session.flush()
    session.add(
        ReportTemplateVersion(
            template_id=t.id,
            version=1,
            spec=spec.model_dump(mode="json", exclude_none=True),
            state="approved",
            pull_only=spec.pull_only,
            created_by="bench",
        )
    )
    await session.flush()
    return t


async def _timed(fn, repeat: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = await fn()
        times.append(time.perf_counter() - t0)
    return times, out


class SqlClock:
    """Time spent inside the database driver per statement (cursor execute to fetched), so a dispatch's
    wall time splits into the pre-fill statement, the other statements and Python around them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.prefill = self.other = 0.0
        self._t0: dict[int, float] = {}
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._t0[id(cursor)] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        spent = time.perf_counter() - self._t0.pop(id(cursor), time.perf_counter())
        if statement.lstrip().startswith("WITH") and "INSERT INTO report_row" in statement:
            self.prefill += spent
        else:
            self.other += spent

    def reset(self) -> tuple[float, float]:
        out = (self.prefill, self.other)
        self.prefill = self.other = 0.0
        return out


def _norm(v: object) -> object:
    """A cell as a comparable value: numbers to 2 decimals (JSON numbers vs numeric), dates as ISO text."""
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int | float | Decimal):
        return round(float(v), 2)
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def _compare(label: str, got: dict[str, tuple], want: dict[str, tuple]) -> None:
    """Stored cells against the hand-written statement's, row by row; fails with the first differences."""
    bad = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
    if bad:
        raise AssertionError(
            f"{label}: {len(bad)} of {len(want)} rows differ, e.g. "
            + "; ".join(f"{k}: dispatch {got.get(k)} vs hand {want.get(k)}" for k in bad[:3])
        )
    print(f"  answers: all {len(want):,} rows equal to the hand-written statement's, cell by cell")


async def _set(session: AsyncSession, name: str, value: str) -> str:
    row = (
        await session.execute(
            text("SELECT current_setting(:n), set_config(:n, :v, true)"), {"n": name, "v": value}
        )
    ).one()
    return str(row[0])


async def run(url: str, repeat: int) -> None:
    engine = create_async_engine(url, pool_size=1, connect_args={"options": "-c statement_timeout=0"})
    clock = SqlClock(engine)
    async with engine.connect() as conn:
        trans = await conn.begin()
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        jit_llvm = (await session.execute(text("SELECT pg_jit_available()"))).scalar()
        server_jit = (await session.execute(text("SHOW jit"))).scalar()
        print(
            f"JIT: jit={server_jit}, LLVM available: {'yes' if jit_llvm else 'no'} (the pre-fill statement "
            f"runs with jit=off: app/report/dispatch.py PREFILL_SETTINGS)"
        )
        departments = {code: await _setup(session, code) for code in ("cl", "mzj")}
        prefix = region_prefix(departments["cl"][1].region_code) + "%"
        persons = (
            await session.execute(text("SELECT count(*) FROM lg_person WHERE deleted_at IS NULL"))
        ).scalar()
        disabled = (await session.execute(text("SELECT count(*) FROM lg_person WHERE is_disabled"))).scalar()
        households = (
            await session.execute(text("SELECT count(*) FROM lg_household WHERE deleted_at IS NULL"))
        ).scalar()
        townships = (
            await session.execute(
                text("SELECT count(*) FROM org_unit WHERE kind = 'township' AND region_code LIKE :p"),
                {"p": prefix},
            )
        ).scalar()
        print(
            f"district: {persons:,} persons, {households:,} households, {disabled:,} disabled, "
            f"{townships} townships; repeat={repeat}"
        )
        for label, dept_code, raw, hand, cells in (
            (
                "(a) aggregate, 10 aggregate columns + ratio, persons × houses",
                "cl",
                AGGREGATE,
                HAND_AGGREGATE,
                AGGREGATE_CELLS,
            ),
            ("(b) list of disabled persons, 28 columns", "cl", LIST, HAND_LIST, LIST_CELLS),
            (
                "(c) 低保家庭住房安全情况: households, exists over members, houses once",
                "mzj",
                LOW_INCOME_HOUSING,
                HAND_HOUSEHOLDS,
                HOUSEHOLD_CELLS,
            ),
        ):
            principal, dept = departments[dept_code]
            template = await _template(session, dept, raw)

            # Defaults bind this iteration's values (the closures run within it; ruff B023 asks for it).
            async def hand_sql(jit: str | None = None, hand: str = hand):
                prev = await _set(session, "jit", jit) if jit else None
                out = (await session.execute(text(hand), {"prefix": prefix})).all()
                if prev is not None:
                    await _set(session, "jit", prev)
                return out

            async def hand_nojit():
                return await hand_sql("off")

            period = "2026-Q4" if raw.get("period") == "quarterly" else "2026-11"

            spent: list[float] = []
            split: list[tuple[float, float]] = []

            async def dispatch(
                principal=principal, template=template, period=period, spent=spent, split=split
            ):
                # Each round in a savepoint rolled back, so every round dispatches afresh.
                async with session.begin_nested() as sp:
                    clock.reset()
                    t0 = time.perf_counter()
                    out = await dispatch_mod.dispatch(session, principal, template, period=period)
                    spent.append(time.perf_counter() - t0)  # the dispatch alone, not reading the rows back
                    split.append(clock.reset())
                    rows = (
                        await session.execute(
                            text(
                                "SELECT r.row_key, r.data FROM report_row r JOIN report_task t ON t.id = r.task_id "
                                "WHERE t.version_id = (SELECT id FROM report_template_version WHERE template_id = :t)"
                            ),
                            {"t": template.id},
                        )
                    ).all()
                    await sp.rollback()
                return out, rows

            await hand_sql()  # warm the cache for both sides alike
            hand_times, hand_rows = await _timed(hand_sql, repeat)
            nojit_times, _ = await _timed(hand_nojit, repeat)
            _, (result, stored_rows) = await _timed(dispatch, repeat)
            disp_times = spent
            stored = len(stored_rows)
            h, hn, d = (
                statistics.median(hand_times),
                statistics.median(nojit_times),
                statistics.median(disp_times),
            )
            best = min(h, hn)  # the faster hand-written run is the one to beat
            sql_pre = statistics.median(x[0] for x in split)
            sql_other = statistics.median(x[1] for x in split)
            print(f"\n{label}")
            print(
                f"  hand-written SQL, server settings    {h * 1000:9.1f} ms  ({len(hand_rows):,} rows, median)"
            )
            print(f"  hand-written SQL, jit=off            {hn * 1000:9.1f} ms")
            print(
                f"  dispatch + pre-fill, {result['created']} tasks          {d * 1000:9.1f} ms  "
                f"({stored:,} rows stored, median)"
            )
            print(f"    of which the pre-fill statement    {sql_pre * 1000:9.1f} ms  (SQL)")
            print(f"    other statements (tasks, audit…)   {sql_other * 1000:9.1f} ms  (SQL)")
            print(f"    Python (compile, ORM, rest)        {max(d - sql_pre - sql_other, 0) * 1000:9.1f} ms")
            print(
                f"  ratio dispatch / hand-written         {d / best:9.2f} ×  (pre-fill statement alone "
                f"{sql_pre / best:.2f} ×)"
            )
            print(
                f"  runs: hand {[round(x * 1000) for x in hand_times]} ms, hand jit=off "
                f"{[round(x * 1000) for x in nojit_times]} ms, dispatch {[round(x * 1000) for x in disp_times]} ms"
            )
            assert stored == len(hand_rows), (stored, len(hand_rows))
            # The same answers, row by row and cell by cell (row keys: village codes, or person ids).
            got = {str(key): tuple(_norm(data.get(c)) for c in cells) for key, data in stored_rows}
            offset = 1 if raw["kind"] == "list" else 2  # a list row: id; an aggregate row: code, name
            want = {str(r[0]): tuple(_norm(v) for v in r[offset:]) for r in hand_rows}
            if raw is LOW_INCOME_HOUSING or raw is AGGREGATE:  # counts and sums: empty is 0 on both sides
                got = {k: tuple(0.0 if v is None else v for v in t) for k, t in got.items()}
                want = {k: tuple(0.0 if v is None else v for v in t) for k, t in want.items()}
            _compare(label[:3], got, want)
        await session.close()
        await trans.rollback()
    await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="default: ONETABLE_DATABASE_URL or the embedded server")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    url = normalise_url(args.database_url) if args.database_url else resolve_database_url(get_settings())
    print_environment(url)
    asyncio.run(run(url, args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
