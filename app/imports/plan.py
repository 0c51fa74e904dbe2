"""What an import would do, row by row: the dry run, and the first half of every commit.

For each staged row: convert the cells (app/imports/convert.py), place the row in a village from its
address and refuse it outside the importing township (不在本辖区), find the record with the same
natural key within the file (later rows are `duplicate`, their values merged into the first) and in
the ledger, and decide create / update / unchanged by survivorship: township stock data fills empty
items and township-owned ones, never an item the catalogue gives to a department or the platform, nor
one a department or system last set. Rows without a key go to the dedupe candidates (`candidate`,
never merged). Columns mapped to a field the importer may not write are refused as whole columns.

The plan is computed in one pass over in-memory rows with a handful of bulk statements: existing
records are fetched by key with one `= ANY(array)` query, never row by row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.levels import Level
from app.access.policy import LedgerPolicy
from app.catalog.coerce import CleanRecord, fill_from_id_card
from app.catalog.loader import get_catalog
from app.catalog.model import Field, FieldType, Ledger
from app.imports.area import AreaIndex, Place
from app.imports.convert import CellIssue, convert_row
from app.imports.mapping import ColumnMap
from app.imports.reading import RawRow
from app.imports.writes import in_values

Progress = Callable[[str, int, int], None]  # (phase, done, total)

# Columns of a person sheet that are not person fields: they make households (docs/households.md).
HOUSEHOLD_FIELDS = {"household_no": "户号", "relation_to_head": "与户主关系"}
_HOUSEHOLD_HEADERS = (
    ("与户主关系", "relation_to_head"),
    ("与户主的关系", "relation_to_head"),
    ("户主关系", "relation_to_head"),
    ("户编号", "household_no"),
    ("户号", "household_no"),
)
# Paths app/imports/mapping.py proposes for them
_HOUSEHOLD_PATHS = {
    "household.household_no": "household_no",
    "household.@relation_to_head": "relation_to_head",
    "household_no": "household_no",
    "relation_to_head": "relation_to_head",
}
ADDRESS_FIELDS = ("residence_address", "hukou_address", "standard_address", "address")
OUT_OF_AREA = "不在本辖区"


def issue(
    column: str | None, raw: str | None, fld: str | None, code: str, message: str, severity: str = "error"
) -> dict[str, Any]:
    return {
        "column": column,
        "raw": raw,
        "field": fld,
        "code": code,
        "message": message,
        "severity": severity,
    }


def _cell_issue(i: CellIssue) -> dict[str, Any]:
    return issue(i.column, i.raw, i.field, i.code, i.message, i.severity)


@dataclass
class RowPlan:
    row_no: int
    raw: list[str | None]
    values: dict[str, Any] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "error"
    record_id: int | None = None
    region: str | None = None
    key: str | None = None
    duplicate_of: int | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (before, after), typed
    flags: dict[str, str] = field(default_factory=dict)
    household_no: str | None = None
    relation: str | None = None
    address: str | None = None

    @property
    def failed(self) -> bool:
        return any(i["severity"] == "error" for i in self.issues)

    def error(self, column: str | None, raw: str | None, fld: str | None, code: str, message: str) -> None:
        self.issues.append(issue(column, raw, fld, code, message))


@dataclass
class ColumnPlan:
    usable: list[ColumnMap]  # what convert_row sees
    household: dict[str, ColumnMap]  # household_no / relation_to_head columns
    issues: list[dict[str, Any]]


@dataclass
class Plan:
    rows: list[RowPlan]
    columns: ColumnPlan
    # (row_no, record id, score, reasons, incoming values)
    candidates: list[tuple[int, int, float, list[str], dict[str, Any]]] = field(default_factory=list)
    reused: bool = False  # the commit's plan is the dry run's (app/imports/jobs.py reuse_plan)

    def counts(self, skipped: int = 0) -> dict[str, int]:
        c = dict.fromkeys(("create", "update", "unchanged", "duplicate", "candidate", "error"), 0)
        for r in self.rows:
            c[r.outcome] += 1
        return {
            "read": len(self.rows),
            "created": c["create"],
            "updated": c["update"],
            "unchanged": c["unchanged"],
            "duplicates": c["duplicate"],
            "candidates": c["candidate"],
            "errors": c["error"],
            "skipped": skipped,
            "warnings": sum(1 for r in self.rows for i in r.issues if i["severity"] == "warning"),
            "columns_refused": sum(1 for i in self.columns.issues if i["severity"] == "error"),
        }


def plan_columns(policy: LedgerPolicy, mapping: list[ColumnMap]) -> ColumnPlan:
    """Which mapped columns the importer's policy lets through; the rest are refused as whole columns."""
    lg = policy.ledger
    usable: list[ColumnMap] = []
    household: dict[str, ColumnMap] = {}
    issues: list[dict[str, Any]] = []
    taken: set[str] = set()
    for m in mapping:
        code = _HOUSEHOLD_PATHS.get(m.field or "", m.field)
        if code is None and lg.code == "person":  # household columns the header mapping does not know
            header = m.header.replace(" ", "")
            code = (
                None
                if "户口簿" in header
                else next((f for label, f in _HOUSEHOLD_HEADERS if label in header), None)
            )
            if code in household:
                code = None
        if code is None:
            issues.append(
                issue(m.header, None, None, "import.column_unmapped", "未识别的列，未导入", "warning")
            )
            continue
        if code in HOUSEHOLD_FIELDS and lg.code == "person":
            household[code] = ColumnMap(m.index, m.header, code, m.how)
            continue
        if "." in code:
            issues.append(
                issue(
                    m.header,
                    None,
                    code,
                    "import.column_unsupported",
                    "该列属于关联台账或专题台账，本次导入不写入，整列未导入",
                )
            )
            continue
        f = lg.field(code)
        if f is None:
            issues.append(
                issue(m.header, None, code, "import.column_unknown", "数据标准中没有该字段，整列未导入")
            )
            continue
        if policy.level(code) < Level.write:
            issues.append(
                issue(m.header, None, code, "import.column_forbidden", "无权写入该字段，整列未导入")
            )
            continue
        if code in taken:
            issues.append(
                issue(
                    m.header,
                    None,
                    code,
                    "import.column_repeated",
                    "该字段已由其他列导入，本列未导入",
                    "warning",
                )
            )
            continue
        taken.add(code)
        usable.append(ColumnMap(m.index, m.header, code, m.how))
    return ColumnPlan(usable, household, issues)


