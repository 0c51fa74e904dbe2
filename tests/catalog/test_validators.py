"""Tests for app.catalog.validators: property tests over generated keys plus real-world samples."""

from __future__ import annotations

import pickle
from datetime import date, datetime, timedelta

import pytest
from hypothesis import assume, given, strategies as st

from app.catalog.validators import (
    PROVINCES,
    USCC_ALPHABET,
    IdCardInfo,
    ValueIssue,
    check_division_code,
    check_id_card,
    check_id_card_consistent,
    check_parcel_code,
    check_phone,
    check_range,
    check_regex,
    check_uscc,
    id_card_check_char,
    make_id_card,
    make_uscc,
    normalize_code,
    normalize_text,
    parse_bool,
    parse_date,
    uscc_check_char,
)

TODAY = date.today()
FULL_WIDTH = str.maketrans("0123456789Xx-", "０１２３４５６７８９Ｘｘ－")

provinces = st.sampled_from(sorted(PROVINCES))
digits = lambda n: st.text("0123456789", min_size=n, max_size=n)  # noqa: E731
division6 = st.builds(str.__add__, provinces, digits(4))
births = st.dates(min_value=date(1880, 1, 1), max_value=TODAY)
sexes = st.sampled_from(["1", "2"])
id_cards = st.builds(make_id_card, division6, births, st.integers(0, 999), sexes)
usccs = st.builds(
    make_uscc,
    digits(6),
    st.integers(0, 10**8 - 1),
    st.sampled_from("123456789ANY"),
    st.sampled_from(USCC_ALPHABET),
)


def issue(fn, *args) -> ValueIssue:
    with pytest.raises(ValueIssue) as exc:
        fn(*args)
    return exc.value


# --- normalisation -------------------------------------------------------------------------------


def test_normalize_text_full_width_spaces_and_zero_width():
    assert normalize_text("\u3000 ＡＢＣ\u200b１２３  \t 张\u3000三\ufeff ") == "ABC123 张 三"


def test_normalize_code_removes_spaces_and_uppercases():
    assert normalize_code(" 1101 0519 4912 3100 2x ") == "11010519491231002X"


@given(st.text())
def test_normalize_text_is_idempotent_and_trimmed(s):
    once = normalize_text(s)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once


def test_value_issue_carries_code_and_pickles():
    e = pickle.loads(pickle.dumps(ValueIssue("x.y", "消息")))
    assert (e.code, e.message, str(e)) == ("x.y", "消息", "x.y: 消息")


# --- ID number -----------------------------------------------------------------------------------


def test_gb11643_example_is_valid():
    info = check_id_card("11010519491231002X")
    assert info == IdCardInfo("11010519491231002X", date(1949, 12, 31), "2", "110105")
    assert id_card_check_char("11010519491231002") == "X"


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002x",
        "１１０１０５１９４９１２３１００２Ｘ",
        " 110105 19491231 002x\u3000",
        "\u200b11010519491231002ｘ",
    ],
)
def test_id_card_normalises_full_width_lowercase_and_spaces(raw):
    assert check_id_card(raw).number == "11010519491231002X"


@given(division6, births, st.integers(0, 999), sexes)
def test_generated_id_cards_pass_and_round_trip(div, birth, seq, sex):
    number = make_id_card(div, birth, seq, sex)
    info = check_id_card(number)
    assert (info.number, info.birth_date, info.sex, info.division) == (number, birth, sex, div)
    assert int(number[16]) % 2 == (1 if sex == "1" else 0)
    check_id_card_consistent(info, birth, sex)  # agrees with itself


