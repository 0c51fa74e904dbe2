"""What one reader sees of report output: the department's stored or live cells cut to the READER's policy.

Pre-filled cells were computed with the owning department's rights at dispatch. Whoever reads them —
the filling township, a village of it, the department's staff or service accounts, a platform admin —
gets them through its own `LedgerPolicy` (docs/access.md), like a REST read:

- rows: only those whose region (the row's record, or its village / township for aggregate rows) is in
  the reader's row scope of the template's ledger; a column read from another ledger also needs that
  ledger's scope;
- a column over a field the reader has hidden is absent (blank in sheets); masked, it is masked by the
  field's mask rule, in SQL; an aggregate needs the plain value (read) of what it aggregates and filters
  on, else it is blank with a reason; a formula or ratio is blank unless every column it uses is plain;
- a template whose own filter (or code rows) rests on a field the reader may not filter (group) by is
  refused as a whole: which rows it lists would tell that field.

Stored rows are cut in SQL (`ReaderCut.cells`); live pull-only reports are compiled with the
intersection of both policies (`narrowed`), then cut the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, false, func, literal, null, or_, true
from sqlalchemy.sql.elements import ColumnElement

from app.access.audit import append
from app.access.levels import Level
from app.access.masks import mask_text
from app.access.policy import FieldAccess, LedgerPolicy, LinkPolicy
from app.auth.principal import Principal
from app.catalog.loader import get_catalog
from app.catalog.model import MaskRule, Sensitivity
from app.errors import FieldError, Problem
from app.query.paths import Hop, PathError, PathRef, parse, policy_of
from app.report import formula as fm
from app.report.compiler import BASE, OutColumn, department_policies, jsonb
from app.report.compiler.builder import MANY_OPS
from app.report.dsl import AggregateColumn, FieldColumn, FormulaColumn, GapColumn, RatioColumn, TemplateSpec

PLAIN, MASKED, HIDDEN, DENIED = "plain", "masked", "hidden", "denied"
REASON_ZH = {
    "access.field_hidden": "无权读取该列所用字段",
    "access.field_masked": "该列所用字段对您脱敏，不能统计",
    "report.source_restricted": "该列由您无权读取明文的列计算而来",
}


@dataclass(frozen=True)
class ColumnCut:
    level: str  # plain | masked | hidden | denied (blank with a reason)
    ledgers: frozenset[str]  # ledgers whose row scope must hold the row for the value to show
    mask: MaskRule | None = None
    reason: str | None = None  # problem code when not plain
    sensitive: bool = False  # a plain sensitive / secret ledger value: reading it is audited


@dataclass
class ReaderCut:
    principal: Principal
    policies: dict[str, LedgerPolicy]
    root: str
    columns: dict[str, ColumnCut]

    # ---- rows ---------------------------------------------------------------------------------
    def _covers(self, ledger: str, region: ColumnElement) -> ColumnElement:
        scope = self.policies[ledger].scope
        if not scope:
            return false()
        if "" in scope:
            return true()
        return or_(*[region.like(p + "%") for p in scope])

    def discloses_presence(self, code: str) -> bool:
        """May the reader learn whether a column's cell holds a value (its provenance says so)? Not for
        hidden or denied cells, nor for those masked `full`, as LedgerPolicy.discloses_presence."""
        cut = self.columns.get(code)
        if cut is None or cut.level in (HIDDEN, DENIED):
            return False
        return cut.level != MASKED or cut.mask != MaskRule.full

    def rows(self, region: ColumnElement) -> ColumnElement:
        """Rows the reader may see: the region of the row in its scope of the template's ledger."""
        return self._covers(self.root, region)

    def cells(
        self, cols: list[OutColumn], data: ColumnElement, gaps: ColumnElement, region: ColumnElement | None
    ) -> tuple[ColumnElement, ColumnElement]:
        """(data, gaps) JSONB as the reader sees them: hidden and denied cells absent, masked ones masked.

        region None: the rows were computed with the reader's scopes already (live reads), no per-ledger
        check is left to do."""
        root_scope = self.policies[self.root].scope
        out: dict[str, list] = {"data": [], "gaps": []}
        for c in cols:
            cut = self.columns[c.code]
            if cut.level in (HIDDEN, DENIED):
                continue
            src = gaps if c.kind == "gap" else data
            value: ColumnElement[Any] = src.op("->")(literal(c.code, String))
            if cut.level == MASKED and not c.masked:  # stored plain (the department's right): mask it
                assert cut.mask is not None  # a MASKED cut carries its rule
                value = func.to_jsonb(mask_text(cut.mask, src.op("->>")(literal(c.code, String))))
            others = [lg for lg in sorted(cut.ledgers) if self.policies[lg].scope != root_scope]
            held = (
                and_(*[self._covers(lg, region) for lg in others]) if others and region is not None else None
            )
            if held is not None:
                value = case((held, value), else_=null())
            out["gaps" if c.kind == "gap" else "data"].append((c.code, value))
            # Carried along for merged rows and totals: a mean's sum and count, a distinct count's values.
            carried = {"avg": (f"__s_{c.code}", f"__n_{c.code}"), "count_distinct": (f"__d_{c.code}",)}
            if c.kind == "aggregate" and c.fn in carried:
                for k in carried[c.fn]:
                    carry = data.op("->")(literal(k, String))
                    out["data"].append((k, carry if held is None else case((held, carry), else_=null())))
        return jsonb(out["data"]), jsonb(out["gaps"])

    # ---- columns ------------------------------------------------------------------------------
    def out_columns(self, cols: list[OutColumn]) -> list[OutColumn]:
        """Columns as the reader sees them: hidden ones dropped, reader-masked ones typed as masked text."""
        out = []
        for c in cols:
            cut = self.columns[c.code]
            if cut.level == HIDDEN:
                continue
            if cut.level == MASKED and not c.masked:
                c = dataclasses.replace(c, masked=True, type="text")
            out.append(c)
        return out

    def public(self, cols: list[OutColumn]) -> list[dict]:
        out = []
        for c in self.out_columns(cols):
            d = c.public()
            cut = self.columns[c.code]
            if cut.level == DENIED:
                d["withheld"] = {"code": cut.reason, "reason": REASON_ZH.get(cut.reason or "", "无权读取")}
            out.append(d)
        return out