def convert_rows(
    ledger: str,
    columns: ColumnPlan,
    raw_rows: list[tuple[int, list[str | None]]],
    progress: Progress | None = None,
) -> list[RowPlan]:
    """CPU only (no I/O): the API runs it in a thread so the event loop keeps serving."""
    out: list[RowPlan] = []
    hh = columns.household
    total = len(raw_rows)
    for n, (row_no, raw) in enumerate(raw_rows, 1):
        rp = RowPlan(row_no, raw)
        values, issues = convert_row(ledger, columns.usable, RawRow(row_no, tuple(raw)))
        rp.values = {k: v for k, v in values.items() if v is not None}
        rp.issues = [_cell_issue(i) for i in issues]
        for code, m in hh.items():
            cell = raw[m.index] if m.index < len(raw) else None
            text = unicodedata.normalize("NFKC", cell).strip() if cell else ""
            if text and code == "relation_to_head":
                rel = _relation_code(text)
                if rel is None:
                    rp.error(m.header, cell, code, "code.unknown", "与户主关系不在代码表（GB/T 4761）中")
                rp.relation = rel
            elif text:
                if not text.isdigit() or len(text) > 18:
                    rp.error(m.header, cell, code, "household.number_format", "户号应为数字")
                else:
                    rp.household_no = text
        rp.address = next((str(rp.values[a]) for a in ADDRESS_FIELDS if rp.values.get(a)), None)
        out.append(rp)
        if progress and n % 2000 == 0:
            progress("convert", n, total)
    if progress:
        progress("convert", total, total)
    return out


def _relation_code(text: str) -> str | None:
    values = get_catalog().codelists["relation_to_head"].values
    if text in values:
        return text
    if text.isdigit() and text.zfill(2) in values:
        return text.zfill(2)
    by_label = {label: code for code, label in values.items()}
    by_label.update(
        {
            "本人": "01",
            "妻": "02",
            "夫": "02",
            "妻子": "02",
            "丈夫": "02",
            "儿子": "10",
            "长子": "10",
            "次子": "10",
            "女儿": "20",
            "长女": "20",
            "次女": "20",
            "孙子": "30",
            "孙女": "30",
            "父亲": "50",
            "母亲": "50",
            "兄": "70",
            "弟": "70",
            "姐": "70",
            "妹": "70",
        }
    )
    return by_label.get(text)


