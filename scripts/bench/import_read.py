"""The reading side of an import: read_table + propose_mapping + convert_row over a generated messy
person sheet, XLSX and CSV (GB18030), against a raw COPY of the same CSV into a bare text table.

    .venv/bin/python scripts/bench/import_read.py --database-url URL [--rows 100000]

Prints the environment line, then per format: the seconds, rows/s and rows per CPU-second (this
process and the parse worker; less sensitive to a loaded machine than wall time) of reading alone
(layout detection included) and of reading + conversion, and the ratio of the latter to the COPY's
rows/s in the same run. The COPY loads the file's data rows as text, without any checking: the
floor the P5 import (issue 11, goal >= 0.3x COPY for the whole pipeline) is measured against. No
database table of the project is touched; the COPY target is a temporary table. --keep DIR keeps the
generated files there and reuses them on the next run with the same --rows and --seed.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from _env import print_environment

from app.imports.convert import convert_row
from app.imports.mapping import propose_mapping
from app.imports.reading import open_table
from app.imports.sample import (
    FLAT,
    SampleTruth,
    sample_rows,
    write_csv,
    write_xlsx,
)


def _cpu() -> float:
    """CPU seconds of this process and of its reaped children (the parse worker)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _read(path: Path, convert: bool) -> tuple[float, float, int, int]:
    cpu = _cpu()
    start = time.perf_counter()
    table = open_table(path)
    mapping = propose_mapping("person", table.headers)
    n = errors = 0
    for row in table.rows():
        n += 1
        if convert:
            _values, issues = convert_row("person", mapping, row)
            errors += any(i.severity == "error" for i in issues)
    return time.perf_counter() - start, _cpu() - cpu, n, errors


def _copy(url: str, path: Path, data_rows: int) -> float:
    """COPY the CSV's data lines (title, header and footer lines dropped) into a bare text table."""
    columns = ", ".join(f"c{i} text" for i in range(len(FLAT)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TEMPORARY TABLE import_copy ({columns})")
        start = time.perf_counter()
        with open(path, encoding="gb18030") as fh, conn.cursor() as cur:
            for _ in range(4):  # title, unit line, two header rows
                fh.readline()
            with cur.copy("COPY import_copy FROM STDIN (FORMAT csv)") as copy:
                for i, line in enumerate(fh):
                    if i >= data_rows:
                        break
                    copy.write(line)
        elapsed = time.perf_counter() - start
        count = conn.execute("SELECT count(*) FROM import_copy").fetchone()
        assert count is not None and count[0] >= data_rows - 100, count
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("ONETABLE_DATABASE_URL"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--keep", type=Path, help="keep (and reuse) the generated files in this folder")
    args = ap.parse_args()
    if not args.database_url:
        ap.error("--database-url or ONETABLE_DATABASE_URL is required")
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    print_environment(url)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"person_{args.rows}_{args.seed}"
        xlsx, csv_path = folder / f"{stem}.xlsx", folder / f"{stem}.csv"
        t0 = time.perf_counter()
        if xlsx.exists() and csv_path.exists():
            truth = SampleTruth()
            for _ in sample_rows(args.rows, args.seed, truth):
                pass
        else:
            truth = write_xlsx(xlsx, args.rows, args.seed)
            write_csv(csv_path, args.rows, args.seed)
        print(
            f"generated {truth.data_rows} data rows twice in {time.perf_counter() - t0:.1f}s: "
            f"xlsx {xlsx.stat().st_size >> 20} MB, csv {csv_path.stat().st_size >> 20} MB; "
            f"{truth.duplicates_with_id + truth.duplicates_without_id} duplicates, "
            f"{truth.ids_15} 15-digit IDs, {truth.bad_checksums} bad check digits",
            flush=True,
        )
        copy_s = _copy(url, csv_path, truth.data_rows)
        copy_rate = truth.data_rows / copy_s
        print(f"COPY (csv text, no checks): {copy_s:.2f}s, {copy_rate:,.0f} rows/s", flush=True)
        for label, path in (("xlsx", xlsx), ("csv", csv_path)):
            read_s, read_cpu, n, _ = _read(path, convert=False)
            both_s, both_cpu, n2, errors = _read(path, convert=True)
            assert n == n2 == truth.data_rows, (n, n2, truth.data_rows)
            rate = n / both_s
            print(
                f"{label}: read {read_s:.2f}s ({n / read_s:,.0f} rows/s, "
                f"{n / read_cpu:,.0f} rows per CPU-second); read + map + convert "
                f"{both_s:.2f}s ({rate:,.0f} rows/s, "
                f"{n / both_cpu:,.0f} rows per CPU-second, {errors} rows with errors); "
                f"ratio to COPY {rate / copy_rate:.2f}x",
                flush=True,
            )


# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--rows", "1000"]

if __name__ == "__main__":
    main()