@given(id_cards, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_char_change_is_detected(number, pos, char):
    assume(char != number[pos] and (char != "X" or pos == 17))
    mutated = number[:pos] + char + number[pos + 1 :]
    code = issue(check_id_card, mutated).code
    if pos < 2:
        assert code in {"id_card.region", "id_card.checksum"}
    elif 6 <= pos < 14:
        assert code in {"id_card.birth_date", "id_card.checksum"}
    else:
        assert code == "id_card.checksum"


@given(id_cards)
def test_id_card_messages_never_echo_the_number(number):
    bad = number[:17] + ("0" if number[17] != "0" else "1")
    e = issue(check_id_card, bad)
    assert number[:6] not in e.message and number[6:14] not in e.message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("1101051949123100", "id_card.length"),
        ("110105194912310021X", "id_card.length"),
        ("110105194912310021", "id_card.checksum"),
        ("11010519491231002Y", "id_card.format"),
        ("1101051949123I002X", "id_card.format"),
        (make_id_card("990105", date(1990, 1, 1), 1, "1"), "id_card.region"),
        (make_id_card("000000", date(1990, 1, 1), 1, "1"), "id_card.region"),
        ("11010519490231" + "001" + id_card_check_char("11010519490231001"), "id_card.birth_date"),
        (make_id_card("110105", date(1879, 12, 31), 1, "1"), "id_card.birth_date"),
        (make_id_card("110105", TODAY + timedelta(days=1), 1, "1"), "id_card.birth_date"),
    ],
)
def test_id_card_rejections(raw, code):
    assert issue(check_id_card, raw).code == code


def test_foreigners_permanent_residence_card_and_residence_permits():
    # 2023 foreigners' card: leading 9, then the accepting province (11 Beijing); same MOD 11-2.
    assert check_id_card(make_id_card("911840", date(1985, 6, 1), 12, "2")).sex == "2"
    assert issue(check_id_card, make_id_card("990840", date(1985, 6, 1), 12, "2")).code == ("id_card.region")
    assert check_id_card(make_id_card("830000", date(2000, 1, 1), 5, "1")).division == "830000"


def test_id_card_consistency_with_record():
    info = check_id_card(make_id_card("500118", date(1960, 5, 4), 30, "1"))
    check_id_card_consistent(info, date(1960, 5, 4), "1")
    check_id_card_consistent(info, datetime(1960, 5, 4, 0, 0), "男")
    check_id_card_consistent(info, None, None)
    for unknown in ("0", "9"):
        check_id_card_consistent(info, None, unknown)
    assert issue(check_id_card_consistent, info, date(1960, 5, 5), "1").code == ("id_card.birth_mismatch")
    assert issue(check_id_card_consistent, info, None, "2").code == "id_card.sex_mismatch"
    assert issue(check_id_card_consistent, info, None, "女").code == "id_card.sex_mismatch"


def test_make_id_card_rejects_bad_arguments():
    for args in (
        ("50011", date(1990, 1, 1), 1, "1"),
        ("500118", date(1990, 1, 1), 1000, "1"),
        ("500118", date(1990, 1, 1), 1, "12"),
        ("500118", date(1990, 1, 1), 1, ""),
    ):
        with pytest.raises(ValueError):
            make_id_card(*args)


# --- USCC ----------------------------------------------------------------------------------------


def test_real_uscc_is_valid_and_normalised():
    assert check_uscc("91350100M000100Y43") == check_uscc(" ９１３５０１００ｍ０００１００ｙ４３ ")
    assert check_uscc("91350100m000100y43").checksum_ok
    assert uscc_check_char("91350100M000100Y4") == "3"


@given(usccs)
def test_generated_usccs_pass_with_checksum_ok(code):
    assert check_uscc(code).checksum_ok
    assert check_uscc(code.lower()).code == code


@given(usccs, st.sampled_from(USCC_ALPHABET))
def test_wrong_check_char_is_flagged_not_rejected(code, char):
    assume(char != code[17])
    result = check_uscc(code[:17] + char)
    assert result.code == code[:17] + char and result.checksum_ok is False


@given(usccs, st.integers(0, 16), st.sampled_from(USCC_ALPHABET))
def test_any_body_change_breaks_checksum_or_format(code, pos, char):
    assume(char != code[pos])
    mutated = code[:pos] + char + code[pos + 1 :]
    try:
        assert check_uscc(mutated).checksum_ok is False
    except ValueIssue as e:  # department or division part now malformed
        assert e.code == "uscc.format" and (pos == 0 or 2 <= pos < 8)