def household_number(local: str, village: str) -> str:
    """A sheet's local 户号 (23, 0023) as the district-wide one: village code + number padded to 4."""
    if len(local) >= 16 and local.startswith(village[:9]):
        return local
    return village[:12] + local.lstrip("0").zfill(4)


def place_rows(rows: list[RowPlan], area: AreaIndex, township: str) -> None:
    """The village of every row from its addresses (现住址 first, then 户籍地址); an address in another
    township is an error. An address naming the township but no village of it places the row at the
    township itself, with a warning."""
    prefix = township[:9]
    for rp in rows:
        if rp.failed:
            continue
        for code in ADDRESS_FIELDS:
            text = rp.values.get(code)
            place: Place | None = area.locate(str(text)) if text else None
            if place is None:
                continue
            if (place.township or "")[:9] != prefix:
                rp.error(code, str(text), code, "import.out_of_area", OUT_OF_AREA)
            elif place.code is None:
                rp.region = township
                rp.issues.append(
                    issue(
                        code,
                        str(text),
                        code,
                        "import.township_only",
                        "地址中未能识别村（社区），记录归属到镇街",
                        "warning",
                    )
                )
            else:
                rp.region = place.code
            break


def _address_column(rp: RowPlan) -> str | None:
    return next((a for a in ADDRESS_FIELDS if rp.values.get(a)), None)


def merge_in_file(lg: Ledger, rows: list[RowPlan]) -> dict[str, RowPlan]:
    """Rows with the same natural key: the first is kept, later ones become `duplicate` and give it the
    values it lacks. Returns key -> first row."""
    key = lg.natural_key
    first: dict[str, RowPlan] = {}
    if not key:
        return first
    for rp in rows:
        k = rp.values.get(key)
        if k is None or rp.failed:
            continue
        rp.key = str(k)
        head = first.get(rp.key)
        if head is None:
            first[rp.key] = rp
            continue
        rp.outcome, rp.duplicate_of = "duplicate", head.row_no
        for code, v in rp.values.items():
            head.values.setdefault(code, v)
        if rp.region and not head.region:
            head.region = rp.region
        if rp.household_no and not head.household_no:
            head.household_no, head.relation = rp.household_no, rp.relation
    return first


def township_owned(f: Field, provenance: dict[str, Any] | None) -> bool:
    """May township stock data overwrite this field's current value? Only a township-sourced item whose
    value no department or system set."""
    if f.source != "township":
        return False
    src = str(((provenance or {}).get(f.code) or {}).get("source") or "")
    return not src.startswith(("department:", "system:", "city_platform", "platform"))


