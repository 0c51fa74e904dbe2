"""Rules across the cells of one row: a gap column's `required_when` (required only when the row meets a
condition, e.g. 低保户数 > 0) and a template's `rules` (cross-column checks such as visited <= households).

One compiled form serves every place that checks them: definition (422 with body.* paths), saving cells
(JSON and XLSX upload), submit, and the task's column metadata for the grid. Conditions use the formula
language of app/report/formula.py (no eval; bounded length and depth); an empty operand makes a
condition unknown, which neither breaks a rule nor makes a cell required.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.catalog.coerce import is_blank
from app.errors import FieldError, invalid
from app.report import formula as fm
from app.report.compiler import OutColumn
from app.report.dsl import GapColumn, TemplateSpec

COMPARABLE = {"integer", "decimal", "boolean"}


@dataclass(frozen=True)
class RowRule:
    kind: str  # "check" (template rules) | "required_when" (a gap column's condition)
    index: int  # position in spec.rules, or of the gap column in spec.columns
    expr: str
    node: fm.Node
    column: str  # the column a failure is shown on
    refs: tuple[str, ...]  # the columns the condition reads
    message: str  # Chinese, for the filler

    def public(self) -> dict:
        return {
            "kind": self.kind,
            "expr": self.expr,
            "column": self.column,
            "columns": list(self.refs),
            "message": self.message,
        }


@dataclass(frozen=True)
class RuleFailure:
    rule: RowRule
    row_key: str
    row_no: int

    def reason(self, labels: dict[str, str]) -> str:
        return f"第 {self.row_no} 行“{labels.get(self.rule.column, self.rule.column)}”：{self.rule.message}"


def compile_rules(spec: TemplateSpec, cols: list[OutColumn]) -> tuple[list[RowRule], list[FieldError]]:
    """The template's row rules, checked against its columns; errors name body.* paths."""
    by_code = {c.code: c for c in cols}
    labels = {c.code: c.label for c in cols}
    out: list[RowRule] = []
    errors: list[FieldError] = []

    def refs_ok(node: fm.Node, where: str, own: str | None) -> tuple[str, ...] | None:
        used = sorted(fm.refs(node))
        bad = False
        for ref in used:
            col = by_code.get(ref)
            if col is None:
                errors.append(FieldError(where, "rule.unknown_column", f"没有代码为“{ref}”的列"))
                bad = True
            elif ref == own:
                errors.append(FieldError(where, "rule.self_reference", "条件必填的条件不能引用本列"))
                bad = True
            elif col.type not in COMPARABLE or col.masked:
                errors.append(
                    FieldError(where, "rule.not_numeric", f"列“{col.label}”不是数值或是否型，不能用于比较")
                )
                bad = True
        return None if bad else tuple(used)

    for i, c in enumerate(spec.columns):
        if isinstance(c, GapColumn) and c.required_when is not None:
            where = f"body.columns.{i}.required_when"
            node = _parse(c.required_when, where, errors)
            if node is None:
                continue
            used = refs_ok(node, where, c.code)
            if used is not None:
                out.append(
                    RowRule(
                        "required_when",
                        i,
                        c.required_when,
                        node,
                        c.code,
                        used,
                        f"当“{fm.describe(node, labels)}”时必填",
                    )
                )
    for i, r in enumerate(spec.rules):
        where = f"body.rules.{i}"
        node = _parse(r.expr, f"{where}.expr", errors)
        if node is None:
            continue
        used = refs_ok(node, f"{where}.expr", None)
        if used is None:
            continue
        gaps = [x for x in used if by_code[x].kind == "gap"]
        if not gaps:
            errors.append(
                FieldError(
                    f"{where}.expr",
                    "rule.no_gap",
                    "规则至少要涉及一个空缺列（全部由台账生成的列镇街无法更正）",
                )
            )
            continue
        column = r.column or gaps[0]
        if column not in by_code:
            errors.append(FieldError(f"{where}.column", "rule.unknown_column", f"没有代码为“{column}”的列"))
            continue
        out.append(RowRule("check", i, r.expr, node, column, used, r.message))
    return out, errors


def _parse(src: str, where: str, errors: list[FieldError]) -> fm.Node | None:
    try:
        return fm.parse_condition(src)
    except fm.FormulaError as e:
        errors.append(FieldError(where, e.code, e.message))
        return None


def check_definition(spec: TemplateSpec, cols: list[OutColumn]) -> None:
    errors = compile_rules(spec, cols)[1]
    if errors:
        raise invalid(errors, "报表模板的校验规则有误")


def usable(spec: TemplateSpec, cols: list[OutColumn]) -> list[RowRule]:
    """Rules of a stored (admitted) template; any that no longer compile (a column lost its grant and
    became masked) are skipped rather than blocking every save."""
    return compile_rules(spec, cols)[0]


def _value(v: object) -> Decimal | None:
    if v is None or is_blank(v):
        return None
    if isinstance(v, bool):
        return Decimal(int(v))
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def row_env(data: dict | None, gaps: dict | None, codes: set[str]) -> dict[str, Decimal | None]:
    """A row's values as the conditions see them: pulled data and gap cells, booleans as 1 / 0."""
    data, gaps = data or {}, gaps or {}
    return {c: _value(gaps[c] if c in gaps else data.get(c)) for c in codes}


def failures(
    rules: list[RowRule],
    row_key: str,
    row_no: int,
    data: dict | None,
    gaps: dict | None,
    *,
    with_required: bool,
) -> list[RuleFailure]:
    """The rules this row breaks. required_when only at submit (with_required): like `required`, a
    conditionally required cell may stay empty while the township is still filling."""
    if not rules:
        return []
    codes = {r for rule in rules for r in rule.refs} | {rule.column for rule in rules}
    env = row_env(data, gaps, codes)
    out = []
    for rule in rules:
        if rule.kind == "check":
            if fm.holds(rule.node, env) is False:
                out.append(RuleFailure(rule, row_key, row_no))
        elif with_required and fm.holds(rule.node, env) is True and is_blank((gaps or {}).get(rule.column)):
            out.append(RuleFailure(rule, row_key, row_no))
    return out


def referenced(rules: list[RowRule]) -> set[str]:
    return {r for rule in rules for r in rule.refs} | {rule.column for rule in rules}


def annotate(public_cols: list[dict], rules: list[RowRule]) -> list[dict]:
    """Column metadata for the grid: each gap column's required_when (expression and message)."""
    when = {r.column: r for r in rules if r.kind == "required_when"}
    return [
        {**c, "required_when": {"expr": when[c["code"]].expr, "message": when[c["code"]].message}}
        if c.get("code") in when
        else c
        for c in public_cols
    ]


__all__ = [
    "RowRule",
    "RuleFailure",
    "annotate",
    "check_definition",
    "compile_rules",
    "failures",
    "referenced",
    "row_env",
    "usable",
]
