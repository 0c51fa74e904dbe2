"""Report templates the demo district's departments keep, as a department would write them (the DSL of
docs/reports.md). The end-to-end test and scripts/bench/report_prefill.py build from the same body."""

from __future__ import annotations

# 区民政局, quarterly, per village: 低保 households (at least one member whose 低收入状况 is 城乡低保),
# the persons in them, the floor area of their houses counted once per house (two households may share
# one), houses needing repair, and 走访户数 typed by the township. "Needs repair" is house.is_dangerous
# until the house-safety grade comes into the catalogue through admission.
LOW_INCOME_HOUSING: dict = {
    "code": "dibao_housing",
    "name": "低保家庭住房安全情况",
    "kind": "aggregate",
    "ledger": "household",
    "period": "quarterly",
    "deadline": {"days_after_period_end": 10},
    "rows": {"by": "village"},
    # Households with a 低保 member: an exists filter over the one-to-many link household.members.
    "filter": [
        {
            "path": "members",
            "op": "exists",
            "where": [{"path": "low_income_status", "op": "eq", "value": "1"}],
        }
    ],
    "columns": [
        {"kind": "aggregate", "code": "households", "label": "低保户数", "fn": "count"},
        {"kind": "aggregate", "code": "persons", "label": "户内人数", "fn": "count", "path": "members.id"},
        # A link attribute: households whose head (relation to the head 01, 户主) is 低保 themselves.
        {
            "kind": "aggregate",
            "code": "head_low",
            "label": "其中户主为低保对象的户数",
            "fn": "count",
            "filter": [
                {
                    "path": "members",
                    "op": "exists",
                    "where": [
                        {"path": "@relation_to_head", "op": "eq", "value": "01"},
                        {"path": "low_income_status", "op": "eq", "value": "1"},
                    ],
                }
            ],
        },
        # Summed once per house, however many of the counted households live in it.
        {
            "kind": "aggregate",
            "code": "area",
            "label": "住房建筑面积合计（平方米）",
            "fn": "sum",
            "path": "house.floor_area",
        },
        {
            "kind": "aggregate",
            "code": "repair",
            "label": "需维修房屋数",
            "fn": "count_distinct",
            "path": "house.id",
            "filter": [{"path": "house.is_dangerous", "op": "eq", "value": True}],
        },
        {"kind": "gap", "code": "visited", "label": "走访户数", "type": "integer", "min": 0},
    ],
}