# ---- building the cut ---------------------------------------------------------------------------


def _fail(fn) -> str | None:
    try:
        fn()
    except Problem as p:
        return p.code
    return None


def build_cut(
    principal: Principal, spec: TemplateSpec, cols: list[OutColumn], policies: dict[str, LedgerPolicy]
) -> ReaderCut:
    """The reader's cut of a template's columns (pure: paths resolved against the catalogue)."""
    catalog = get_catalog()
    root = spec.ledger

    def field(path: str, ledger: str = root, link_hop: Hop | None = None) -> PathRef | None:
        try:
            return parse(catalog, ledger, path, link_hop=link_hop)
        except PathError:
            return None

    def check_conds(conds, ledger: str = root, link_hop: Hop | None = None) -> tuple[str | None, set[str]]:
        """(why the reader may not use these conditions or None, the ledgers they read), nested ones too."""
        ledgers: set[str] = set()
        for cond in conds:
            if cond.op in MANY_OPS:
                try:
                    ref = parse(catalog, ledger, cond.path, ends_at_ledger=True, link_hop=link_hop)
                except PathError:
                    return "access.field_hidden", ledgers
                ledgers |= {h.far for h in ref.hops}
                code, more = check_conds(cond.where, ref.ledger, ref.hops[-1])
                ledgers |= more
                if code:
                    return code, ledgers
                continue
            got = field(cond.path, ledger, link_hop)
            if got is None or got.field is None:
                return "access.field_hidden", ledgers
            ledgers.add(got.ledger)
            pol = policy_of(got, policies)
            if code := _fail(lambda f=got.field, pol=pol, cond=cond: pol.check_filter(f.code, cond.op, "x")):
                return code, ledgers
        return None, ledgers

    # The template's own filter and code rows decide which rows exist: the reader must be able to use them.
    denied: list[FieldError] = []
    for i, cond in enumerate(spec.filter):
        if code := check_conds([cond])[0]:
            denied.append(FieldError(f"spec.filter.{i}.path", code, "报表的筛选条件使用了您无权筛选的字段"))
    if spec.kind == "aggregate" and spec.rows is not None and spec.rows.by == "code" and spec.rows.path:
        f = field(spec.rows.path)
        if f and (code := _fail(lambda f=f: policy_of(f, policies).check_sort(f.field.code, "x"))):
            denied.append(FieldError("spec.rows.path", code, "报表按您无权分组的字段分行"))
    if denied:
        raise Problem(
            403, "report.reader_restricted", "本报表的行由您无权读取的字段决定，不能查看", errors=denied
        )

    by_spec = {c.code: c for c in spec.columns}
    cuts: dict[str, ColumnCut] = {}

    def level_of(ref: PathRef) -> ColumnCut:
        assert ref.field is not None  # a column's path ends at a field
        code, ledgers = ref.field.code, frozenset({root, ref.ledger})
        pol = policy_of(ref, policies)
        if code in BASE and not ref.attribute:
            return ColumnCut(PLAIN, ledgers)
        if isinstance(pol, LinkPolicy):  # link attributes: read or hidden, never masked
            return (
                ColumnCut(PLAIN, ledgers)
                if pol.level(code) >= Level.read
                else ColumnCut(HIDDEN, ledgers, reason="access.field_hidden")
            )
        fa: FieldAccess | None = pol.fields.get(code)
        if fa is None or fa.level == Level.hidden:
            return ColumnCut(HIDDEN, ledgers, reason="access.field_hidden")
        if fa.level == Level.masked:
            return ColumnCut(MASKED, ledgers, mask=fa.mask, reason="access.field_masked")
        return ColumnCut(
            PLAIN, ledgers, sensitive=fa.field.sensitivity in (Sensitivity.sensitive, Sensitivity.secret)
        )

    for c in cols:
        sc = by_spec.get(c.code)
        if isinstance(sc, FieldColumn):
            f = field(sc.path)
            cuts[c.code] = (
                level_of(f) if f else ColumnCut(HIDDEN, frozenset({root}), reason="access.field_hidden")
            )
        elif isinstance(sc, GapColumn):
            # A write-back gap carries the ledger field's value (pre-filled, then written back): same cut.
            f = field(sc.write_back) if sc.write_back and spec.kind == "list" else None
            cuts[c.code] = level_of(f) if f else ColumnCut(PLAIN, frozenset({root}))
        elif isinstance(sc, AggregateColumn):
            reason, ledgers = check_conds(sc.filter)
            if sc.path and reason is None:
                f = field(sc.path)
                if f is None:
                    reason = "access.field_hidden"
                else:
                    ledgers.add(f.ledger)
                    reason = _fail(lambda f=f: policy_of(f, policies).check_sort(f.field.code, "x"))
            lg = frozenset({root, *ledgers})
            cuts[c.code] = ColumnCut(DENIED, lg, reason=reason) if reason else ColumnCut(PLAIN, lg)
    # Formulas and ratios: plain only when everything they are computed from is (else they rebuild it).
    pending = {
        c.code: sc for c in cols if isinstance(sc := by_spec.get(c.code), (FormulaColumn, RatioColumn))
    }
    for _ in range(len(pending) + 1):
        for code, sc in list(pending.items()):
            refs = (
                fm.refs(fm.parse(sc.expr))
                if isinstance(sc, FormulaColumn)
                else {sc.numerator, sc.denominator}
            )
            if any(r in pending for r in refs):
                continue
            got = [cuts.get(r) for r in refs]
            lg = frozenset({root}).union(*[g.ledgers for g in got if g])
            ok = all(g is not None and g.level == PLAIN for g in got)
            cuts[code] = (
                ColumnCut(PLAIN, lg) if ok else ColumnCut(DENIED, lg, reason="report.source_restricted")
            )
            del pending[code]
    for code in pending:  # a cycle (refused at compile time anyway)
        cuts[code] = ColumnCut(DENIED, frozenset({root}), reason="report.source_restricted")
    for c in cols:
        cuts.setdefault(c.code, ColumnCut(DENIED, frozenset({root}), reason="report.source_restricted"))
    return ReaderCut(principal, policies, root, cuts)


