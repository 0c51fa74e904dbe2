"""Formula and ratio columns compiled to SQL over other columns, in dependency order (cycles refused)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Numeric, cast, func, literal, null
from sqlalchemy.sql.elements import ColumnElement

from app.errors import FieldError
from app.query.formulas import evaluation_order
from app.report import formula as fm
from app.report.compiler.builder import Builder
from app.report.compiler.columns import NUMERIC, OutColumn
from app.report.dsl import FormulaColumn, RatioColumn, TemplateSpec


def formula_sql(b: Builder, node: fm.Node, env: dict[str, ColumnElement]) -> ColumnElement:
    match node:
        case fm.Num(v):
            return literal(v, Numeric)
        case fm.Ref(code):
            return cast(env[code], Numeric)
        case fm.Neg(arg):
            return -formula_sql(b, arg, env)
        case fm.BinOp(op, left, right):
            lhs, rhs = formula_sql(b, left, env), formula_sql(b, right, env)
            if op == "+":
                return lhs + rhs
            if op == "-":
                return lhs - rhs
            if op == "*":
                return lhs * rhs
            return lhs / func.nullif(rhs, 0)
    raise AssertionError(node)


def derived(
    b: Builder, spec: TemplateSpec, outs: dict[str, OutColumn], env: dict[str, ColumnElement]
) -> None:
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
            node: fm.Node = fm.BinOp("/", fm.Ref(c.numerator), fm.Ref(c.denominator))
            if c.percent:
                node = fm.BinOp(
                    "/", fm.BinOp("*", fm.Ref(c.numerator), fm.Num(Decimal(100))), fm.Ref(c.denominator)
                )
            trees[c.code] = (node, c.scale, f"{where}.numerator")
    # The one dependency order (app/query/formulas.py) that merged rows and totals use too.
    ordered = evaluation_order({code: fm.refs(node) for code, (node, _, _) in trees.items()})
    for code in ordered.cycles:
        b.errors.append(FieldError(trees[code][2], "formula.cycle", "公式循环引用"))
    for code in [*ordered.cycles, *ordered.blocked]:
        env[code] = null()
    for code in ordered.order:
        node, scale, where = trees[code]
        ok = True
        for ref in sorted(fm.refs(node)):
            col = outs.get(ref)
            if col is None:
                b.errors.append(FieldError(where, "formula.unknown_column", f"没有代码为“{ref}”的列"))
                ok = False
            elif col.kind == "gap":
                b.errors.append(FieldError(where, "formula.gap_reference", f"公式不能引用空缺列“{ref}”"))
                ok = False
            elif ref not in trees and (col.type not in NUMERIC or col.masked):
                b.errors.append(FieldError(where, "formula.not_numeric", f"列“{ref}”不是数值"))
                ok = False
        env[code] = func.round(formula_sql(b, node, env), scale) if ok else null()
