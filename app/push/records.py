"""One pushed change as the service understands it, checked and coerced before anything is written.

A pushed record is flat (the same shape in JSON, NDJSON, CSV and XLSX): the meta keys below, the
ledger's natural key under its own field name (id_number, uscc, certificate_number …), and the item
values under their field codes. Meta keys:

- `source_event_id` (required, ≤ 60 characters, unique per source): what makes a replay harmless;
- `effective_at` (required): business time, ISO date or date-time (Beijing time when no offset);
- `op`: `upsert` (default), `death` (sets death_date to the effective day), `moved_out` / `revoked`
  (the record leaves the ledger, history kept);
- `region_code`: only to create a core record the ledger does not hold yet;
- `parent_key`: only to create an extension record: the parent ledger's natural key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from app.catalog.coerce import clean_record, coerce, is_blank
from app.catalog.model import Catalog, Field, Ledger
from app.catalog.validators import ValueIssue, check_division_code, normalize_text

CHINA = ZoneInfo("Asia/Shanghai")
META = ("source_event_id", "effective_at", "op", "region_code", "parent_key")
OPS = ("upsert", "death", "moved_out", "revoked")
CLOSING_OPS = ("moved_out", "revoked")
MAX_EVENT_ID = 60


@dataclass
class PushRecord:
    index: int  # position in the request, 0-based
    event_id: str | None
    effective_at: datetime | None = None
    op: str = "upsert"
    key: object = None  # the natural key value, coerced
    region_code: str | None = None
    parent_key: object = None
    values: dict[str, object] = field(default_factory=dict)  # coerced item values
    flags: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # set: the record is rejected
    reason_code: str | None = None

    def reject(self, code: str, reason: str) -> None:
        if self.reason is None:
            self.reason_code, self.reason = code, reason


def _text(raw: object) -> str | None:
    if is_blank(raw):
        return None
    return normalize_text(str(raw))


def parse_effective(raw: object) -> datetime:
    if isinstance(raw, datetime):
        dt = raw
    elif isinstance(raw, date):
        dt = datetime.combine(raw, time.min)
    else:
        s = _text(raw)
        if s is None:
            raise ValueIssue("push.effective_at_required", "缺少生效时间 effective_at")
        try:
            dt = datetime.fromisoformat(s.replace(" ", "T", 1))
        except ValueError:
            raise ValueIssue(
                "push.effective_at_format", "生效时间 effective_at 应为 ISO 日期或日期时间"
            ) from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=CHINA)


def item_codes(raw: dict[str, object], key_field: str) -> list[str]:
    return [k for k in raw if k not in META and k != key_field]


def _coerce_key(f: Field, raw: object, catalog: Catalog) -> object:
    if is_blank(raw):
        raise ValueIssue("push.key_required", f"缺少主键“{f.label}”（{f.code}）")
    return coerce(f, raw, catalog).value


def read_record(
    index: int, raw: dict[str, object], lg: Ledger, parent: Ledger | None, catalog: Catalog
) -> PushRecord:
    """Meta checks and value coercion of one record; problems become its rejection reason."""
    event = _text(raw.get("source_event_id"))
    rec = PushRecord(index, event)
    if event is None:
        rec.reject("push.event_required", "缺少事件编号 source_event_id")
    elif len(event) > MAX_EVENT_ID:
        rec.reject("push.event_too_long", f"事件编号不得超过 {MAX_EVENT_ID} 个字符")
    try:
        rec.effective_at = parse_effective(raw.get("effective_at"))
    except ValueIssue as issue:
        rec.reject(issue.code, issue.message)
    op = _text(raw.get("op")) or "upsert"
    if op not in OPS:
        rec.reject("push.op_unknown", f"不支持的操作“{op}”，可用：{'、'.join(OPS)}")
    rec.op = op
    assert lg.natural_key is not None
    key_field = lg.field(lg.natural_key)
    assert key_field is not None
    try:
        rec.key = _coerce_key(key_field, raw.get(lg.natural_key), catalog)
    except ValueIssue as issue:
        rec.reject(issue.code, f"{key_field.label}：{issue.message}")
    region = _text(raw.get("region_code"))
    if region is not None:
        try:
            rec.region_code = check_division_code(region)
        except ValueIssue as issue:
            rec.reject(issue.code, f"区划代码：{issue.message}")
    if parent is not None and parent.natural_key and not is_blank(raw.get("parent_key")):
        pf = parent.field(parent.natural_key)
        assert pf is not None
        try:
            rec.parent_key = _coerce_key(pf, raw.get("parent_key"), catalog)
        except ValueIssue as issue:
            rec.reject(issue.code, f"所属主体{pf.label}：{issue.message}")
    data = {k: raw[k] for k in item_codes(raw, lg.natural_key)}
    clean = clean_record(lg.fields, data, catalog, partial=True)
    for code, err_code, message in clean.errors:
        rec.reject(err_code, f"{code}：{message}")
    # clean_record fills birth date and sex from an ID number it was given: a push writes what
    # it sent.
    rec.values = {k: v for k, v in clean.values.items() if k in data}
    rec.flags = {k: v for k, v in clean.flags.items() if k in data}
    if op == "death" and rec.effective_at is not None:
        if lg.field("death_date") is None:
            rec.reject("push.op_unknown", "该台账没有死亡日期，不能使用 death 操作")
        else:
            rec.values.setdefault("death_date", rec.effective_at.astimezone(CHINA).date())
    return rec


def new_record_values(rec: PushRecord, lg: Ledger, catalog: Catalog) -> dict[str, object] | None:
    """The values of a record this push creates, with what the ID number implies; None (and the
    record rejected) when something required is missing."""
    assert lg.natural_key is not None
    data: dict[str, object] = {**rec.values, lg.natural_key: rec.key}
    clean = clean_record(lg.fields, data, catalog, partial=False)
    if clean.errors:
        missing = [c for c, code, _ in clean.errors if code == "field.required"]
        if missing:
            rec.reject("push.create_incomplete", f"台账中没有该记录，新建还缺少：{'、'.join(missing)}")
        else:
            code, err_code, message = clean.errors[0]
            rec.reject(err_code, f"{code}：{message}")
        return None
    rec.flags.update(clean.flags)
    return clean.values
