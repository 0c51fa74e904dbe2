"""Turn a raw input value (JSON, query string or Excel cell) into the typed value a field stores.

Shared by the records API, Excel imports and report gap cells, so a value is judged the same way
wherever it is typed.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from app.catalog import validators as v
from app.catalog.model import Catalog, Field, FieldType
from app.catalog.validators import ValueIssue

CHINA = ZoneInfo("Asia/Shanghai")


@dataclass
class Coerced:
    value: object
    flag: str | None = None  # a warning kept on the record, e.g. "checksum" for an old USCC


def _raw_text(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float, Decimal)):
        raise ValueIssue("text.type", "应为文本")
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # Excel hands "123" typed as a number back as 123.0
    s = str(raw)
    if "\x00" in s:  # PostgreSQL text cannot hold NUL: refuse it here rather than fail the statement
        raise ValueIssue("text.control", "不能包含控制字符")
    return s


def _text(raw: object) -> str:
    """Text that is a typed value (codes, identifiers, numbers): NFKC, trimmed, spaces collapsed."""
    return v.normalize_text(_raw_text(raw))


def is_free_text(f: Field) -> bool:
    """Free text (names, addresses, remarks) is stored as typed; a validator or a unique key makes a
    text field an identifier, normalised so that full-width and half-width forms are one value."""
    return f.type == FieldType.text and f.validator is None and not f.unique


def _number(raw: object) -> Decimal:
    if isinstance(raw, bool):
        raise ValueIssue("number.type", "应为数字")
    if isinstance(raw, numbers.Real):
        d = Decimal(str(raw))
        if not d.is_finite():  # inf / nan from a spreadsheet cell or a lenient JSON parser
            raise ValueIssue("number.format", "应为数字")
        return d
    if isinstance(raw, str):
        s = v.normalize_text(raw).replace(",", "").replace(" ", "")
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise ValueIssue("number.format", "应为数字") from None
        if not d.is_finite():
            raise ValueIssue("number.format", "应为数字")
        return d
    raise ValueIssue("number.type", "应为数字")


def coerce(f: Field, raw: object, catalog: Catalog) -> Coerced:
    """Raise ValueIssue for a bad value; None / "" mean "no value" and are handled by the caller."""
    match f.type:
        case FieldType.text:
            s = v.trim_text(_raw_text(raw)) if is_free_text(f) else _text(raw)
            flag = None
            validator = f.validator
            kind = validator.kind if validator else None
            if kind == "id_card":
                s = v.check_id_card(s).number
            elif kind == "uscc":
                res = v.check_uscc(s)
                s, flag = res.code, (None if res.checksum_ok else "checksum")
            elif kind == "division_code":
                s = v.check_division_code(s)
            elif kind == "phone":
                s = v.check_phone(s)
            elif kind == "parcel_code":
                s = v.check_parcel_code(s)
            elif kind == "regex":
                s = v.check_regex(s, validator.pattern or "" if validator else "")
            elif kind == "pattern":  # user-supplied (report gap column): RE2
                s = v.check_pattern(s, validator.pattern or "" if validator else "")
            if f.max_length and len(s) > f.max_length:
                raise ValueIssue("text.too_long", f"长度不得超过 {f.max_length} 个字符")
            return Coerced(s, flag)
        case FieldType.integer:
            d = _number(raw)
            if not -(2**31) <= d < 2**31:  # before int(): int(Decimal("1e999999999")) would never end
                raise ValueIssue("range.above", "数值超出范围")
            if d != d.to_integral_value():
                raise ValueIssue("integer.format", "应为整数")
            n = int(d)
            _range(f, n)
            return Coerced(n)
        case FieldType.decimal:
            d = _number(raw)
            # Range first: quantize raises on 1e400 (more digits than the decimal context holds).
            if abs(d) >= Decimal(10) ** (f.precision - f.scale):
                raise ValueIssue("range.above", "数值超出范围")
            q = Decimal(1).scaleb(-f.scale)
            if d != d.quantize(q):
                raise ValueIssue("decimal.scale", f"最多保留 {f.scale} 位小数")
            _range(f, d)
            return Coerced(d)
        case FieldType.date:
            day = v.parse_date(raw)
            if f.validator and f.validator.kind == "range":
                _range(f, day.year)
            return Coerced(day)
        case FieldType.datetime:
            if isinstance(raw, datetime):
                dt = raw
            elif isinstance(raw, str):
                try:
                    dt = datetime.fromisoformat(v.normalize_text(raw).replace(" ", "T", 1))
                except ValueError:
                    dt = datetime.combine(v.parse_date(raw), datetime.min.time())
            else:
                dt = datetime.combine(v.parse_date(raw), datetime.min.time())
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=CHINA)  # township sheets write Beijing time
            return Coerced(dt)
        case FieldType.boolean:
            return Coerced(v.parse_bool(raw))
        case FieldType.code:
            s = _text(raw)
            assert f.codelist is not None  # a code field names its code list (catalogue check)
            values = catalog.codelists[f.codelist].values
            if s in values:
                return Coerced(s)
            by_label = {label: code for code, label in values.items()}
            if s in by_label:  # clerks type 女, not 2
                return Coerced(by_label[s])
            raise ValueIssue("code.unknown", f"不在代码表“{catalog.codelists[f.codelist].label}”中")
        case FieldType.reference:
            d = _number(raw)
            if d != d.to_integral_value() or not 0 < d < 2**63:
                raise ValueIssue("reference.format", "应为记录编号")
            return Coerced(int(d))
    raise ValueIssue("type.unknown", "未知的数据类型")


def _range(f: Field, value) -> None:
    if f.validator and f.validator.kind == "range":
        v.check_range(float(value), f.validator.min, f.validator.max)


def is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and v.normalize_text(raw) == "")


@dataclass
class CleanRecord:
    values: dict[str, object] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (field, code, message)


def clean_record(
    ledger_fields: tuple[Field, ...],
    data: dict,
    catalog: Catalog,
    *,
    partial: bool,
    current: dict | None = None,
) -> CleanRecord:
    """Coerce every given field, derive what the ID number implies, then check required ones (on create)."""
    out = CleanRecord()
    by_code = {f.code: f for f in ledger_fields}
    for code, raw in data.items():
        f = by_code.get(code)
        if f is None:
            out.errors.append((code, "field.unknown", "数据标准中没有该字段"))
            continue
        if is_blank(raw):
            if f.required:
                out.errors.append((code, "field.required", f"“{f.label}”为必填项"))
            else:
                out.values[code] = None
            continue
        try:
            c = coerce(f, raw, catalog)
        except ValueIssue as issue:
            out.errors.append((code, issue.code, f"{f.label}：{issue.message}"))
            continue
        out.values[code] = c.value
        if c.flag:
            out.flags[code] = c.flag
    fill_from_id_card(ledger_fields, out, current)
    if not partial:
        for f in ledger_fields:
            if f.required and out.values.get(f.code) is None and not any(e[0] == f.code for e in out.errors):
                out.errors.append((f.code, "field.required", f"“{f.label}”为必填项"))
    return out


def fill_from_id_card(
    ledger_fields: tuple[Field, ...], clean: CleanRecord, current: dict | None = None
) -> None:
    """Birth date and sex follow from an ID number: fill them when absent, refuse when they disagree."""
    codes = {f.code for f in ledger_fields}
    if not {"id_number", "birth_date", "sex"} <= codes:
        return
    merged = {**(current or {}), **clean.values}
    number = merged.get("id_number")
    if not number or any(e[0] == "id_number" for e in clean.errors):
        return
    info = v.check_id_card(str(number))
    touched = {"id_number", "birth_date", "sex"} & clean.values.keys()
    if not touched:
        return
    if merged.get("birth_date") is None:
        clean.values["birth_date"] = info.birth_date
    if merged.get("sex") is None:
        clean.values["sex"] = info.sex
    try:
        v.check_id_card_consistent(
            info,
            clean.values.get("birth_date", merged.get("birth_date")),
            clean.values.get("sex", merged.get("sex")),
        )
    except ValueIssue as issue:
        target = "birth_date" if issue.code.endswith("birth_mismatch") else "sex"
        clean.errors.append((target, issue.code, issue.message))