def same(f: Field, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if f.type == FieldType.decimal:
        return Decimal(str(a)) == Decimal(str(b))
    return bool(a == b)


async def existing_by_key(
    session: AsyncSession, policy: LedgerPolicy, keys: list[str], *, lock: bool
) -> dict[str, dict[str, Any]]:
    """Live records with these natural keys, whatever their area (the area check follows)."""
    lg = policy.ledger
    if not lg.natural_key or not keys:
        return {}
    t = policy.table
    cols = [t.c.id, t.c.region_code, t.c.version, t.c.provenance, *(t.c[f.code] for f in lg.fields)]
    stmt = select(*cols).where(_any(t.c[lg.natural_key], keys), t.c.deleted_at.is_(None))
    if lock:
        stmt = stmt.with_for_update()
    out: dict[str, dict[str, Any]] = {}
    for r in (await session.execute(stmt)).mappings():
        out[str(r[lg.natural_key])] = dict(r)
    return out


def _any(column: Any, values: list[str]) -> Any:
    return in_values(column, "keys", values)


def decide(
    policy: LedgerPolicy,
    rows: list[RowPlan],
    first: dict[str, RowPlan],
    existing: dict[str, dict[str, Any]],
    township: str,
) -> list[RowPlan]:
    """create / update / unchanged for the first row of every key; returns the rows without a key."""
    lg = policy.ledger
    by_code = {f.code: f for f in lg.fields}
    keyless: list[RowPlan] = []
    prefix = township[:9]
    for rp in rows:
        if rp.outcome == "duplicate":
            continue
        if rp.failed:
            rp.outcome = "error"
            continue
        if rp.key is None:
            keyless.append(rp)
            continue
        cur = existing.get(rp.key)
        if cur is not None:
            if not str(cur["region_code"]).startswith(prefix) or not policy.in_scope(cur["region_code"]):
                rp.error(lg.natural_key, rp.key, lg.natural_key, "import.out_of_area", OUT_OF_AREA)
                rp.outcome = "error"
                continue
            rp.record_id = cur["id"]
            rp.region = rp.region or cur["region_code"]
            clean = complete(lg, rp.values, current=cur)
            _soften_mismatch(lg, rp, clean.errors)
            if rp.failed:
                rp.outcome = "error"
                continue
            for code, new in clean.values.items():
                f = by_code[code]
                old = cur.get(code)
                if new is None or same(f, old, new):
                    continue
                if old is None or township_owned(f, cur.get("provenance")):
                    rp.changes[code] = (old, new)
                else:
                    rp.issues.append(
                        issue(
                            code,
                            None,
                            code,
                            "import.kept_owner_value",
                            f"“{f.label}”由部门或平台维护，保留台账现有值",
                            "warning",
                        )
                    )
            rp.flags = {c: v for c, v in clean.flags.items() if c in rp.changes}
            rp.outcome = "update" if rp.changes else "unchanged"
            continue
        create_or_error(policy, rp)
    return keyless


def create_or_error(policy: LedgerPolicy, rp: RowPlan) -> None:
    """A row that matches no record: a complete, valid record in the importer's area is created."""
    lg = policy.ledger
    clean = complete(lg, rp.values, partial=False)
    _soften_mismatch(lg, rp, clean.errors)
    if not rp.failed and rp.region is None:
        rp.error(
            _address_column(rp),
            rp.address,
            None,
            "import.no_village",
            "无法根据地址确定所属村（社区）" if rp.address else "缺少地址，无法确定所属村（社区）",
        )
    if not rp.failed and not policy.in_scope(rp.region or ""):
        rp.error(_address_column(rp), rp.address, None, "import.out_of_area", OUT_OF_AREA)
    if rp.failed:
        rp.outcome = "error"
        return
    rp.changes = {c: (None, v) for c, v in clean.values.items() if v is not None}
    rp.flags = dict(clean.flags)
    rp.outcome = "create"


def complete(
    lg: Ledger, values: dict[str, Any], *, partial: bool = True, current: dict[str, Any] | None = None
) -> CleanRecord:
    """What clean_record adds to values convert_row already coerced: birth date and sex from the ID
    (refused when they disagree) and, for a new record, the required fields. The values are not
    coerced a second time."""
    clean = CleanRecord(values={k: v for k, v in values.items() if lg.field(k) is not None})
    fill_from_id_card(lg.fields, clean, current)
    if not partial:
        for f in lg.fields:
            if (
                f.required
                and clean.values.get(f.code) is None
                and not any(e[0] == f.code for e in clean.errors)
            ):
                clean.errors.append((f.code, "field.required", f"“{f.label}”为必填项"))
    return clean


def _soften_mismatch(lg: Ledger, rp: RowPlan, errors: list[tuple[str, str, str]]) -> None:
    """Sex or birth date contradicting the ID number is a warning; the ID's value is kept (C1-2)."""
    for code, err, message in errors:
        f = lg.field(code)
        label = f.label if f else code
        if "mismatch" in err:
            rp.values.pop(code, None)
            rp.issues.append(issue(label, None, code, err, message, "warning"))
        else:
            rp.error(label, None, code, err, message)


def check_households(rows: list[RowPlan]) -> None:
    """Rows grouped by 户号 within a village need exactly one 户主 (relation 01); else every row of the
    group is an error of the dry run, not a guess (docs/households.md)."""
    groups: dict[str, list[RowPlan]] = {}
    for rp in rows:
        if rp.outcome in ("create", "update", "unchanged") and rp.household_no and rp.region:
            rp.household_no = household_number(rp.household_no, rp.region)
            groups.setdefault(rp.household_no, []).append(rp)
    for members in groups.values():
        heads = sum(1 for m in members if m.relation == "01")
        if heads == 1:
            continue
        why = "该户没有户主（与户主关系为“户主”的成员）" if heads == 0 else "该户有多名户主"
        for m in members:
            m.error("户号", m.household_no, "household_no", "household.head", why)
            m.outcome = "error"