@given(usccs, st.integers(0, 17), st.sampled_from("IOZSV"))
def test_excluded_letters_are_rejected(code, pos, char):
    assert issue(check_uscc, code[:pos] + char + code[pos + 1 :]).code == "uscc.format"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("91350100M000100Y4", "uscc.length"),
        ("91350100M000100Y433", "uscc.length"),
        ("B1350100M000100Y43", "uscc.format"),  # B is no registration department
        ("913501A0M000100Y43", "uscc.format"),  # division part must be digits
        ("91350100M000100Y4#", "uscc.format"),
    ],
)
def test_uscc_rejections(raw, code):
    assert issue(check_uscc, raw).code == code


# --- division codes ------------------------------------------------------------------------------


def _nz(n: int):
    return digits(n).filter(lambda s: set(s) != {"0"})


_DEPTHS = st.integers(1, 6)


@st.composite
def division_codes(draw, depths=_DEPTHS) -> str:
    """A structurally valid code: `depth` non-zero levels then zeros; depth 6 is a 15-digit grid."""
    parts = [draw(provinces), draw(_nz(2)), draw(_nz(2)), draw(_nz(3)), draw(_nz(3)), draw(_nz(3))]
    depth = draw(depths)
    if depth == 6:
        return "".join(parts)
    return "".join(p if i < depth else "0" * len(p) for i, p in enumerate(parts[:5]))


@given(division_codes())
def test_valid_division_codes_pass(code):
    assert check_division_code(" ".join(code[i : i + 3] for i in range(0, len(code), 3))) == code


@given(division_codes(depths=st.integers(1, 3)), _nz(3))
def test_nonzero_level_below_a_zero_level_is_rejected(code, village):
    # Levels above the village stop early, yet a village number is set.
    assert issue(check_division_code, code[:9] + village).code == "division_code.structure"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("50011810100", "division_code.format"),
        ("5001181010011", "division_code.format"),
        ("50011810100A", "division_code.format"),
        ("990118101001", "division_code.structure"),
        ("500100101001", "division_code.structure"),  # county 00 under a non-zero township
        ("500118101000001", "division_code.structure"),  # a grid needs a village
        ("500118101001000", "division_code.structure"),  # and a non-zero grid number
    ],
)
def test_division_code_rejections(raw, code):
    assert issue(check_division_code, raw).code == code


def test_real_division_codes():
    assert check_division_code("500118101001") == "500118101001"
    assert check_division_code("500118000000".translate(FULL_WIDTH)) == "500118000000"
    assert check_division_code("500118101001002") == "500118101001002"


# --- phone ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("138-1234-5678", "13812345678"),
        ("+86 138 1234 5678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("8613812345678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("023-49812345", "023-49812345"),
        ("02349812345", "023-49812345"),
        ("(023)4981-2345", "023-49812345"),
        ("+86 23 4981 2345", "023-49812345"),
        ("010-62345678", "010-62345678"),
        ("0851-8123456", "0851-8123456"),
        ("08518123456", "0851-8123456"),
    ],
)
def test_phone_accepts(raw, expected):
    assert check_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "12812345678",
        "1381234567",
        "138123456789",
        "49812345",
        "023-4981234",
        "023-09812345",
        "0851-812345",
        "010-1234567",
        "+1 138 1234 5678",
        "8623",
        "138-1234-567a",
        "",
    ],
)
def test_phone_rejects(raw):
    assert issue(check_phone, raw).code == "phone.format"


@given(
    st.sampled_from("3456789"),
    digits(9),
    st.sampled_from(["", "+86", "0086", "86", "+86 "]),
    st.sampled_from(["", "-", " "]),
)
def test_mobile_round_trips_with_prefixes_and_separators(second, rest, prefix, sep):
    number = "1" + second + rest
    assert check_phone(prefix + sep.join([number[:3], number[3:7], number[7:]])) == number


# --- parcel code ---------------------------------------------------------------------------------


def test_parcel_code_accepts_and_normalises():
    assert check_parcel_code("500118 003005 jc 00012") == "500118003005JC00012"
    assert check_parcel_code("５００１１８００３００５ＧＢ０００１２") == "500118003005GB00012"


