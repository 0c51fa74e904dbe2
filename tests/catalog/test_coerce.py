"""Tests for app.catalog.coerce: what is normalised (typed values) and what is stored as typed (free text)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from app.catalog.coerce import clean_record, coerce, is_blank
from app.catalog.loader import get_catalog
from app.catalog.validators import ValueIssue

CAT = get_catalog()
HOUSE = CAT.ledger("house")
REMARK = HOUSE.field("remark")  # free text, max 500
EVENT_DESCRIPTION = CAT.ledger("event").field("description")  # free text, max 2000


@pytest.mark.parametrize(
    "typed",
    [
        "墙体开裂（已上报住建办）",
        "第一行：屋顶漏水；\n第二行：已联系村委会。",
        "门牌“３号”旁，Ａ栋　二单元",  # full-width digits, letters and U+3000 stay as the clerk typed them
        "数量：1,234 户 —— 约 56％",
        "行首空格保留在行内\r\n  缩进的第二行",
    ],
)
def test_item14_free_text_is_stored_as_typed(typed):
    assert coerce(REMARK, typed, CAT).value == typed
    assert coerce(REMARK, f"  {typed}\n", CAT).value == typed  # only the ends are trimmed


def test_item14_typed_fields_are_still_normalised():
    house_code = HOUSE.field("house_code")  # regex validator: a code, full-width digits become ASCII
    assert coerce(house_code, "５００１１８１０１２０１０００１２３", CAT).value == "500118101201000123"
    phone = CAT.ledger("person").field("phone")
    assert coerce(phone, "１３８　１２３４　５６７８", CAT).value == "13812345678"
    floor_area = HOUSE.field("floor_area")
    assert str(coerce(floor_area, "８８．５０", CAT).value) == "88.50"
    built_year = HOUSE.field("built_year")
    assert coerce(built_year, "１９９８", CAT).value == 1998
    since = CAT.relations["residence"].attributes[0]
    assert str(coerce(since, "２０２４年３月５日", CAT).value) == "2024-03-05"
    sex = CAT.ledger("person").field("sex")
    assert coerce(sex, "女", CAT).value == "2"


def test_item14_free_text_refuses_nul_and_keeps_max_length():
    with pytest.raises(ValueIssue) as e:
        coerce(REMARK, "a\x00b", CAT)
    assert e.value.code == "text.control"
    with pytest.raises(ValueIssue) as e:
        coerce(REMARK, "字" * 501, CAT)
    assert e.value.code == "text.too_long"
    assert coerce(REMARK, "字" * 500, CAT).value == "字" * 500


def test_item14_blank_free_text_is_no_value():
    out = clean_record(HOUSE.fields, {"remark": " \u3000\n "}, CAT, partial=True)
    assert out.values == {"remark": None} and not out.errors


ENDS = set("\u200b\u200c\u200d\u2060\ufeff\u00ad")


def _end(c: str) -> bool:
    return c.isspace() or c in ENDS


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200))
def test_item14_free_text_round_trips_up_to_its_ends(s):
    """Whatever is typed comes back unchanged but for whitespace / zero-width chars at its two ends."""
    if is_blank(s):
        assert clean_record(HOUSE.fields, {"remark": s}, CAT, partial=True).values == {"remark": None}
        return
    out = coerce(EVENT_DESCRIPTION, s, CAT).value
    i = s.index(out)
    assert out and not _end(out[0]) and not _end(out[-1])
    assert all(_end(c) for c in s[:i] + s[i + len(out) :])
