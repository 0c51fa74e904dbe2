"""Benchmark: report pre-fill at dispatch on the demo district, against one hand-written SQL statement.

    ONETABLE_DATA_DIR=/tmp/report-pg ONETABLE_DATABASE_NAME=bench .venv/bin/python scripts/bench/report_prefill.py
    .venv/bin/python scripts/bench/report_prefill.py --database-url postgresql://…/demo

(a) an aggregate template (10 aggregate columns + a ratio over persons joined to their houses, one row per
village), (b) a list template of disabled persons (28 columns) and (c) 区民政局's 低保家庭住房安全情况
(app/demo/reports.py: households with a 低保 member, an exists filter over household.members, persons
per household, house area once per house, one row per village) are dispatched to every township:
compile + one INSERT … SELECT per task. Each is timed against one hand-written statement that computes
the same rows for the whole district, in the same run; for (c) the pre-filled cells must equal it. Everything happens in one transaction that is
rolled back: the database is left as it was (report tables are created inside it if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine  # noqa: E402

from app.access.models import Grant  # noqa: E402
from app.auth.principal import Principal  # noqa: E402
from app.config import get_settings  # noqa: E402
from app.db.engine import normalise_url, resolve_database_url  # noqa: E402
from app.demo.grants import DEMO_GRANTS  # noqa: E402
from app.demo.reports import LOW_INCOME_HOUSING  # noqa: E402
from app.org.models import OrgUnit  # noqa: E402
from app.org.regions import region_prefix  # noqa: E402
from app.report import dispatch as dispatch_mod  # noqa: E402
from app.report.dsl import parse_spec  # noqa: E402
from app.report.models import ReportTemplate, ReportTemplateVersion  # noqa: E402

AGGREGATE = {
    "code": "bench_households", "name": "各村人口与住房统计", "kind": "aggregate", "ledger": "person",
    "rows": {"by": "village"},
    "columns": [
        {"kind": "aggregate", "code": "persons", "label": "人口数", "fn": "count"},
        {"kind": "aggregate", "code": "male", "label": "男性", "fn": "count",
         "filter": [{"path": "sex", "op": "eq", "value": "1"}]},
        {"kind": "aggregate", "code": "female", "label": "女性", "fn": "count",
         "filter": [{"path": "sex", "op": "eq", "value": "2"}]},
        {"kind": "aggregate", "code": "elderly", "label": "60 岁以上", "fn": "count",
         "filter": [{"path": "birth_date", "op": "lte", "value": "1966-11-30"}]},
        {"kind": "aggregate", "code": "disabled", "label": "残疾人", "fn": "count",
         "filter": [{"path": "is_disabled", "op": "eq", "value": True}]},
        {"kind": "aggregate", "code": "houses", "label": "住房数", "fn": "count_distinct", "path": "residence.id"},
        {"kind": "aggregate", "code": "area", "label": "住房面积合计", "fn": "sum", "path": "residence.floor_area"},
        {"kind": "aggregate", "code": "avg_area", "label": "人均住房面积", "fn": "avg", "path": "residence.floor_area"},
        {"kind": "aggregate", "code": "newest", "label": "最新建成年份", "fn": "max", "path": "residence.built_year"},
        {"kind": "aggregate", "code": "dangerous", "label": "居住危房人数", "fn": "count",
         "filter": [{"path": "residence.is_dangerous", "op": "eq", "value": True}]},
        {"kind": "ratio", "code": "elderly_share", "label": "老龄化率（%）", "numerator": "elderly",
         "denominator": "persons"},
        {"kind": "gap", "code": "visits", "label": "本月入户走访户数", "type": "integer", "min": 0},
    ],
}
HAND_AGGREGATE = """
SELECT r.code, r.name, coalesce(a.persons, 0), coalesce(a.male, 0), coalesce(a.female, 0),
       coalesce(a.elderly, 0), coalesce(a.disabled, 0), coalesce(a.houses, 0), coalesce(a.area, 0), a.avg_area,
       a.newest, coalesce(a.dangerous, 0),
       round(a.elderly::numeric * 100 / nullif(a.persons, 0), 2)