@pytest.mark.parametrize(
    "raw",
    [
        "500118003005JC0001",
        "500118003005JC000123",
        "500118003005AC00012",
        "500118003005JI00012",
        "50011800300AJC00012",
        "990118003005JC00012",
        "500118003005J100012",
    ],
)
def test_parcel_code_rejects(raw):
    assert issue(check_parcel_code, raw).code == "parcel_code.format"


# --- dates ---------------------------------------------------------------------------------------

any_dates = st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31))
FORMATS = [
    lambda d: d.isoformat(),
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year}.{d.month}.{d.day}",
    lambda d: f"{d:%Y%m%d}",
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d:%Y}年{d:%m}月{d:%d}号",
    lambda d: f"{d.isoformat()} 00:00:00",
    lambda d: f"{d:%Y/%m/%d} 13:45",
    lambda d: f"{d.isoformat()}T08:30:00",
    lambda d: d.isoformat().translate(FULL_WIDTH),
    lambda d: f"{d.year}年{d.month}月{d.day}日".translate(FULL_WIDTH),
    lambda d: d,
    lambda d: datetime(d.year, d.month, d.day, 17, 5),
]


@given(any_dates, st.sampled_from(range(len(FORMATS))))
def test_parse_date_round_trips_every_format(d, fmt):
    assert parse_date(FORMATS[fmt](d)) == d


@given(st.integers(61, 2958465), st.floats(0, 0.999))
def test_excel_serials_after_the_1900_leap_bug(serial, frac):
    expected = (datetime(1899, 12, 30) + timedelta(days=serial)).date()
    assert parse_date(serial) == expected
    assert parse_date(serial + frac) == expected


def test_excel_serial_edges():
    assert parse_date(1) == date(1900, 1, 1)
    assert parse_date(59) == date(1900, 2, 28)
    assert parse_date(61) == date(1900, 3, 1)
    assert parse_date(45356) == date(2024, 3, 5)
    assert parse_date(2958465) == date(9999, 12, 31)
    assert issue(parse_date, 60).code == "date.invalid"
    for bad in (0, -1, 2958466, float("nan"), float("inf"), True):
        assert issue(parse_date, bad).code == "date.format"


@pytest.mark.parametrize("raw", ["2023-02-29", "2024-13-01", "2024/4/31", "20230229", "2024年2月30日"])
def test_impossible_dates(raw):
    assert issue(parse_date, raw).code == "date.invalid"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "2024",
        "2024-3/5",
        "24-03-05",
        "03/05/2024",
        "2024-03-05 25:00",
        "明天",
        "45356",
        None,
        [2024, 3, 5],
    ],
)
def test_unrecognised_dates(raw):
    assert issue(parse_date, raw).code == "date.format"


# --- booleans, regex, range ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [True, 1, 1.0, "是", "有", "Y", "y", "yes", "TRUE", "√", " 是 ", "１"])
def test_parse_bool_true(raw):
    assert parse_bool(raw) is True


@pytest.mark.parametrize("raw", [False, 0, 0.0, "否", "无", "N", "no", "false", "×", "0"])
def test_parse_bool_false(raw):
    assert parse_bool(raw) is False


@pytest.mark.parametrize("raw", ["", "maybe", "2", 2, 0.5, None, "是否"])
def test_parse_bool_rejects(raw):
    assert issue(parse_bool, raw).code == "boolean.format"


def test_check_regex_normalises_then_fullmatches():
    assert check_regex(" ＡＢ-１２ ", r"[A-Z]{2}-\d{2}") == "AB-12"
    assert issue(check_regex, "AB-123", r"[A-Z]{2}-\d{2}").code == "regex.mismatch"


def test_check_range_is_inclusive():
    check_range(0, 0, 10)
    check_range(10, 0, 10)
    check_range(5, None, None)
    assert issue(check_range, -0.01, 0, 10).code == "range.below"
    check_range(10**9, 0, None)
    assert issue(check_range, 11, None, 10).code == "range.above"
    assert issue(check_range, float("nan"), 0, 10).code == "range.below"
