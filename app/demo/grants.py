"""Grants the demo district starts with, so each demo login shows what its real counterpart would.

Townships keep their own ledgers (write, own subtree); departments read what they own across the
district, with ID numbers still masked; the demo service account reads a few public person fields.
"""

from __future__ import annotations

import psycopg

DEMO_GRANTS: list[dict] = [
    # 镇街 and 村社区 maintain the ledgers of their own area.
    {"grantee": ("role", "township_admin"), "ledger": "*", "field": "*", "level": "write"},
    {"grantee": ("role", "township_staff"), "ledger": "*", "field": "*", "level": "write"},
    {"grantee": ("role", "village_staff"), "ledger": "person", "field": "*", "level": "write"},
    {"grantee": ("role", "village_staff"), "ledger": "house", "field": "*", "level": "write"},
    {"grantee": ("role", "village_staff"), "ledger": "household", "field": "*", "level": "write"},
    # 区残联: the disability ledger and the person fields it owns, district-wide; IDs stay masked.
    {
        "grantee": ("org_unit", "dept:cl"),
        "ledger": "disability",
        "field": "*",
        "level": "write",
        "row_scope": "all",
    },
    {
        "grantee": ("org_unit", "dept:cl"),
        "ledger": "disability",
        "field": "certificate_number",
        "level": "masked",
        "allow_lookup": True,
        "row_scope": "all",
    },
    {
        "grantee": ("org_unit", "dept:cl"),
        "ledger": "person",
        "field": "is_disabled",
        "level": "read",
        "row_scope": "all",
    },
    {
        "grantee": ("org_unit", "dept:cl"),
        "ledger": "person",
        "field": "disability_level",
        "level": "read",
        "row_scope": "all",
    },
    {
        "grantee": ("org_unit", "dept:cl"),
        "ledger": "person",
        "field": "id_number",
        "level": "masked",
        "allow_lookup": True,
        "row_scope": "all",
    },
    # 区民政局: low-income households and the person flags it owns.
    {
        "grantee": ("org_unit", "dept:mzj"),
        "ledger": "low_income",
        "field": "*",
        "level": "write",
        "row_scope": "all",
    },
    {
        "grantee": ("org_unit", "dept:mzj"),
        "ledger": "person",
        "field": "low_income_status",
        "level": "read",
        "row_scope": "all",
    },
    # 低保 is granted per household (户): its register, and the size and safety of the house it lives in.
    {
        "grantee": ("org_unit", "dept:mzj"),
        "ledger": "household",
        "field": "*",
        "level": "read",
        "row_scope": "all",
    },
    *[
        {
            "grantee": ("org_unit", "dept:mzj"),
            "ledger": "house",
            "field": f,
            "level": "read",
            "row_scope": "all",
        }
        for f in ("floor_area", "structure", "built_year", "is_dangerous")
    ],
    # 区农业农村委: land parcels and transfers.
    {
        "grantee": ("org_unit", "dept:nyncw"),
        "ledger": "land",
        "field": "*",
        "level": "write",
        "row_scope": "all",
    },
    # Another system (the demo service account): public person fields and masked IDs, district-wide.
    # Its birth_date grant is capped to the year by the masked ID (derived_from), as /access/effective shows.
    *[
        {
            "grantee": ("service_account", "demo-system"),
            "ledger": "person",
            "field": f,
            "level": "read",
            "row_scope": "all",
        }
        for f in ("name", "sex", "birth_date", "ethnicity", "household_type")
    ],
    {
        "grantee": ("service_account", "demo-system"),
        "ledger": "person",
        "field": "id_number",
        "level": "masked",
        "row_scope": "all",
    },
]


def seed_demo_grants(conn: psycopg.Connection) -> int:
    conn.execute("DELETE FROM access_grant WHERE created_by = 'demo'")  # reloadable: replace, don't pile up
    units: dict[str, int] = dict(conn.execute("SELECT code, id FROM org_unit").fetchall())
    accounts: dict[str, int] = dict(conn.execute("SELECT name, id FROM service_account").fetchall())
    rows = []
    for g in DEMO_GRANTS:
        kind, who = g["grantee"]
        rows.append(
            (
                kind,
                who if kind == "role" else None,
                units.get(who) if kind == "org_unit" else None,
                accounts.get(who) if kind == "service_account" else None,
                g["ledger"],
                g["field"],
                g["level"],
                g.get("allow_lookup", False),
                g.get("row_scope", "own"),
                "demo",
            )
        )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO access_grant (grantee_type, role, org_unit_id, service_account_id, ledger, field, level,"
            " allow_lookup, row_scope, regions, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, '{}', %s)",
            rows,
        )
    return len(rows)
