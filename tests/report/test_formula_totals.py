"""Totals and merged rows recompute formulas in Python (Decimal): a result wider than the decimal
context (28 digits) must not turn the aggregate into a 500."""

from __future__ import annotations

import pytest

from tests.report.test_workflow import T, ok

WIDE = {
    "code": "wide", "name": "大数公式", "kind": "aggregate", "ledger": "person",
    "rows": {"by": "code", "path": "sex"},
    "columns": [
        {"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"},
        {"kind": "formula", "code": "big", "label": "大数", "expr": "n * 1000000000000000000000000000000"},
    ],
}


async def test_aggregate_total_of_a_formula_past_decimal_precision_is_not_a_server_error(client, world, people):
    tpl = await ok(await client.post(T, json=WIDE, headers=world.dept), 201)
    assert (await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept)))["state"] == "approved"
    data = await ok(await client.get(f"{T}/{tpl['id']}/aggregate", headers=world.dept))
    # Six persons: each row's value comes from SQL, the total (and merged rows) from Python.
    assert data["total"]["cells"]["n"] == 6
    assert data["total"]["cells"]["big"] == pytest.approx(6e30)
    for fmt in ("csv", "xlsx"):
        r = await client.get(f"{T}/{tpl['id']}/aggregate", params={"format": fmt}, headers=world.dept)
        assert r.status_code == 200, r.text