FROM region r LEFT JOIN (
  SELECT left(p.region_code, 12) AS k, count(*) AS persons,
         count(*) FILTER (WHERE p.sex = '1') AS male, count(*) FILTER (WHERE p.sex = '2') AS female,
         count(*) FILTER (WHERE p.birth_date <= DATE '1966-11-30') AS elderly,
         count(*) FILTER (WHERE p.is_disabled) AS disabled, count(DISTINCT h.id) AS houses,
         sum(h.floor_area) AS area, round(avg(h.floor_area), 2) AS avg_area, max(h.built_year) AS newest,
         count(*) FILTER (WHERE h.is_dangerous) AS dangerous
  FROM lg_person p
  LEFT JOIN rel_residence l ON l.from_id = p.id AND l.deleted_at IS NULL
  LEFT JOIN lg_house h ON h.id = l.to_id AND h.deleted_at IS NULL
  WHERE p.deleted_at IS NULL AND p.region_code LIKE :prefix
  GROUP BY 1) a ON a.k = r.code
WHERE r.level = 5 AND r.code LIKE :prefix
ORDER BY r.code
"""

PERSON = ["name", "id_number", "sex", "birth_date", "ethnicity", "phone", "household_type", "hukou_address",
          "residence_address", "marital_status"]
DISABILITY = ["certificate_number", "disability_type", "disability_level", "certificate_issued_on",
              "certificate_valid_until", "guardian_name", "guardian_phone", "living_subsidy", "care_subsidy",
              "subsidy_amount", "rehabilitation_need", "rehabilitation_received", "assistive_device", "employed",
              "education_level"]
LIST = {
    "code": "bench_disabled", "name": "残疾人基本情况", "kind": "list", "ledger": "person",
    "filter": [{"path": "is_disabled", "op": "eq", "value": True}],
    "columns": [{"kind": "field", "code": c, "path": c} for c in PERSON]
    + [{"kind": "field", "code": f"d_{c}", "path": f"disability.{c}"} for c in DISABILITY]
    + [{"kind": "field", "code": "address", "path": "residence.standard_address"},
       {"kind": "formula", "code": "subsidy_year", "label": "年补贴（元）", "expr": "d_subsidy_amount * 12"},
       {"kind": "gap", "code": "visited", "label": "本月是否走访", "type": "boolean", "required": True}],
}
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
# ID number by name, newer than the demo's masked grant, so the birth date derived from it is plain too);
# 民政局 has exactly the demo district's grants (app/demo/grants.py).
BENCH_GRANTS = {"cl": [*({"ledger": lg, "field": "*", "level": "read", "row_scope": "own"}
                         for lg in ("person", "disability", "house")),
                       {"ledger": "person", "field": "id_number", "level": "read", "row_scope": "own"}],
                "mzj": [g for g in DEMO_GRANTS if g["grantee"] == ("org_unit", "dept:mzj")]}
NAMES = {"cl": "区残联", "mzj": "区民政局"}


async def _setup(session: AsyncSession, code: str) -> tuple[Principal, OrgUnit]:
    from app.db.models import metadata

    conn = await session.connection()
    report_tables = [t for name, t in metadata.tables.items() if name.startswith("report_")]
    await conn.run_sync(lambda c: metadata.create_all(c, tables=report_tables, checkfirst=True))
    dept = (await session.scalars(select(OrgUnit).where(OrgUnit.kind == "department",
                                                        OrgUnit.department_code == code))).first()
    if dept is None:
        dept = OrgUnit(code=f"dept:{code}", name=NAMES[code], kind="department", region_code="500118000000",
                       department_code=code)
        session.add(dept)
        await session.flush()
    for g in BENCH_GRANTS[code]:
        session.add(Grant(grantee_type="org_unit", org_unit_id=dept.id, ledger=g["ledger"], field=g["field"],
                          level=g["level"], row_scope=g.get("row_scope", "own"), created_by="bench"))
    await session.flush()
    principal = Principal(kind="user", id=0, name="bench", org_unit_id=dept.id, org_unit_kind="department",
                          region_code=dept.region_code, region_prefix=region_prefix(dept.region_code),
                          department_code=code, roles=frozenset({"dept_admin"}))
    return principal, dept


async def _template(session: AsyncSession, dept: OrgUnit, raw: dict) -> ReportTemplate:
    spec = parse_spec(raw)
    t = ReportTemplate(department_code=dept.department_code, org_unit_id=dept.id, code=spec.code, name=spec.name,
                       latest_version=1, created_by="bench")
    session.add(t)
    await session.flush()
    session.add(ReportTemplateVersion(template_id=t.id, version=1, spec=spec.model_dump(mode="json", exclude_none=True),
                                      state="approved", pull_only=spec.pull_only, created_by="bench"))
    await session.flush()
    return t


async def _timed(fn, repeat: int) -> tuple[list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = await fn()
        times.append(time.perf_counter() - t0)
    return times, out


async def run(url: str, repeat: int) -> None:
    engine = create_async_engine(url, pool_size=1, connect_args={"options": "-c statement_timeout=0"})
    async with engine.connect() as conn:
        trans = await conn.begin()
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        departments = {code: await _setup(session, code) for code in ("cl", "mzj")}
        prefix = region_prefix(departments["cl"][1].region_code) + "%"
        persons = (await session.execute(text("SELECT count(*) FROM lg_person WHERE deleted_at IS NULL"))).scalar()
        disabled = (await session.execute(text("SELECT count(*) FROM lg_person WHERE is_disabled"))).scalar()
        households = (await session.execute(text("SELECT count(*) FROM lg_household WHERE deleted_at IS NULL"))).scalar()
        townships = (await session.execute(text(
            "SELECT count(*) FROM org_unit WHERE kind = 'township' AND region_code LIKE :p"), {"p": prefix})).scalar()
        print(f"district: {persons:,} persons, {households:,} households, {disabled:,} disabled, "
              f"{townships} townships; repeat={repeat}")
        for label, dept_code, raw, hand in (
                ("(a) aggregate, 10 aggregate columns + ratio, persons × houses", "cl", AGGREGATE, HAND_AGGREGATE),
                ("(b) list of disabled persons, 28 columns", "cl", LIST, HAND_LIST),
                ("(c) 低保家庭住房安全情况: households, exists over members, houses once", "mzj", LOW_INCOME_HOUSING,
                 HAND_HOUSEHOLDS)):
            principal, dept = departments[dept_code]
            template = await _template(session, dept, raw)

            async def hand_sql(hand=hand):
                return (await session.execute(text(hand), {"prefix": prefix})).all()

            period = "2026-Q4" if raw.get("period") == "quarterly" else "2026-11"

            async def dispatch(principal=principal, template=template, period=period):
                # Each round in a savepoint rolled back, so every round dispatches afresh.
                async with session.begin_nested() as sp:
                    out = await dispatch_mod.dispatch(session, principal, template, period=period)
                    rows = (await session.execute(text(
                        "SELECT r.row_key, r.data FROM report_row r JOIN report_task t ON t.id = r.task_id "
                        "WHERE t.version_id = (SELECT id FROM report_template_version WHERE template_id = :t)"),
                        {"t": template.id})).all()
                    await sp.rollback()
                return out, rows

            await hand_sql()  # warm the cache for both sides alike
            hand_times, hand_rows = await _timed(hand_sql, repeat)
            disp_times, (result, stored_rows) = await _timed(dispatch, repeat)
            stored = len(stored_rows)
            h, d = statistics.median(hand_times), statistics.median(disp_times)
            print(f"\n{label}")
            print(f"  hand-written SQL, one statement      {h * 1000:9.1f} ms  ({len(hand_rows):,} rows, median)")
            print(f"  dispatch + pre-fill, {result['created']} tasks          {d * 1000:9.1f} ms  ({stored:,} rows stored, median)")
            print(f"  ratio dispatch / hand-written         {d / h:9.2f} ×")
            print(f"  runs: hand {[round(x * 1000) for x in hand_times]} ms, dispatch "
                  f"{[round(x * 1000) for x in disp_times]} ms")
            assert stored == len(hand_rows), (stored, len(hand_rows))
            if raw is LOW_INCOME_HOUSING:  # the same figures, village by village
                got = {key: tuple(float(data.get(c) or 0) for c in HOUSEHOLD_CELLS) for key, data in stored_rows}
                want = {r[0]: tuple(float(v) for v in r[2:]) for r in hand_rows}
                assert got == want, sorted(set(got.items()) ^ set(want.items()))[:4]
        await session.close()
        await trans.rollback()
    await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="default: ONETABLE_DATABASE_URL or the embedded server")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    url = normalise_url(args.database_url) if args.database_url else resolve_database_url(get_settings())
    asyncio.run(run(url, args.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


