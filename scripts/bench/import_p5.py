"""P5: import N person rows of a township's legacy sheet (XLSX and CSV) into a full-scale district.

Run `onetable demo --scale full` on the database first. For each format the bench generates the sheet
(N rows: ~86 % new persons, ~10 % persons already in the ledger with a changed phone, ~4 % repeated
rows; 户号 and 与户主关系 so households and houses are made too), then times the whole job as a clerk
runs it: parse (the worker process) + stage the rows, dry run (convert, validate, place, dedupe
against the full ledger), and the commit (the plan again under locks, bulk writes, households,
history, per-row results). Afterwards the batch is undone (timed too) so the next format starts from
the same ledger.

Baseline, same run: `COPY` of the same rows (the CSV) into a bare table of text columns. The ratio is
COPY's time over the import's (goal: >= 0.3). Peak memory: this process's max RSS and the parse
worker's (children).

Usage: .venv/bin/python scripts/bench/import_p5.py [--rows 100000] [--database-url URL] [--formats csv,xlsx]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
import xlsxwriter
from _env import print_environment
from sqlalchemy import text

from app.catalog.validators import make_id_card
from app.config import get_settings
from app.db.engine import libpq_conninfo, make_engine, make_sessionmaker, resolve_database_url
from app.imports import commit as commit_job, jobs, undo
from app.imports.cli import township_user, user_principal
from app.imports.reading import read_table

TOWNSHIP = "500118101"  # 金龙镇
HEADERS = [
    "序号",
    "姓名",
    "公民身份号码",
    "性别",
    "出生日期",
    "联系电话",
    "现居住标准地址",
    "户号",
    "与户主关系",
    "备注",
]
RELATIONS = ["户主", "配偶", "子", "女"]


def sheet_rows(
    n: int, villages: list[str], existing: list[tuple[str, str]], seed: int = 5
) -> list[list[Any]]:
    rng = random.Random(seed)
    rows: list[list[Any]] = []
    used: set[str] = {i for i, _ in existing}
    hh = 0
    members = 0
    while len(rows) < n:
        k = len(rows) + 1
        x = rng.random()
        if x < 0.04 and rows:
            rows.append(list(rows[rng.randrange(len(rows))]))
            rows[-1][0] = k
            continue
        if members == 0:
            hh += 1
            members = rng.randint(1, 4)
            village = rng.choice(villages)
            addr = f"重庆市永川区金龙镇{village}{rng.randint(1, 12)}组{hh}号"
            rel_i = 0
        else:
            rel_i = min(rel_i + 1, 3)
        members -= 1
        if x < 0.14 and existing:
            idn, name = existing[rng.randrange(len(existing))]
            sex = "男" if int(idn[16]) % 2 else "女"
            born = f"{idn[6:10]}-{idn[10:12]}-{idn[12:14]}"
        else:
            while True:
                b = date(1930 + rng.randrange(90), 1 + rng.randrange(12), 1 + rng.randrange(28))
                s = rng.choice("12")
                idn = make_id_card("500118", b, rng.randrange(1000), s)
                if idn not in used:
                    used.add(idn)
                    break
            name = (
                rng.choice("王李张刘陈杨黄赵吴周")
                + rng.choice("伟芳娜秀英敏静丽强磊")
                + rng.choice(["", "华", "明"])
            )
            sex = "男" if s == "1" else "女"
            born = b.isoformat() if rng.random() < 0.7 else b.strftime("%Y.%m.%d")
        rows.append(
            [k, name, idn, sex, born, f"139{rng.randrange(10**8):08d}", addr, str(hh), RELATIONS[rel_i], None]
        )
    return rows


def write_csv(path: Path, rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        w.writerows(["" if v is None else v for v in r] for r in rows)


def write_xlsx(path: Path, rows: list[list[Any]]) -> None:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("人口")
    ws.write_row(0, 0, HEADERS)
    for i, r in enumerate(rows, 1):
        for c, v in enumerate(r):
            if v is None:
                continue
            if isinstance(v, int):
                ws.write_number(i, c, v)
            else:
                ws.write_string(i, c, v)
    wb.close()


def copy_baseline(conninfo: str, path: Path) -> float:
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_p5_raw (seq text, name text, id_number text, sex text, born text,"
            " phone text, address text, household text, relation text, remark text)"
        )
        t0 = time.perf_counter()
        with (
            conn.cursor().copy("COPY bench_p5_raw FROM STDIN (FORMAT csv, HEADER true)") as cp,
            path.open("rb") as f,
        ):
            while chunk := f.read(1 << 20):
                cp.write(chunk)
        conn.commit()
        return time.perf_counter() - t0


async def run_import(
    maker: Any, path: Path, township: str, phases: dict[str, float]
) -> tuple[int, dict[str, Any]]:
    def progress(phase: str, done: int, total: int) -> None:
        phases.setdefault(phase, time.perf_counter())

    t0 = time.perf_counter()
    table = read_table(path)
    phases["parsed"] = time.perf_counter() - t0
    content = await asyncio.to_thread(path.read_bytes)
    async with maker() as s:
        uploader = await township_user(s, township)
        t = time.perf_counter()
        batch = await jobs.upload(
            s, uploader, ledger="person", township=township, file_name=path.name, content=content, table=table
        )
        bid = batch.id
        phases["staged"] = time.perf_counter() - t
        t = time.perf_counter()
        await jobs.dry_run(s, uploader, bid, progress)
        phases["dry_run"] = time.perf_counter() - t
        await jobs.submit(s, uploader, bid)
        await jobs.approve(s, await user_principal(s, "admin"), bid)
        await s.commit()
    async with maker() as s:
        t = time.perf_counter()
        batch = await commit_job.commit(s, await user_principal(s, "admin"), bid, progress)
        await s.commit()
        phases["commit"] = time.perf_counter() - t
        return bid, dict(batch.counts)


async def run_undo(maker: Any, bid: int) -> float:
    async with maker() as s:
        t = time.perf_counter()
        await undo.undo(s, await user_principal(s, "admin"), bid)
        await s.commit()
        return time.perf_counter() - t


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--formats", default="csv,xlsx")
    args = ap.parse_args()
    settings = get_settings()
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    url = resolve_database_url(settings)
    conninfo = libpq_conninfo(url)
    print_environment(url)
    engine = make_engine(url, settings)
    maker = make_sessionmaker(engine)
    async with maker() as s:
        villages = [
            r[0]
            for r in (
                await s.execute(
                    text("SELECT name FROM region WHERE parent_code = :t AND level = 5 ORDER BY code"),
                    {"t": TOWNSHIP + "000"},
                )
            ).all()
        ]
        existing = [
            (r[0], r[1])
            for r in (
                await s.execute(
                    text(
                        "SELECT id_number, name FROM lg_person WHERE region_code LIKE :p AND deleted_at IS NULL"
                        " ORDER BY id LIMIT :n"
                    ),
                    {"p": TOWNSHIP + "%", "n": args.rows // 8},
                )
            ).all()
        ]
        persons = (await s.execute(text("SELECT count(*) FROM lg_person WHERE deleted_at IS NULL"))).scalar()
    print(
        f"ledger: {persons:,} persons; sheet: {args.rows:,} rows into township {TOWNSHIP}"
        f" ({len(villages)} villages), {len(existing):,} known persons to update",
        flush=True,
    )
    rows = sheet_rows(args.rows, villages, existing)
    with tempfile.TemporaryDirectory(prefix="bench-p5-") as d:
        csv_path = Path(d) / "金龙镇人口台账.csv"
        write_csv(csv_path, rows)
        copy_s = copy_baseline(conninfo, csv_path)
        print(f"COPY baseline: {copy_s:.2f} s, {args.rows / copy_s:,.0f} rows/s", flush=True)
        for fmt in args.formats.split(","):
            path = csv_path
            if fmt == "xlsx":
                path = Path(d) / "金龙镇人口台账.xlsx"
                write_xlsx(path, rows)
            phases: dict[str, float] = {}
            t0 = time.perf_counter()
            bid, counts = await run_import(maker, path, TOWNSHIP, phases)
            total = time.perf_counter() - t0
            undo_s = await run_undo(maker, bid)
            me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(
                f"{fmt}: {total:.1f} s, {args.rows / total:,.0f} rows/s, ratio to COPY {copy_s / total:.3f}"
                f" (parse {phases['parsed']:.1f} s, stage {phases['staged']:.1f} s, dry run"
                f" {phases['dry_run']:.1f} s, commit {phases['commit']:.1f} s; undo {undo_s:.1f} s)",
                flush=True,
            )
            print(f"  counts: {', '.join(f'{k}={v:,}' for k, v in counts.items())}", flush=True)
            print(f"  peak RSS: this process {me:,.0f} MiB, parse worker {kids:,.0f} MiB", flush=True)
    await engine.dispose()


# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--rows", "1000"]

if __name__ == "__main__":
    asyncio.run(main())
