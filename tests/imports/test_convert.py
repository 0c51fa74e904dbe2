"""Cell conversion: acceptance C1-2, the legacy formats township sheets hold, and properties of the
ID upgrade and date parsing."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from app.catalog.validators import check_id_card, id_15_to_18, make_id_card
from app.imports.convert import CellIssue, convert_row, parse_legacy_date
from app.imports.mapping import ColumnMap, propose_mapping
from app.imports.reading import RawRow, read_table
from app.imports.sample import write_xlsx

HEADERS = [
    "姓名",
    "性别",
    "身份证号码",
    "出生日期",
    "联系电话",
    "与户主关系",
    "民族",
    "死亡日期",
    "是否退役军人",
]
MAP = propose_mapping("person", HEADERS)


def row(row_no: int = 7, **cells: str | None) -> RawRow:
    by_header = {
        "姓名": cells.get("name", "张三"),
        "性别": cells.get("sex"),
        "身份证号码": cells.get("id"),
        "出生日期": cells.get("birth"),
        "联系电话": cells.get("phone"),
        "与户主关系": cells.get("relation"),
        "民族": cells.get("ethnicity"),
        "死亡日期": cells.get("death"),
        "是否退役军人": cells.get("veteran"),
    }
    return RawRow(row_no, tuple(by_header[h] for h in HEADERS))


def codes(issues: list[CellIssue]) -> list[tuple[str, str]]:
    return [(i.code, i.severity) for i in issues]


# --- C1-2 --------------------------------------------------------


def test_c1_2_fifteen_digit_id_becomes_eighteen() -> None:
    values, issues = convert_row("person", MAP, row(id="110105491231002"))
    assert values["id_number"] == "11010519491231002X"
    assert codes(issues) == [("id_card.upgraded_15", "warning")]


def test_c1_2_wrong_check_digit_is_a_row_error_naming_row_column_reason() -> None:
    values, issues = convert_row("person", MAP, row(row_no=12, id="110105194912310022"))
    assert "id_number" not in values
    [issue] = issues
    assert (issue.row_no, issue.column, issue.field, issue.code, issue.severity) == (
        12,
        "身份证号码",
        "id_number",
        "id_card.checksum",
        "error",
    )
    assert "第12行" in issue.message and "身份证号码" in issue.message and "校验位" in issue.message
    assert issue.raw == "110105194912310022"


def test_c1_2_full_width_id_is_normalised() -> None:
    values, issues = convert_row("person", MAP, row(id="１１０１０５１９４９１２３１００２Ｘ"))
    assert values["id_number"] == "11010519491231002X" and issues == []
    values, _ = convert_row("person", MAP, row(id=" 11010519491231002x "))
    assert values["id_number"] == "11010519491231002X"


def test_c1_2_excel_serial_in_a_date_column() -> None:
    values, issues = convert_row("person", MAP, row(birth="45292", death="45292"))
    assert values["birth_date"] == date(2024, 1, 1) == values["death_date"]
    assert issues == []


def test_c1_2_sex_contradicting_the_id_is_a_warning() -> None:
    # 17th digit 2: even, a woman
    values, issues = convert_row("person", MAP, row(id="11010519491231002X", sex="男"))
    assert values["sex"] == "1" and values["id_number"] == "11010519491231002X"
    assert codes(issues) == [("id_card.sex_mismatch", "warning")]
    assert issues[0].column == "性别"
    values, issues = convert_row("person", MAP, row(id="11010519491231002X", sex="女"))
    assert values["sex"] == "2" and issues == []


def test_id_kept_as_a_number_by_excel_lost_its_digits() -> None:
    _, issues = convert_row("person", MAP, row(id="1.10105194912310e+17"))
    assert codes(issues) == [("id_card.precision_lost", "error")]


# --- other legacy forms ------------------------------------------


@pytest.mark.parametrize(
    "text, expected, month_only",
    [
        ("1974.02", date(1974, 2, 1), True),
        ("1974年2月", date(1974, 2, 1), True),
        ("197402", date(1974, 2, 1), True),
        ("1974-2-3", date(1974, 2, 3), False),
        ("1974.2.3", date(1974, 2, 3), False),
        ("1974/02/03", date(1974, 2, 3), False),
        ("2024年1月5日", date(2024, 1, 5), False),
        ("2024年1月5号", date(2024, 1, 5), False),
        ("20240105", date(2024, 1, 5), False),
        ("45292", date(2024, 1, 1), False),
        ("２０２４－０１－０５", date(2024, 1, 5), False),
        ("2024-01-05 00:00:00", date(2024, 1, 5), False),
    ],
)
def test_legacy_dates(text: str, expected: date, month_only: bool) -> None:
    assert parse_legacy_date(text) == (expected, not month_only)


@pytest.mark.parametrize(
    "text, code",
    [
        ("1974", "date.year_only"),
        ("2024-02-30", "date.invalid"),
        ("1974.13", "date.invalid"),
        ("去年", "date.format"),
    ],
)
def test_bad_dates(text: str, code: str) -> None:
    _, issues = convert_row("person", MAP, row(death=text))
    assert codes(issues) == [(code, "error")]


def test_month_only_birth_date_takes_the_day_from_an_agreeing_id() -> None:
    values, issues = convert_row("person", MAP, row(id="11010519491231002X", birth="1949.12"))
    assert values["birth_date"] == date(1949, 12, 31) and issues == []
    values, issues = convert_row("person", MAP, row(id="11010519491231002X", birth="1950.01"))
    assert values["birth_date"] == date(1950, 1, 1)
    assert codes(issues) == [("date.day_missing", "warning")]


def test_birth_date_contradicting_the_id_is_a_warning() -> None:
    values, issues = convert_row("person", MAP, row(id="11010519491231002X", birth="1949-12-30"))
    assert values["birth_date"] == date(1949, 12, 30)
    assert codes(issues) == [("id_card.birth_mismatch", "warning")]


@pytest.mark.parametrize("text", ["无", "/", "-", "——", "暂无", "－"])
def test_placeholders_are_empty_with_a_warning(text: str) -> None:
    values, issues = convert_row("person", MAP, row(phone=text))
    assert "phone" not in values
    assert codes(issues) == [("import.placeholder_empty", "warning")]
    assert text in issues[0].message


def test_boolean_no_is_false_not_empty() -> None:
    values, issues = convert_row("person", MAP, row(veteran="无"))
    assert values["is_veteran"] is False and issues == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("138 1234 5678", "13812345678"),
        ("+86 13812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("023-49812345", "023-49812345"),
        ("13812345678、13987654321", "13812345678"),
    ],
)
def test_phones_cleaned(text: str, expected: str) -> None:
    values, _ = convert_row("person", MAP, row(phone=text))
    assert values["phone"] == expected


def test_bad_phone_is_an_error() -> None:
    _, issues = convert_row("person", MAP, row(phone="12345"))
    assert codes(issues) == [("phone.format", "error")]


@pytest.mark.parametrize(
    "field, text, expected",
    [
        ("sex", "男", "1"),
        ("sex", "女", "2"),
        ("sex", "1", "1"),
        ("sex", "2", "2"),
        ("sex", "男性", "1"),
        ("relation", "户主", "01"),
        ("relation", "配偶", "02"),
        ("relation", "妻", "02"),
        ("relation", "儿子", "10"),
        ("relation", "女儿", "20"),
        ("relation", "孙女", "30"),
        ("relation", "母亲", "50"),
        ("relation", "1", "01"),
        ("ethnicity", "汉族", "01"),
        ("ethnicity", "汉", "01"),
        ("ethnicity", "01", "01"),
        ("ethnicity", "1", "01"),
    ],
)
def test_code_lists_by_label(field: str, text: str, expected: str) -> None:
    values, issues = convert_row("person", MAP, row(**{field: text}))
    path = {"sex": "sex", "relation": "household.@relation_to_head", "ethnicity": "ethnicity"}[field]
    assert values[path] == expected and issues == []


def test_unknown_code_label_is_an_error() -> None:
    _, issues = convert_row("person", MAP, row(relation="邻居"))
    assert codes(issues) == [("code.unknown", "error")]
    assert "与户主关系" in issues[0].message


def test_numbers_with_commas_wan_and_units() -> None:
    mapping = propose_mapping("house", ["建筑面积（平方米）", "建成年份"])
    assert [m.field for m in mapping] == ["floor_area", "built_year"]
    for text, expected in (
        ("1,234.5", Decimal("1234.50")),
        ("1.2万", Decimal("12000.00")),
        ("86.5平方米", Decimal("86.50")),
    ):
        values, _ = convert_row("house", mapping, RawRow(3, (text, "1998年")))
        assert values["floor_area"] == expected and values["built_year"] == 1998


def test_names_typed_with_spaces() -> None:
    values, _ = convert_row("person", MAP, row(name="张  三"))
    assert values["name"] == "张三"
    values, _ = convert_row("person", MAP, row(name="阿依古丽·买买提"))
    assert values["name"] == "阿依古丽·买买提"


def test_unmapped_columns_are_not_converted() -> None:
    mapping = [ColumnMap(0, "序号", None, "unknown"), ColumnMap(1, "身份证号码", "id_number", "alias")]
    values, issues = convert_row("person", mapping, RawRow(2, ("x", "11010519491231002X")))
    assert values == {"id_number": "11010519491231002X"} and issues == []


def test_short_rows_and_household_number() -> None:
    mapping = propose_mapping("person", ["户号", "姓名", "身份证号码"])
    values, issues = convert_row("person", mapping, RawRow(2, ("23",)))
    assert values == {"household.household_no": "23"} and issues == []
    values, _ = convert_row("person", mapping, RawRow(2, ("5001181012010023",)))
    assert values["household.household_no"] == "5001181012010023"


def test_the_generated_sheet_end_to_end(tmp_path: Path) -> None:
    p = tmp_path / "人口.xlsx"
    truth = write_xlsx(p, 2000, seed=5)
    t = read_table(p)
    mapping = propose_mapping("person", t.headers)
    counts: Counter[tuple[str, str]] = Counter()
    ids = []
    for r in t.rows:
        values, issues = convert_row("person", mapping, r)
        counts.update(codes(issues))
        if "id_number" in values:
            ids.append(values["id_number"])
            assert len(values["id_number"]) == 18
        assert isinstance(values.get("birth_date", date.today()), date)
    assert counts[("id_card.checksum", "error")] == truth.bad_checksums > 0
    assert counts[("id_card.upgraded_15", "warning")] >= truth.ids_15 > 0
    assert 0 < counts[("id_card.sex_mismatch", "warning")] <= truth.sex_contradictions
    assert counts[("import.placeholder_empty", "warning")] > 0
    assert not [c for c in counts if c[1] == "error" and c[0] != "id_card.checksum"]
    # duplicates with an ID repeat an earlier ID exactly once converted (15-digit or not)
    assert len(ids) - len(set(ids)) >= truth.duplicates_with_id * 0.9


# --- properties --------------------------------------------------

births_15 = st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31))
divisions = st.sampled_from(["110105", "500118", "510104", "440305", "650102"])


@given(births_15, divisions, st.integers(0, 999), st.sampled_from("12"))
def test_property_15_to_18_round_trip(birth: date, division: str, seq: int, sex: str) -> None:
    id18 = make_id_card(division, birth, seq, sex)
    id15 = id18[:6] + id18[8:17]
    assert id_15_to_18(id15) == id18
    values, issues = convert_row("person", MAP, row(id=id15))
    assert values["id_number"] == id18
    info = check_id_card(values["id_number"])
    assert info.birth_date == birth and info.sex == sex
    assert codes(issues) == [("id_card.upgraded_15", "warning")]


@given(st.text(alphabet="0123456789X", min_size=18, max_size=18))
def test_property_id_errors_never_crash_and_never_echo(text: str) -> None:
    values, issues = convert_row("person", MAP, row(id=text))
    assert ("id_number" in values) != any(i.severity == "error" for i in issues)
    assert all(text not in i.message for i in issues)


dates = st.dates(min_value=date(1927, 10, 18), max_value=date(2100, 12, 31))


@given(dates)
def test_property_date_forms_agree(d: date) -> None:
    forms = [
        f"{d.year}.{d.month}.{d.day}",
        f"{d.year}年{d.month}月{d.day}日",
        f"{d:%Y%m%d}",
        f"{d.year}-{d.month}-{d.day}",
        f"{d:%Y/%m/%d}",
        str((d - date(1899, 12, 30)).days),
    ]
    for text in forms:
        assert parse_legacy_date(text) == (d, True), text
    assert parse_legacy_date(f"{d.year}.{d.month:02d}") == (d.replace(day=1), False)


@given(st.integers(1, 2958465))
def test_property_serials_are_excel_days(n: int) -> None:
    if n == 60 or len(str(n)) not in (4, 5) or (len(str(n)) == 4 and 1880 <= n <= 2100):
        return
    d, _ = parse_legacy_date(str(n))
    epoch = date(1899, 12, 30) if n > 60 else date(1899, 12, 31)  # Excel's 1900-02-29
    expected = epoch + timedelta(days=n)
    assert d == expected


@given(
    st.one_of(
        st.text(alphabet="0123456789X", min_size=18, max_size=18),
        st.builds(
            make_id_card,
            divisions,
            st.dates(min_value=date(1880, 1, 1), max_value=date.today()),
            st.integers(0, 999),
            st.sampled_from("12"),
        ),
    )
)
def test_property_fast_id_path_agrees_with_check_id_card(text: str) -> None:
    from app.catalog.validators import ValueIssue
    from app.imports.convert import _plain_valid_id

    try:
        expected: str | None = check_id_card(text).number
    except ValueIssue:
        expected = None
    if _plain_valid_id(text):
        assert expected == text
    values, _ = convert_row("person", MAP, row(id=text))
    assert values.get("id_number") == expected
