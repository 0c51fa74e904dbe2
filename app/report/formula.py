"""The formula language of report columns: + - * / parentheses, numbers and column codes; and, for the
rules of a row (app/report/rules.py), conditions over it: comparisons (< <= > >= = !=), and / or / not.

Parsed here into a small tree and compiled to SQL by the compiler; nothing is ever evaluated by
Python's eval. Division compiles to a / NULLIF(b, 0): an empty denominator gives an empty cell.
Expressions are at most 300 characters (the DSL) and MAX_DEPTH deep, so parsing is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>[a-z][a-z0-9_]*)|(?P<op><=|>=|==|!=|<>|[-+*/()<>=])|(?P<bad>\S))"
)
MAX_DEPTH = 30


@dataclass(frozen=True)
class Num:
    value: Decimal


@dataclass(frozen=True)
class Ref:
    code: str


@dataclass(frozen=True)
class Neg:
    arg: Node


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Cmp:
    op: str  # < <= > >= = !=
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    arg: Node


Node = Num | Ref | Neg | BinOp | Cmp | BoolOp | Not
KEYWORDS = {"and", "or", "not", "true", "false"}
_CMP = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "==": "=", "!=": "!=", "<>": "!="}


class FormulaError(Exception):
    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(message)


def _tokens(src: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:  # only trailing whitespace is left
            break
        kind = m.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        if kind == "bad":
            raise FormulaError("formula.syntax", f"第 {m.start(kind) + 1} 个字符不是公式允许的符号")
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def parse(src: str) -> Node:
    """An arithmetic formula (a column's value)."""
    return _Parser(src, condition=False).run()


def parse_condition(src: str) -> Node:
    """A condition over a row: comparisons of formulas joined by and / or / not, e.g.
    `visited <= households`, `dibao > 0 and (a + b) >= c`. true / false stand for 1 / 0 (boolean cells)."""
    return _Parser(src, condition=True).run()


class _Parser:
    def __init__(self, src: str, *, condition: bool) -> None:
        self.toks, self.i, self.condition = _tokens(src), 0, condition

    def run(self) -> Node:
        if not self.toks:
            raise FormulaError("formula.syntax", "公式为空")
        tree = self.cond(0) if self.condition else self.expr(0)
        if self.i != len(self.toks):
            raise FormulaError("formula.syntax", f"第 {self.toks[self.i][2] + 1} 个字符处多余")
        if self.condition and not isinstance(tree, (Cmp, BoolOp, Not)):
            raise FormulaError("rule.not_condition", "条件须是比较，如 visited <= households")
        return tree

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str, int]:
        t = self.peek()
        if t is None:
            raise FormulaError("formula.syntax", "公式不完整")
        self.i += 1
        return t

    def word(self, w: str) -> bool:
        t = self.peek()
        if t is not None and t[0] == "name" and t[1] == w:
            self.i += 1
            return True
        return False

    # conditions: cond := conj ("or" conj)* ; conj := neg ("and" neg)* ; neg := "not" neg | atom
    def cond(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise FormulaError("formula.too_deep", "公式嵌套过深")
        args = [self.conj(depth)]
        while self.word("or"):
            args.append(self.conj(depth))
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def conj(self, depth: int) -> Node:
        args = [self.neg(depth)]
        while self.word("and"):
            args.append(self.neg(depth))
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def neg(self, depth: int) -> Node:
        if self.word("not"):
            return Not(self.neg(depth + 1))
        return self.atom(depth)

    def atom(self, depth: int) -> Node:
        start = self.i
        try:  # a comparison, whose left side may itself start with "(": (a + b) > c
            left = self.expr(depth + 1)
            t = self.peek()
            if t is None or t[0] != "op" or t[1] not in _CMP:
                raise FormulaError("rule.comparison_missing", "缺少比较符号（< <= > >= = !=）")
            self.take()
            return Cmp(_CMP[t[1]], left, self.expr(depth + 1))
        except FormulaError:
            t = self.toks[start] if start < len(self.toks) else None
            if t is None or t[1] != "(":
                raise
        self.i = start + 1  # a parenthesised condition: (a > 0 or b > 0) and c > 0
        node = self.cond(depth + 1)
        if self.take()[1] != ")":
            raise FormulaError("formula.syntax", "括号不匹配")
        return node

    # arithmetic: expr := term (("+" | "-") term)* ; term := factor (("*" | "/") factor)*
    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise FormulaError("formula.too_deep", "公式嵌套过深")
        node = self.term(depth)
        while (t := self.peek()) and t[0] == "op" and t[1] in ("+", "-"):
            self.take()
            node = BinOp(t[1], node, self.term(depth))
        return node

    def term(self, depth: int) -> Node:
        node = self.factor(depth)
        while (t := self.peek()) and t[0] == "op" and t[1] in ("*", "/"):
            self.take()
            node = BinOp(t[1], node, self.factor(depth))
        return node

    def factor(self, depth: int) -> Node:
        kind, text, pos = self.take()
        if kind == "num":
            return Num(Decimal(text))
        if kind == "name":
            if self.condition and text in KEYWORDS:
                if text in ("true", "false"):
                    return Num(Decimal(1 if text == "true" else 0))
                raise FormulaError("formula.syntax", f"第 {pos + 1} 个字符处缺少数字或列代码")
            return Ref(text)
        if text == "-":
            return Neg(self.factor(depth + 1))
        if text == "(":
            node = self.expr(depth + 1)
            if self.take()[1] != ")":
                raise FormulaError("formula.syntax", "括号不匹配")
            return node
        raise FormulaError("formula.syntax", f"第 {pos + 1} 个字符处缺少数字或列代码")


def refs(node: Node) -> set[str]:
    match node:
        case Ref(code):
            return {code}
        case Neg(arg):
            return refs(arg)
        case BinOp(_, left, right) | Cmp(_, left, right):
            return refs(left) | refs(right)
        case BoolOp(_, args):
            return set().union(*(refs(a) for a in args))
        case Not(arg):
            return refs(arg)
    return set()


def derived_trees(spec) -> dict[str, tuple[Node, int]]:
    """The formula and ratio columns of a template as trees with their scale (unparsable ones left out:
    admission refuses them before any task or total exists)."""
    from app.report.dsl import FormulaColumn, RatioColumn

    out: dict[str, tuple[Node, int]] = {}
    for c in spec.columns:
        if isinstance(c, FormulaColumn):
            try:
                out[c.code] = (parse(c.expr), c.scale)
            except FormulaError:
                continue
        elif isinstance(c, RatioColumn):
            out[c.code] = (ratio_tree(c.numerator, c.denominator, c.percent), c.scale)
    return out


def ratio_tree(numerator: str, denominator: str, percent: bool) -> Node:
    num = BinOp("*", Ref(numerator), Num(Decimal(100))) if percent else Ref(numerator)
    return BinOp("/", num, Ref(denominator))


def rounded(value: Decimal, scale: int) -> Decimal:
    """round(value, scale) for any magnitude: round() quantizes in the default decimal context (28
    digits) and raises InvalidOperation past it, which a 30-digit literal in a formula reaches."""
    context = Context(prec=max(28, value.adjusted() + scale + 2))
    return value.quantize(Decimal(1).scaleb(-scale), context=context)


def evaluate(node: Node, env: Mapping[str, object]) -> Decimal | None:
    """Recompute a formula over merged values (district totals); empty operands or /0 give None."""
    match node:
        case Num(v):
            return v
        case Ref(code):
            value = env.get(code)
            return None if value is None or isinstance(value, bool) else Decimal(str(value))
        case Neg(arg):
            a = evaluate(arg, env)
            return None if a is None else -a
        case BinOp(op, left, right):
            a, b = evaluate(left, env), evaluate(right, env)
            if a is None or b is None:
                return None
            if op == "+":
                return a + b
            if op == "-":
                return a - b
            if op == "*":
                return a * b
            return None if b == 0 else a / b
    raise AssertionError(node)


def holds(node: Node, env: dict[str, Decimal | None]) -> bool | None:
    """A condition over a row's values: True, False, or None when an operand is empty (unknown, as in
    SQL): an empty cell neither breaks a rule nor makes a column required; `required` catches blanks."""
    match node:
        case Cmp(op, left, right):
            a, b = evaluate(left, env), evaluate(right, env)
            if a is None or b is None:
                return None
            return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b, "=": a == b, "!=": a != b}[op]
        case BoolOp("and", args):
            got = [holds(a, env) for a in args]
            return False if False in got else (None if None in got else True)
        case BoolOp(_, args):
            got = [holds(a, env) for a in args]
            return True if True in got else (None if None in got else False)
        case Not(arg):
            v = holds(arg, env)
            return None if v is None else not v
    raise AssertionError(node)


def describe(node: Node, labels: dict[str, str], *, inner: bool = False) -> str:
    """The expression for people: column codes replaced by their Chinese labels."""
    match node:
        case Num(v):
            return format(v, "f")
        case Ref(code):
            return labels.get(code, code)
        case Neg(arg):
            return "-" + describe(arg, labels, inner=True)
        case BinOp(op, left, right):
            text = f"{describe(left, labels, inner=True)} {op} {describe(right, labels, inner=True)}"
            return f"({text})" if inner else text
        case Cmp(op, left, right):
            sign = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "=": "=", "!=": "≠"}[op]
            return f"{describe(left, labels)} {sign} {describe(right, labels)}"
        case BoolOp(op, args):
            return (" 且 " if op == "and" else " 或 ").join(
                describe(a, labels) if isinstance(a, Cmp) else f"（{describe(a, labels)}）" for a in args
            )
        case Not(arg):
            return f"并非（{describe(arg, labels)}）"
    raise AssertionError(node)
