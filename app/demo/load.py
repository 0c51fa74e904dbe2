"""Load the demo district: org tree and demo identities by INSERT, every ledger and relation by COPY.

One transaction: TRUNCATE, org tree, COPY … FREEZE (allowed because the tables were truncated in the
same transaction, and it spares the first benchmark queries from setting hint bits on every page),
identity sequences, ANALYZE. No ledger_history rows: the demo load is the baseline every later change
is recorded against; each row's provenance says it came from the demo load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from app.auth.passwords import hash_password, new_api_key
from app.catalog.loader import get_catalog
from app.demo.district import DISTRICT, region_rows, townships, villages
from app.demo.generate import COLUMNS, Batch, default_provenance, generate
from app.demo.grants import seed_demo_grants

ORG_TABLES = ("region", "org_unit", "app_user", "service_account", "access_grant")
DEMO_PASSWORD = "onetable"
# Rows per COPY round: large enough that statement overhead vanishes, small enough to bound memory.
CHUNK_ROWS = 150_000

Progress = Callable[[str, int], None]


def load_demo(
    conninfo: str,
    *,
    scale: str = "small",
    seed: int = 20261123,
    reset: bool = False,
    progress: Progress | None = None,
) -> dict[str, int | str]:
    """Load the demo district; return row counts per table (+ the demo service account's key).

    With ledger rows present and reset=False nothing is loaded (`make run` reuses the district).
    reset=True empties ledger, relation, history and org tables first (RESTART IDENTITY CASCADE).
    """
    say = progress or (lambda stage, n: None)
    catalog = get_catalog()
    ledgers = [lg.table_name for lg in catalog.ledgers.values()]
    relations = [rel.table_name for rel in catalog.relations.values()]
    missing = set(COLUMNS) - set(ledgers) - set(relations)
    if missing:
        raise RuntimeError(f"the catalogue has no tables {sorted(missing)}")
    counted = [*ORG_TABLES, *ledgers, *relations, "ledger_history"]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if not reset and _any_rows(conn, ledgers):
            say("already loaded", 0)
            return dict[str, int | str](_counts(conn, counted))
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            # Without reset the ledgers are empty: truncating them anyway is what permits COPY FREEZE.
            # CASCADE only on reset (it empties whatever references org units: grants, templates …).
            emptied = [*ledgers, *relations] + (["ledger_history", *ORG_TABLES] if reset else [])
            conn.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY{}").format(
                    sql.SQL(", ").join(map(sql.Identifier, emptied)), sql.SQL(" CASCADE" if reset else "")
                )
            )
            key = _org_tree(conn)
            seed_demo_grants(conn)
            say("org tree", len(region_rows()))
            provenance = default_provenance(datetime.now(UTC).replace(microsecond=0))
            total = _copy(conn, generate(scale, seed, provenance=provenance), say)
            for table in [*ledgers, *relations]:
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'), coalesce(max(id), 0) + 1, false) "
                        "FROM {i}"
                    ).format(t=sql.Literal(table), i=sql.Identifier(table))
                )
            conn.execute(
                sql.SQL("ANALYZE {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, [*ledgers, *relations, *ORG_TABLES]))
                )
            )
            say("sequences, analyze", total)
        counts: dict[str, int | str] = dict(_counts(conn, counted))
    counts["service_account_key"] = key
    return counts


def _any_rows(conn: psycopg.Connection, tables: Iterable[str]) -> bool:
    query = sql.SQL(" OR ").join(
        sql.SQL("EXISTS (SELECT 1 FROM {})").format(sql.Identifier(t)) for t in tables
    )
    row = conn.execute(sql.SQL("SELECT ") + query).fetchone()
    return bool(row and row[0])


def _counts(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    query = sql.SQL(", ").join(sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(t)) for t in tables)
    row = conn.execute(sql.SQL("SELECT ") + query).fetchone()
    assert row is not None  # one row of counts
    return dict(zip(tables, row, strict=True))


def _chunks(batches: Iterator[Batch]) -> Iterator[tuple[str, dict[str, list[tuple]]]]:
    """Merge village batches until CHUNK_ROWS; yields (township name of the last village, rows)."""
    merged: dict[str, list[tuple]] = {t: [] for t in COLUMNS}
    n = 0
    label = ""
    for batch in batches:
        for table, rows in batch.rows.items():
            merged[table] += rows
            n += len(rows)
        label = batch.village.township.name
        if n >= CHUNK_ROWS:
            yield label, merged
            merged, n = {t: [] for t in COLUMNS}, 0
    if n:
        yield label, merged


def _copy(conn: psycopg.Connection, batches: Iterator[Batch], say: Progress) -> int:
    total = 0
    with conn.cursor() as cur:
        for label, chunk in _chunks(batches):
            for table, rows in chunk.items():
                if not rows:
                    continue
                stmt = sql.SQL("COPY {} ({}) FROM STDIN (FREEZE)").format(
                    sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
                )
                with cur.copy(stmt) as copy:
                    write = copy.write_row
                    for row in rows:
                        write(row)
                total += len(rows)
            say(label, total)
    return total


def _org_tree(conn: psycopg.Connection) -> str:
    """Regions, org units, demo users and the demo service account; returns the account's full key.

    Upserts, so a load without reset keeps users and units created outside the demo.
    """
    catalog = get_catalog()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO region (code, name, level, parent_code) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level, "
            "parent_code = EXCLUDED.parent_code",
            region_rows(),
        )
        district = DISTRICT[0]
        units: list[tuple[str, str, str, str, str | None]] = [
            ("platform", "区大数据发展局（一表通平台）", "platform", district, None)
        ]
        units += [
            (f"dept:{d.code}", d.name, "department", district, d.code) for d in catalog.departments.values()
        ]
        units += [(t.code, t.office, "township", t.code, None) for t in townships()]
        units += [
            (v.code, f"{v.full_name}{'居民' if v.is_community else '村民'}委员会", "village", v.code, None)
            for v in villages()
        ]
        cur.executemany(
            "INSERT INTO org_unit (code, name, kind, region_code, department_code) "
            "VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, "
            "region_code = EXCLUDED.region_code, department_code = EXCLUDED.department_code",
            units,
        )
        unit_id: dict[str, int] = dict(
            cur.execute(
                "SELECT code, id FROM org_unit WHERE code = ANY(%s)", ([u[0] for u in units],)
            ).fetchall()
        )
        pw = hash_password(DEMO_PASSWORD)  # argon2 is slow on purpose: hash once, share the hash
        first_village = villages()[0]
        users = [
            ("admin", "平台管理员", "platform", ["platform_admin"]),
            ("cl", "区残联", "dept:cl", ["dept_admin"]),
            ("mzj", "区民政局", "dept:mzj", ["dept_admin"]),
            ("nyncw", "区农业农村委", "dept:nyncw", ["dept_admin"]),
        ]
        users += [(f"t{t.code9}", f"{t.name}管理员", t.code, ["township_admin"]) for t in townships()]
        users.append(
            (
                f"v{first_village.code}",
                f"{first_village.full_name}工作人员",
                first_village.code,
                ["village_staff"],
            )
        )
        cur.executemany(
            "INSERT INTO app_user (username, display_name, password_hash, org_unit_id, roles, active) "
            "VALUES (%s, %s, %s, %s, %s, true) ON CONFLICT (username) DO NOTHING",
            [(u, name, pw, unit_id[unit], roles) for u, name, unit, roles in users],
        )
        key, prefix, key_hash = new_api_key()
        cur.execute(
            "INSERT INTO service_account (name, org_unit_id, key_prefix, key_hash, active) "
            "VALUES ('demo-system', %s, %s, %s, true) ON CONFLICT (name) DO UPDATE SET "
            "org_unit_id = EXCLUDED.org_unit_id, key_prefix = EXCLUDED.key_prefix, "
            "key_hash = EXCLUDED.key_hash, active = true",
            (unit_id["dept:mzj"], prefix, key_hash),
        )
    return key
