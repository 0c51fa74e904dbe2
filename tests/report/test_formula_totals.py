"""Totals and merged rows recompute formulas in Python (Decimal): a result wider than the decimal
context (28 digits) must not turn the aggregate into a 500."""

from __future__ import annotations

import pytest

from tests.report.test_workflow import T, ok

WIDE = {
    "code": "wide",
    "name": "大数公式",
    "kind": "aggregate",
    "ledger": "person",
    "rows": {"by": "code", "path": "sex"},
    "columns": [
        {"kind": "aggregate", "code": "n", "label": "人数", "fn": "count"},
        {"kind": "formula", "code": "big", "label": "大数", "expr": "n * 1000000000000000000000000000000"},
    ],
}


async def test_aggregate_total_of_a_formula_past_decimal_precision_is_not_a_server_error(
    client, world, people
):
    tpl = await ok(await client.post(T, json=WIDE, headers=world.dept), 201)
    assert (await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept)))["state"] == "approved"
    data = await ok(await client.get(f"{T}/{tpl['id']}/aggregate", headers=world.dept))
    # Six persons: each row's value comes from SQL, the total (and merged rows) from Python.
    assert data["total"]["cells"]["n"] == 6
    assert data["total"]["cells"]["big"] == pytest.approx(6e30)
    for fmt in ("csv", "xlsx"):
        r = await client.get(f"{T}/{tpl['id']}/aggregate", params={"format": fmt}, headers=world.dept)
        assert r.status_code == 200, r.text


CHAIN = {
    "code": "chain",
    "name": "三层公式",
    "kind": "aggregate",
    "ledger": "person",
    "rows": {"by": "code", "path": "sex"},
    # Declared against their order on purpose: d needs c needs b needs a (a 3-deep chain of formulas).
    "columns": [
        {"kind": "aggregate", "code": "a", "label": "人数", "fn": "count"},
        {"kind": "formula", "code": "d", "label": "丁", "expr": "c + 1000", "scale": 0},
        {"kind": "formula", "code": "c", "label": "丙", "expr": "b * 10", "scale": 0},
        {"kind": "formula", "code": "b", "label": "乙", "expr": "a + 1", "scale": 0},
        {"kind": "ratio", "code": "r", "label": "丁占比", "numerator": "a", "denominator": "d"},
    ],
}


async def test_three_deep_formula_chain_is_computed_in_every_total_column(client, world, people):
    tpl = await ok(await client.post(T, json=CHAIN, headers=world.dept), 201)
    assert (await ok(await client.post(f"{T}/{tpl['id']}/submit", headers=world.dept)))["state"] == "approved"
    data = await ok(await client.get(f"{T}/{tpl['id']}/aggregate", headers=world.dept))
    rows = {it["key"]: it["cells"] for it in data["items"]}
    # Per row (SQL): each value checked by hand from its count.
    for cells in rows.values():
        a = cells["a"]
        assert (cells["b"], cells["c"], cells["d"]) == (a + 1, (a + 1) * 10, (a + 1) * 10 + 1000)
    # 合计 (Python): six persons; every link of the chain is there, none left blank.
    total = data["total"]["cells"]
    assert total["a"] == 6
    assert (total["b"], total["c"], total["d"]) == (7, 70, 1070)
    assert total["r"] == pytest.approx(round(6 * 100 / 1070, 2))


def test_evaluation_order_puts_every_formula_after_its_operands_and_names_cycles():
    from app.query.formulas import evaluation_order

    got = evaluation_order({"d": {"c"}, "c": {"b", "x"}, "b": {"a"}, "r": {"a", "d"}})
    assert got.order.index("b") < got.order.index("c") < got.order.index("d") < got.order.index("r")
    assert got.cycles == []
    loop = evaluation_order({"p": {"q"}, "q": {"p"}, "s": {"s"}, "t": {"p"}, "u": {"a"}})
    assert loop.order == ["u"]
    assert loop.cycles == ["p", "q", "s"]  # on a cycle; t only depends on one and is left out of order
    assert loop.blocked == ["t"]