async def reader_cut(session, principal: Principal, spec: TemplateSpec, cols: list[OutColumn]) -> ReaderCut:
    """The reader's own policies (`policy_for` for every ledger, one grant lookup) and its cut."""
    return build_cut(principal, spec, cols, await department_policies(session, principal))


# ---- live reads: both policies at once ------------------------------------------------------------


def _narrow_scope(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    out = set()
    for x in a:
        for y in b:
            if x.startswith(y):
                out.add(x)
            elif y.startswith(x):
                out.add(y)
    return tuple(sorted(out))


def narrowed(dept: dict[str, LedgerPolicy], reader: dict[str, LedgerPolicy]) -> dict[str, LedgerPolicy]:
    """Per ledger, the lower level of each field and the intersection of the row scopes: what a live
    report read may compute for this reader (the department's rights bound the report, the reader's its view)."""
    out = {}
    for code, d in dept.items():
        r = reader[code]
        fields = {}
        for f, fa in d.fields.items():
            ra = r.fields.get(f)
            if ra is None or ra.level < fa.level:
                fields[f] = ra or dataclasses.replace(fa, level=Level.hidden)
            else:
                fields[f] = dataclasses.replace(fa, allow_lookup=fa.allow_lookup and ra.allow_lookup)
        out[code] = dataclasses.replace(
            r,
            fields=fields,
            scope=_narrow_scope(d.scope, r.scope),
            scope_reason=f"{d.scope_reason} ∩ {r.scope_reason}",
        )
    return out


# ---- audit --------------------------------------------------------------------------------------


async def audit_rows(
    session, cut: ReaderCut, cols: list[OutColumn], record_ids: list[int], path: str, detail: dict
) -> None:
    """A report read that returned plain sensitive ledger values is logged like a REST read: ledger of
    the rows, their record ids, the template paths of those values, the read's path."""
    paths = sorted({c.path or ".".join(c.write_back or ()) for c in cols if cut.columns[c.code].sensitive})
    ids = [i for i in record_ids if i is not None]
    if paths and ids:
        await append(
            session,
            actor=cut.principal.actor,
            action="read_sensitive",
            path=path,
            ledger=cut.root,
            record_ids=ids,
            fields=paths,
            detail=detail,
        )


def holds_township(scope: tuple[str, ...], township_code: str) -> bool:
    """Whether a row scope holds a whole township (its counts are then the reader's to see)."""
    return any(township_code[:9].startswith(p) for p in scope)


# ---- admission analysis -------------------------------------------------------------------------


async def cut_analysis(session, principal: Principal, spec: dict, analysis: dict | None) -> dict | None:
    """An admission analysis as the reader may see it: its per-township row counts (records matching the
    template's filter, counted with the department's rights) only for townships wholly in the reader's
    scope of the template's ledger, and none when the reader may not use the template's filter."""
    if not analysis or not analysis.get("townships"):
        return analysis
    parsed = TemplateSpec.model_validate(spec)
    policies = await department_policies(session, principal)
    try:
        build_cut(principal, parsed, [], policies)
        scope = policies[parsed.ledger].scope
    except Problem:
        scope = ()
    towns = [t for t in analysis["townships"] if holds_township(scope, t["township_code"])]
    total = sum(t["typed_cells"] for t in towns)
    return {
        **analysis,
        "townships": towns,
        "typed_cells_total": total,
        "typed_cells_per_township": round(total / len(towns), 1) if towns else 0,
    }
