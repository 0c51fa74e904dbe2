"""Template → one SQL statement: rows of a list or aggregate report for one area, as JSON per row.

Everything goes through the access policy of the template's owning department (see
`department_principal`): a pulled field is `policy.column` (raw or masked in SQL), a filtered field
passes `check_filter`, a grouped or aggregated one `check_sort`; each joined ledger brings its own row
scope. The area (a township's prefix, or the department's whole jurisdiction for pull-only reads)
narrows every table. Values from the template are bound parameters; nothing from a caller is SQL.

The statement yields: row_key, row_no, label, record_id, region_code, data (pulled values by column
code), prov (provenance of the pulled fields, once per record read: see `PROV_PREFIX`), links (record
ids that write-back gaps update) and prefill (current ledger values of write-back gaps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import (
    Integer,
    Numeric,
    Select,
    String,
    Text,
    and_,
    cast,
    column,
    distinct,
    func,
    literal,
    literal_column,
    null,
    select,
    true,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from app.access.levels import Level
from app.access.policy import LedgerPolicy, resolve
from app.auth.principal import Principal
from app.catalog.coerce import coerce
from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field as CField, FieldType, Validator
from app.catalog.validators import PatternRefused, ValueIssue, compile_pattern
from app.db.ledger_tables import tables
from app.errors import FieldError, Problem, invalid
from app.org.models import Region
from app.report import formula as fm
from app.report.dsl import AggregateColumn, Condition, FieldColumn, FormulaColumn, GapColumn, RatioColumn, TemplateSpec

NUMERIC = {"integer", "decimal"}
# Base columns a template may pull or filter on, typed like catalogue fields.
BASE = {
    "id": CField("id", "记录编号", FieldType.integer),
    "region_code": CField("region_code", "所属区划", FieldType.text),
    "created_at": CField("created_at", "创建时间", FieldType.datetime),
    "updated_at": CField("updated_at", "更新时间", FieldType.datetime),
}
JSON_PAIRS_PER_CALL = 45  # jsonb_build_object takes at most 100 arguments
# report_row.prov holds, per record a list row reads ("$" + its path: "$" the row's own record,
# "$residence" its house …), that record's provenance cut down to the fields the template pulls from it.
# `cell_provenance` turns it into the per-column view ({column code: provenance or null}); rows stored
# before this layout hold that view directly (column codes never start with "$").
PROV_PREFIX = "$"


@dataclass
class OutColumn:
    code: str
    label: str
    kind: str  # field | formula | ratio | aggregate | gap
    type: str  # text | integer | decimal | date | datetime | boolean | code (and masked → text)
    path: str | None = None
    ledger_field: str | None = None  # "person.name": what the column reads or writes
    source: str | None = None  # the catalogue's source of truth for a pulled field
    masked: bool = False
    codelist: str | None = None
    gap: CField | None = None  # how a gap cell is validated
    required: bool = False
    help: str | None = None
    write_back: tuple[str, str] | None = None  # (ledger, field)
    prov_key: str | None = None  # key of the record's provenance in report_row.prov (pulled fields)
    prefilled: bool = False  # a write-back gap whose current ledger value is pre-filled
    fn: str | None = None

    def public(self) -> dict:
        out = {"code": self.code, "label": self.label, "kind": self.kind, "type": self.type,
               "editable": self.kind == "gap", "required": self.required}
        for k in ("path", "ledger_field", "source", "help", "codelist", "fn"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        if self.masked:
            out["masked"] = True
        if self.write_back:
            out["write_back"] = ".".join(self.write_back)
        return out


@dataclass
class Compiled:
    spec: TemplateSpec
    columns: list[OutColumn]
    stmt: Select
    denied: list[FieldError] = field(default_factory=list)  # fields the department may not read
    fields_used: set[str] = field(default_factory=set)  # "ledger.field" pulled, aggregated or filtered
    code_rows: int | None = None  # aggregate by code value: the number of rows, known without a query


def department_principal(unit) -> Principal:
    """The owning department as a principal: its org-unit and default grants, no person's own grants.

    The negative id never matches a user, and keeps the session's grant cache apart per department.
    """
    from app.org.regions import region_prefix

    return Principal(kind="user", id=-unit.id, name=f"department:{unit.department_code}", org_unit_id=unit.id,
                     org_unit_kind="department", region_code=unit.region_code,
                     region_prefix=region_prefix(unit.region_code), department_code=unit.department_code,
                     roles=frozenset())


async def department_policies(session, principal: Principal) -> dict[str, LedgerPolicy]:
    from app.access.policy import grants_for

    grants = await grants_for(session, principal)
    return {code: resolve(principal, lg, grants) for code, lg in get_catalog().ledgers.items()}


class _Builder:
    def __init__(self, spec: TemplateSpec, policies: dict[str, LedgerPolicy], area: str, catalog: Catalog):
        self.spec, self.policies, self.area, self.catalog = spec, policies, area, catalog
        self.errors: list[FieldError] = []
        self.denied: list[FieldError] = []
        self.fields_used: set[str] = set()
        root = catalog.ledger(spec.ledger)
        if root is None:
            raise invalid([FieldError("body.ledger", "template.ledger_unknown", "数据标准中没有该台账")], "报表模板有误")
        self.root = root
        self.base = policies[root.code].table.alias("t0")
        self.from_ = self.base
        self.joins: dict[tuple[str, ...], tuple] = {(): (self.base, root.code)}
        self.n = 0
        self.code_rows: int | None = None

    # ---- paths -----------------------------------------------------------------------------
    def _area(self, t) -> ColumnElement:
        return t.c.region_code.like(self.area + "%")

    def _hop(self, ledger: str, seg: str):
        """(other ledger, join builder) for one path segment, or an error code."""
        cat = self.catalog
        for rel, direction in cat.relations_of(ledger):
            if direction == "forward" and rel.forward == seg:
                return rel.target, rel, "forward", not rel.forward_many
            if direction == "backward" and rel.backward == seg:
                return rel.source, rel, "backward", not rel.backward_many
        ext = cat.ledger(seg)
        if ext is not None and ext.parent == ledger:
            return seg, None, "extension", ext.cardinality == "one"
        lg = cat.ledger(ledger)
        if lg is not None and lg.kind == "extension" and seg == "parent":
            return lg.parent, None, "parent", True
        return None

    def _join(self, key: tuple[str, ...], near, hop) -> tuple:
        if key in self.joins:
            return self.joins[key]
        other, rel, direction, _ = hop
        pol = self.policies[other]
        self.n += 1
        far = pol.table.alias(f"t{self.n}")
        # A joined record outside the department's scope (or the area) reads as empty, never leaks.
        far_ok = and_(pol.scope_clause(far), self._area(far))
        if rel is not None:
            link = tables().relations[rel.code].alias(f"l{self.n}")
            a, b = (link.c.from_id, link.c.to_id) if direction == "forward" else (link.c.to_id, link.c.from_id)
            self.from_ = self.from_.outerjoin(link, and_(a == near.c.id, link.c.deleted_at.is_(None),
                                                         self._area(link)))
            self.from_ = self.from_.outerjoin(far, and_(far.c.id == b, far_ok))
        elif direction == "extension":
            self.from_ = self.from_.outerjoin(far, and_(far.c.parent_id == near.c.id, far_ok))
        else:
            self.from_ = self.from_.outerjoin(far, and_(far.c.id == near.c.parent_id, far_ok))
        self.joins[key] = (far, other)
        return self.joins[key]

    def resolve(self, path: str, where: str) -> tuple | None:
        """(table alias, ledger code, catalogue field, policy) of a path, or None after recording an error."""
        segs = path.split(".")
        ledger, alias, key = self.root.code, self.base, ()
        for seg in segs[:-1]:
            hop = self._hop(ledger, seg)
            if hop is None:
                self.errors.append(FieldError(where, "template.path_unknown", f"“{ledger}”台账没有关联或专题“{seg}”"))
                return None
            if not hop[3]:
                self.errors.append(FieldError(where, "template.path_to_many",
                                              f"“{seg}”是一对多关联，报表列只能经一对一关联取值"))
                return None
            key = (*key, seg)
            alias, ledger = self._join(key, alias, hop)
        code = segs[-1]
        f = BASE.get(code) or self.catalog.ledgers[ledger].field(code)
        if f is None:
            self.errors.append(FieldError(where, "template.field_unknown", f"“{ledger}”台账没有字段“{code}”"))
            return None
        if code not in BASE:
            self.fields_used.add(f"{ledger}.{code}")
        return alias, ledger, f, self.policies[ledger]

    def _access(self, fn, where: str):
        try:
            return fn(), None
        except Problem as p:
            err = FieldError(where, p.code, p.errors[0].message if p.errors else p.title)
            self.denied.append(err)
            return None, err

    def pull(self, path: str, where: str) -> tuple[ColumnElement, CField, bool, str, object] | None:
        """A readable value (masked in SQL if so granted) with its field, masked flag, ledger and alias."""
        r = self.resolve(path, where)
        if r is None:
            return None
        alias, ledger, f, pol = r
        expr, err = self._access(lambda: pol.column(f.code, alias), where)
        if err:
            return null(), f, False, ledger, alias
        return expr, f, pol.level(f.code) == Level.masked, ledger, alias

    def raw(self, path: str, where: str, *, op: str | None = None) -> tuple[ColumnElement, CField] | None:
        """The plain column for filtering (op given) or grouping / aggregating (op None)."""
        r = self.resolve(path, where)
        if r is None:
            return None
        alias, ledger, f, pol = r
        check = (lambda: pol.check_filter(f.code, op, where)) if op else (lambda: pol.check_sort(f.code, where))
        if f.code in BASE:  # base columns: filterable / groupable by anyone who sees the row
            check = lambda: None  # noqa: E731
        _, err = self._access(check, where)
        # Typed NULL: an aggregate over a denied field (a live read narrowed to its reader) still plans.
        return (cast(null(), alias.c[f.code].type) if err else alias.c[f.code]), f

    # ---- conditions ------------------------------------------------------------------------
    def condition(self, c: Condition, where: str) -> ColumnElement | None:
        got = self.raw(c.path, f"{where}.path", op=c.op)
        if got is None:
            return None
        col, f = got
        vpath = f"{where}.value"
        if c.op == "is_null":
            if not isinstance(c.value, bool):
                self.errors.append(FieldError(vpath, "template.value", "is_null 的值应为 true 或 false"))
                return None
            return col.is_(None) if c.value else col.is_not(None)
        if c.op == "in":
            if not isinstance(c.value, list) or not 1 <= len(c.value) <= 500:
                self.errors.append(FieldError(vpath, "template.value", "in 需要 1 到 500 个值的列表"))
                return None
            vals = [self._value(f, v, vpath) for v in c.value]
            return None if any(v is _BAD for v in vals) else col.in_(vals)
        if isinstance(c.value, list) or c.value is None:
            self.errors.append(FieldError(vpath, "template.value", "该运算需要一个值"))
            return None
        if c.op == "prefix":
            if f.type not in (FieldType.text, FieldType.code):
                self.errors.append(FieldError(vpath, "template.value", "prefix 只用于文本字段"))
                return None
            return col.like(str(c.value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        v = self._value(f, c.value, vpath)
        if v is _BAD:
            return None
        return {"eq": col.__eq__, "ne": col.__ne__, "gt": col.__gt__, "gte": col.__ge__,
                "lt": col.__lt__, "lte": col.__le__}[c.op](v)

    def _value(self, f: CField, raw, where: str):
        if f.code == "region_code":
            if isinstance(raw, str) and raw.isdigit() and len(raw) <= 15:
                return raw
            self.errors.append(FieldError(where, "template.value", "区划代码应为数字"))
            return _BAD
        try:
            return coerce(f, raw, self.catalog).value
        except ValueIssue as issue:
            self.errors.append(FieldError(where, issue.code, issue.message))
            return _BAD
        except (TypeError, ValueError, KeyError):
            self.errors.append(FieldError(where, "template.value", "取值与字段类型不符"))
            return _BAD

    def conditions(self, conds: list[Condition], where: str) -> list[ColumnElement]:
        out = [self.condition(c, f"{where}.{i}") for i, c in enumerate(conds)]
        return [c for c in out if c is not None]

    # ---- gap columns -----------------------------------------------------------------------
    def gap(self, c: GapColumn, where: str) -> tuple[OutColumn, tuple | None]:
        out = OutColumn(c.code, c.label, "gap", c.type or "text", required=c.required, help=c.help)
        target = None
        if c.write_back:
            wpath = f"{where}.write_back"
            if self.spec.kind != "list":
                self.errors.append(FieldError(wpath, "template.write_back", "只有清单式报表的空缺列可以写回台账"))
            else:
                r = self.resolve(c.write_back, wpath)
                if r is not None:
                    alias, ledger, f, pol = r
                    if f.code in BASE or f.type == FieldType.reference:
                        self.errors.append(FieldError(wpath, "template.write_back", "该字段不能由报表写回"))
                    elif c.type and c.type != f.type.value:
                        self.errors.append(FieldError(f"{where}.type", "template.write_back_type",
                                                      "空缺列类型须与写回字段一致"))
                    else:
                        out.type, out.codelist = f.type.value, f.codelist
                        out.gap = CField(c.code, c.label, f.type, required=c.required, validator=f.validator,
                                         codelist=f.codelist, max_length=f.max_length, precision=f.precision,
                                         scale=f.scale)
                        out.write_back, out.ledger_field = (ledger, f.code), f"{ledger}.{f.code}"
                        readable = pol.level(f.code) >= Level.read
                        out.prefilled = readable
                        target = (alias.c.id, alias.c[f.code] if readable else None)
            if out.gap is None:
                out.gap = CField(c.code, c.label, FieldType.text)
            return out, target
        ftype = FieldType(c.type)
        validator = None
        if c.min is not None or c.max is not None:
            if ftype not in (FieldType.integer, FieldType.decimal):
                self.errors.append(FieldError(f"{where}.min", "template.gap_range", "min/max 只用于整数或小数"))
            validator = Validator("range", min=c.min, max=c.max)
        if c.pattern is not None or c.validator is not None:
            if ftype != FieldType.text or validator is not None:
                self.errors.append(FieldError(f"{where}.pattern", "template.gap_validator",
                                              "正则或格式校验只用于文本，且不能与 min/max 同用"))
            elif c.pattern is not None:
                try:
                    compile_pattern(c.pattern)  # refused here, at definition, not when a cell comes
                    validator = Validator("pattern", pattern=c.pattern)
                except PatternRefused:
                    self.errors.append(FieldError(f"{where}.pattern", "template.gap_pattern",
                                                  "正则表达式无效或不受支持（不支持反向引用、环视，长度不超过 200）"))
            else:
                validator = Validator(c.validator)
        if ftype == FieldType.code:
            if not c.codelist or c.codelist not in self.catalog.codelists:
                self.errors.append(FieldError(f"{where}.codelist", "template.codelist_unknown", "需要数据标准中的代码表"))
        elif c.codelist:
            self.errors.append(FieldError(f"{where}.codelist", "template.codelist", "代码表只用于 code 类型"))
        out.codelist = c.codelist if ftype == FieldType.code else None
        out.gap = CField(c.code, c.label, ftype, required=c.required, validator=validator,
                         codelist=out.codelist, max_length=c.max_length, precision=14, scale=c.scale)
        return out, None


class _Bad:
    pass


_BAD = _Bad()


def _jsonb(pairs: list[tuple[str, ColumnElement]]) -> ColumnElement:
    if not pairs:
        return cast(literal("{}"), JSONB)
    parts = []
    for i in range(0, len(pairs), JSON_PAIRS_PER_CALL):
        args = []
        for k, v in pairs[i:i + JSON_PAIRS_PER_CALL]:
            args += [literal(k, String), v]
        parts.append(func.jsonb_build_object(*args, type_=JSONB))
    out = parts[0]
    for p in parts[1:]:
        out = out.op("||", return_type=JSONB)(p)
    return out


def _formula_sql(b: _Builder, node: fm.Node, env: dict[str, ColumnElement]) -> ColumnElement:
    match node:
        case fm.Num(v):
            return literal(v, Numeric)
        case fm.Ref(code):
            return cast(env[code], Numeric)
        case fm.Neg(arg):
            return -_formula_sql(b, arg, env)
        case fm.BinOp(op, left, right):
            lhs, rhs = _formula_sql(b, left, env), _formula_sql(b, right, env)
            if op == "+":
                return lhs + rhs
            if op == "-":
                return lhs - rhs
            if op == "*":
                return lhs * rhs
            return lhs / func.nullif(rhs, 0)
    raise AssertionError(node)


def _derived(b: _Builder, spec: TemplateSpec, outs: dict[str, OutColumn], env: dict[str, ColumnElement]) -> None:
    """Formula and ratio columns, over any non-gap numeric column, in dependency order (cycles refused)."""
    trees: dict[str, tuple[fm.Node, int, str]] = {}
    for i, c in enumerate(spec.columns):
        where = f"body.columns.{i}"
        if isinstance(c, FormulaColumn):
            try:
                trees[c.code] = (fm.parse(c.expr), c.scale, f"{where}.expr")
            except fm.FormulaError as e:
                b.errors.append(FieldError(f"{where}.expr", e.code, e.message))
        elif isinstance(c, RatioColumn):
            node = fm.BinOp("/", fm.Ref(c.numerator), fm.Ref(c.denominator))
            if c.percent:
                node = fm.BinOp("/", fm.BinOp("*", fm.Ref(c.numerator), fm.Num(Decimal(100))), fm.Ref(c.denominator))
            trees[c.code] = (node, c.scale, f"{where}.numerator")
    state: dict[str, str] = {}

    def build(code: str) -> bool:
        if code in env:
            return True
        node, scale, where = trees[code]
        if state.get(code) == "busy":
            b.errors.append(FieldError(where, "formula.cycle", "公式循环引用"))
            return False
        state[code] = "busy"
        ok = True
        for ref in sorted(fm.refs(node)):
            col = outs.get(ref)
            if col is None:
                b.errors.append(FieldError(where, "formula.unknown_column", f"没有代码为“{ref}”的列"))
                ok = False
            elif col.kind == "gap":
                b.errors.append(FieldError(where, "formula.gap_reference", f"公式不能引用空缺列“{ref}”"))
                ok = False
            elif ref in trees:
                ok = build(ref) and ok
            elif col.type not in NUMERIC or col.masked:
                b.errors.append(FieldError(where, "formula.not_numeric", f"列“{ref}”不是数值"))
                ok = False
        state[code] = "done"
        if ok:
            env[code] = func.round(_formula_sql(b, node, env), scale)
        else:
            env[code] = null()
        return ok

    for code in trees:
        build(code)


def compile_template(spec: TemplateSpec, policies: dict[str, LedgerPolicy], area: str, *,
                     strict: bool = True) -> Compiled:
    """Compile for one area (a region-code prefix). strict: unreadable fields are a 403, else reported."""
    catalog = get_catalog()
    b = _Builder(spec, policies, area, catalog)
    codes = [c.code for c in spec.columns]
    for i, code in enumerate(codes):
        if code in codes[:i]:
            b.errors.append(FieldError(f"body.columns.{i}.code", "template.duplicate_code", "列代码重复"))
    root_pol = policies[b.root.code]
    base_where = [root_pol.scope_clause(b.base), b._area(b.base), *b.conditions(spec.filter, "body.filter")]
    if spec.kind == "list":
        stmt, outs = _list(b, spec, base_where)
    else:
        stmt, outs = _aggregate(b, spec, base_where)
    if b.errors:
        raise invalid(b.errors, "报表模板有误")
    if b.denied and strict:
        raise Problem(403, b.denied[0].code, "模板所属部门无权读取以下字段", errors=b.denied)
    return Compiled(spec, outs, stmt, b.denied, b.fields_used, b.code_rows)


def _list(b: _Builder, spec: TemplateSpec, base_where: list) -> tuple[Select, list[OutColumn]]:
    outs: dict[str, OutColumn] = {}
    env: dict[str, ColumnElement] = {}
    links, prefill = [], []
    records: dict[str, tuple[object, str, list[str]]] = {}  # prov key -> (alias, ledger, pulled fields)
    for i, c in enumerate(spec.columns):
        where = f"body.columns.{i}"
        if isinstance(c, FieldColumn):
            got = b.pull(c.path, f"{where}.path")
            if got is None:
                outs[c.code] = OutColumn(c.code, c.label or c.code, "field", "text")
                env[c.code] = null()
                continue
            expr, f, masked, ledger, alias = got
            outs[c.code] = OutColumn(c.code, c.label or f.label, "field", "text" if masked else f.type.value,
                                     path=c.path, ledger_field=f"{ledger}.{f.code}",
                                     source=None if f.code in BASE else f.source, masked=masked,
                                     codelist=f.codelist)
            env[c.code] = expr
            if f.code not in BASE:
                key = PROV_PREFIX + c.path.rpartition(".")[0]
                outs[c.code].prov_key = key
                rec = records.setdefault(key, (alias, ledger, []))
                if f.code not in rec[2]:
                    rec[2].append(f.code)
        elif isinstance(c, GapColumn):
            out, target = b.gap(c, where)
            outs[c.code] = out
            if target is not None:
                links.append((c.code, target[0]))
                if target[1] is not None:
                    prefill.append((c.code, target[1]))
        elif isinstance(c, AggregateColumn):
            b.errors.append(FieldError(f"{where}.kind", "template.aggregate_in_list", "清单式报表不能有统计列"))
            outs[c.code] = OutColumn(c.code, c.label, "aggregate", "integer")
        else:
            outs[c.code] = OutColumn(c.code, c.label, c.kind, "decimal")
    _derived(b, spec, outs, env)
    data = [(c.code, env[c.code]) for c in spec.columns if c.code in env and outs[c.code].kind != "gap"]
    prov = []
    for key, (alias, ledger, pulled) in records.items():
        # Everything but the pulled fields' entries goes: one operator per record instead of one lookup
        # per cell, and no provenance of fields the report does not show is copied.
        # "*" stays: a bulk load's one provenance entry for every field (see cell_provenance).
        drop = [f.code for f in b.catalog.ledgers[ledger].fields if f.code not in pulled]
        prov.append((key, alias.c.provenance.op("-", return_type=JSONB)(literal(drop, ARRAY(Text)))))
    t0 = b.base
    stmt = (
        select(
            cast(t0.c.id, Text).label("row_key"),
            func.row_number().over(order_by=(t0.c.region_code, t0.c.id)).label("row_no"),
            null().cast(Text).label("label"),
            t0.c.id.label("record_id"),
            t0.c.region_code.label("region_code"),
            _jsonb(data).label("data"),
            _jsonb(prov).label("prov"),
            _jsonb(links).label("links"),
            _jsonb(prefill).label("prefill"),
        )
        .select_from(b.from_)
        .where(*base_where)
    )
    return stmt, [outs[c.code] for c in spec.columns]


def _aggregate(b: _Builder, spec: TemplateSpec, base_where: list) -> tuple[Select, list[OutColumn]]:
    rows = spec.rows
    t0 = b.base
    if rows.by == "code":
        got = b.raw(rows.path, "body.rows.path") if rows.path else None
        if rows.path is None:
            b.errors.append(FieldError("body.rows.path", "template.rows_path", "按代码分行需要代码表字段路径"))
        elif got is not None and got[1].type != FieldType.code:
            b.errors.append(FieldError("body.rows.path", "template.rows_path", "按代码分行的字段须为代码表类型"))
            got = None
        key = got[0] if got else null()
        cl = b.catalog.codelists.get(got[1].codelist) if got else None
        items = list(cl.values.items()) if cl else [("", "")]
        b.code_rows = len(items)
        src = values(column("key", String), column("label", String), name="v").data(items)
        src_key, src_label, src_region, src_where = src.c.key, src.c.label, null().cast(Text), true()
    else:
        n = 12 if rows.by == "village" else 9
        key = func.left(t0.c.region_code, literal_column(str(n)))  # a constant: GROUP BY must match it
        if n == 9:
            key = func.concat(key, literal_column("'000'"))
        src = Region.__table__.alias("r")
        src_key, src_label, src_region = src.c.code, src.c.name, src.c.code
        src_where = and_(src.c.code.like(b.area + "%"), src.c.level == (5 if n == 12 else 4))
    outs: dict[str, OutColumn] = {}
    inner_cols: list[ColumnElement] = []
    kinds: dict[str, str] = {}
    for i, c in enumerate(spec.columns):
        where = f"body.columns.{i}"
        if isinstance(c, AggregateColumn):
            n_err = len(b.errors) + len(b.denied)
            agg, typ = _agg(b, c, where)
            outs[c.code] = OutColumn(c.code, c.label, "aggregate", typ, path=c.path, fn=c.fn)
            inner_cols.append(agg.label(c.code))
            kinds[c.code] = c.fn
            if c.fn == "avg" and c.path and n_err == len(b.errors) + len(b.denied):
                # Sum and count ride along so merged rows and district totals recompute the mean exactly.
                s_n = _agg(b, AggregateColumn(kind="aggregate", code=c.code, label=c.label, fn="sum", path=c.path,
                                              filter=c.filter), where)[0]
                n_n = _agg(b, AggregateColumn(kind="aggregate", code=c.code, label=c.label, fn="count", path=c.path,
                                              filter=c.filter), where)[0]
                inner_cols += [s_n.label(f"__s_{c.code}"), n_n.label(f"__n_{c.code}")]
                kinds[f"__s_{c.code}"], kinds[f"__n_{c.code}"] = "sum", "count"
        elif isinstance(c, GapColumn):
            out, _ = b.gap(c, where)
            outs[c.code] = out
        elif isinstance(c, FieldColumn):
            b.errors.append(FieldError(f"{where}.kind", "template.field_in_aggregate",
                                       "统计式报表的列应为统计、公式、比例或空缺列"))
            outs[c.code] = OutColumn(c.code, c.label or c.code, "field", "text")
        else:
            outs[c.code] = OutColumn(c.code, c.label, c.kind, "decimal")
    inner = (select(key.label("k"), *inner_cols).select_from(b.from_).where(*base_where).group_by(key)
             .subquery("a"))
    env: dict[str, ColumnElement] = {}
    for code, fn in kinds.items():
        col = inner.c[code]
        env[code] = func.coalesce(col, 0) if fn in ("count", "count_distinct", "sum") else col
    _derived(b, spec, outs, env)
    data = [(c.code, env[c.code]) for c in spec.columns if c.code in env and outs[c.code].kind != "gap"]
    data += [(k, v) for k, v in env.items() if k.startswith("__")]
    stmt = (
        select(
            cast(src_key, Text).label("row_key"),
            func.row_number().over(order_by=src_key).label("row_no"),
            cast(src_label, Text).label("label"),
            null().cast(Integer).label("record_id"),
            src_region.label("region_code"),
            _jsonb(data).label("data"),
            cast(literal("{}"), JSONB).label("prov"),
            cast(literal("{}"), JSONB).label("links"),
            cast(literal("{}"), JSONB).label("prefill"),
        )
        .select_from(src.outerjoin(inner, inner.c.k == src_key))
        .where(src_where)
    )
    return stmt, [outs[c.code] for c in spec.columns]


def _agg(b: _Builder, c: AggregateColumn, where: str) -> tuple[ColumnElement, str]:
    typ = "integer"
    if c.path is None:
        if c.fn != "count":
            b.errors.append(FieldError(f"{where}.path", "template.aggregate_path", "该统计需要字段路径"))
        expr = func.count()
    else:
        got = b.raw(c.path, f"{where}.path")
        if got is None:
            return null(), typ
        col, f = got
        if c.fn in ("sum", "avg") and f.type.value not in NUMERIC:
            b.errors.append(FieldError(f"{where}.path", "template.aggregate_type", "求和、平均只用于数值字段"))
        if c.fn in ("min", "max") and f.type.value not in (*NUMERIC, "date", "datetime"):
            b.errors.append(FieldError(f"{where}.path", "template.aggregate_type", "最小、最大只用于数值或日期字段"))
        match c.fn:
            case "count":
                expr = func.count(col)
            case "count_distinct":
                expr = func.count(distinct(col))
            case "sum":
                expr, typ = func.sum(col), f.type.value
            case "avg":
                expr, typ = func.avg(col), "decimal"
            case "min":
                expr, typ = func.min(col), f.type.value
            case _:
                expr, typ = func.max(col), f.type.value
    conds = b.conditions(c.filter, f"{where}.filter")
    if conds:
        expr = expr.filter(and_(*conds))
    if c.fn == "avg":
        expr = func.round(expr, 2)  # after FILTER: it belongs to the aggregate, not to round()
    return expr, typ


def cell_provenance(prov: dict | None, columns: list[OutColumn]) -> dict:
    """A stored row's provenance per pulled column: {column code: the field's provenance or null}.

    Keys come in JSONB's order (shorter first, then bytewise), as when each cell's was stored apart.
    """
    prov = prov or {}
    if not any(k.startswith(PROV_PREFIX) for k in prov):
        return prov  # stored per column already
    out = {}
    for c in columns:
        if c.prov_key is not None and c.ledger_field:
            rec = prov.get(c.prov_key)
            # A field's own entry, else the record's "*" entry (bulk loads stamp every field at once).
            out[c.code] = (rec.get(c.ledger_field.partition(".")[2]) or rec.get("*")) if isinstance(rec, dict) else None
    return {k: out[k] for k in sorted(out, key=lambda k: (len(k.encode()), k.encode()))}


__all__ = ["Compiled", "OutColumn", "cell_provenance", "compile_template", "department_principal",
           "department_policies"]
