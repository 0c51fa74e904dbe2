"""`onetable import` against a committed demo district (its own database): the project's messy sample
sheet end to end, idempotence across runs, and kill -9 during the commit (C1-7: nothing of the batch
is left, the batch stays approved, and a retry completes)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from app.catalog.validators import make_id_card
from app.db.engine import libpq_conninfo
from app.demo.load import load_demo
from app.imports.sample import write_xlsx
from tests.conftest import ROOT, own_database

ZHONGSHAN = "500118001"  # 中山路街道, the sample sheet's township
SHENGLI = "500118002"  # 胜利路街道


@pytest.fixture(scope="module")
def district(database_url: str) -> Iterator[str]:
    with own_database(database_url, "onetable_importjobs") as (url, _cfg):
        load_demo(libpq_conninfo(url), scale="small", seed=7)
        yield url


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONETABLE_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "import", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def one(url: str, query: str, *params: Any) -> Any:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def last_batch(url: str) -> dict[str, Any]:
    with psycopg.connect(libpq_conninfo(url)) as conn:
        row = conn.execute("SELECT id, status, counts FROM import_batch ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    return {"id": row[0], "status": row[1], "counts": row[2]}


def test_sample_sheet_end_to_end(district: str, tmp_path: Path) -> None:
    """impread's generated messy sheet (title rows, merged two-row header, 合计 and 填表人 rows, 15-digit
    and full-width IDs, 4 % duplicates) goes in: rows are read, skipped, converted, deduplicated and
    committed; the same file again changes nothing."""
    path = tmp_path / "2024年1月中山路街道实有人口信息登记表.xlsx"
    truth = write_xlsx(path, 600, seed=11)
    persons = one(district, "SELECT count(*) FROM lg_person WHERE deleted_at IS NULL")
    run = cli(district, str(path), "--ledger", "person", "--township", ZHONGSHAN, "--approve-as", "admin")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "写入台账" in run.stderr and "行/秒" in run.stderr  # the progress line
    b = last_batch(district)
    c = b["counts"]
    assert b["status"] == "committed"
    assert c["read"] == truth.data_rows
    assert c["skipped"] == len(truth.skipped_rows)
    assert c["duplicates"] >= truth.duplicates_with_id // 2  # 15-digit forms of an ID count as the same
    assert c["errors"] >= truth.bad_checksums
    # The sample numbers households 1, 2, … with random relations: a household without exactly one 户主
    # is a row error (docs/households.md); every other error is a cell the sheet got wrong.
    with psycopg.connect(libpq_conninfo(district)) as conn:
        codes = dict(
            conn.execute(
                "SELECT i->>'code', count(DISTINCT row_no) FROM import_row, jsonb_array_elements(issues) i"
                " WHERE batch_id = %s AND outcome = 'error' AND i->>'severity' = 'error' GROUP BY 1",
                (b["id"],),
            ).fetchall()
        )
    assert codes.get("household.head", 0) > 0 and codes.get("id_card.checksum", 0) >= truth.bad_checksums
    assert c["created"] > 100 and c["households_created"] > 0 and c["member_links"] >= c["created"] // 2
    assert c["read"] == sum(
        c[k] for k in ("created", "updated", "unchanged", "duplicates", "candidates", "errors")
    )
    assert one(district, "SELECT count(*) FROM lg_person WHERE deleted_at IS NULL") == persons + c["created"]
    hist = one(
        district,
        "SELECT count(DISTINCT record_id) FROM ledger_history WHERE source LIKE %s",
        f"import:{b['id']}:%",
    )
    assert hist == c["created"] + c["updated"]
    again = cli(district, str(path), "--ledger", "person", "--township", ZHONGSHAN, "--approve-as", "admin")
    assert again.returncode == 0, again.stdout + again.stderr
    c2 = last_batch(district)["counts"]
    assert (c2["created"], c2["updated"]) == (0, 0)
    assert c2["unchanged"] == c["created"] + c["updated"] + c["unchanged"]


def _sheet(path: Path, village: str, n: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "公民身份号码", "现居住标准地址", "联系电话"])
        for i in range(n):
            born = date(1950 + i % 50, 1 + i % 12, 1 + i % 28)
            w.writerow(
                [
                    f"测试{i}",
                    make_id_card("500118", born, 500 + i % 400, "12"[i % 2]),
                    f"重庆市永川区胜利路街道{village}{1 + i % 9}号",
                    f"139{i:08d}",
                ]
            )


def test_kill_during_commit_leaves_nothing_and_retry_completes(district: str, tmp_path: Path) -> None:
    village = one(
        district, "SELECT name FROM region WHERE parent_code = %s ORDER BY code LIMIT 1", SHENGLI + "000"
    )
    path = tmp_path / "胜利路街道人口.csv"
    n = 6000
    _sheet(path, village, n)
    persons = one(district, "SELECT count(*) FROM lg_person")
    env = {**os.environ, "ONETABLE_DATABASE_URL": district}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "import",
            str(path),
            "--township",
            SHENGLI,
            "--approve-as",
            "admin",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:  # wait for the commit's write phase
            if line.startswith("写入台账"):
                break
        else:
            pytest.fail("the import ended before its commit wrote anything")
        # then until the commit's transaction has inserted ledger rows (not yet committed)
        deadline = time.monotonic() + 60
        with psycopg.connect(libpq_conninfo(district), autocommit=True) as watch:
            while time.monotonic() < deadline:
                seen = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE pid <> pg_backend_pid() AND datname = current_database()"
                    " AND xact_start IS NOT NULL AND (query LIKE 'INSERT INTO lg_person%%'"
                    " OR query LIKE 'UPDATE lg_person%%' OR query LIKE 'INSERT INTO ledger_history%%'"
                    " OR query LIKE '%%rel_household%%' OR query LIKE 'UPDATE import_row%%')"
                ).fetchone()
                if seen and seen[0]:
                    break
                time.sleep(0.005)
            else:
                pytest.fail("never saw the commit's writes")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    b = last_batch(district)
    assert b["status"] == "approved"  # not committed, and nothing of it in the ledger
    deadline = time.monotonic() + 30  # the server notices the dead client and rolls back
    while (
        one(
            district,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'",
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert one(district, "SELECT count(*) FROM lg_person") == persons
    assert (
        one(district, "SELECT count(*) FROM ledger_history WHERE source LIKE %s", f"import:{b['id']}:%") == 0
    )
    retry = cli(district, "--batch", str(b["id"]), "--approve-as", "admin")
    assert retry.returncode == 0, retry.stdout + retry.stderr
    done = last_batch(district)
    assert done["status"] == "committed" and done["counts"]["created"] == n
    assert one(district, "SELECT count(*) FROM lg_person") == persons + n
