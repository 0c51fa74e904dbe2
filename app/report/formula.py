"""The formula language of report columns: + - * / parentheses, numbers and column codes.

Parsed here into a small tree and compiled to SQL by the compiler; nothing is ever evaluated by
Python's eval. Division compiles to a / NULLIF(b, 0): an empty denominator gives an empty cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>[a-z][a-z0-9_]*)|(?P<op>[-+*/()])|(?P<bad>\S))")
MAX_DEPTH = 30


@dataclass(frozen=True)
class Num:
    value: Decimal


@dataclass(frozen=True)
class Ref:
    code: str


@dataclass(frozen=True)
class Neg:
    arg: "Node"


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Node"
    right: "Node"


Node = Num | Ref | Neg | BinOp


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
        if kind == "bad":
            raise FormulaError("formula.syntax", f"第 {m.start(kind) + 1} 个字符不是公式允许的符号")
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def parse(src: str) -> Node:
    toks = _tokens(src)
    i = 0

    def peek() -> tuple[str, str, int] | None:
        return toks[i] if i < len(toks) else None

    def take() -> tuple[str, str, int]:
        nonlocal i
        t = peek()
        if t is None:
            raise FormulaError("formula.syntax", "公式不完整")
        i += 1
        return t

    def expr(depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise FormulaError("formula.too_deep", "公式嵌套过深")
        node = term(depth)
        while (t := peek()) and t[1] in "+-" and t[0] == "op":
            take()
            node = BinOp(t[1], node, term(depth))
        return node

    def term(depth: int) -> Node:
        node = factor(depth)
        while (t := peek()) and t[1] in "*/" and t[0] == "op":
            take()
            node = BinOp(t[1], node, factor(depth))
        return node

    def factor(depth: int) -> Node:
        kind, text, pos = take()
        if kind == "num":
            return Num(Decimal(text))
        if kind == "name":
            return Ref(text)
        if text == "-":
            return Neg(factor(depth + 1))
        if text == "(":
            node = expr(depth + 1)
            if take()[1] != ")":
                raise FormulaError("formula.syntax", "括号不匹配")
            return node
        raise FormulaError("formula.syntax", f"第 {pos + 1} 个字符处缺少数字或列代码")

    if not toks:
        raise FormulaError("formula.syntax", "公式为空")
    tree = expr(0)
    if i != len(toks):
        raise FormulaError("formula.syntax", f"第 {toks[i][2] + 1} 个字符处多余")
    return tree


def refs(node: Node) -> set[str]:
    match node:
        case Ref(code):
            return {code}
        case Neg(arg):
            return refs(arg)
        case BinOp(_, left, right):
            return refs(left) | refs(right)
    return set()


def rounded(value: Decimal, scale: int) -> Decimal:
    """round(value, scale) for any magnitude: round() quantizes in the default decimal context (28
    digits) and raises InvalidOperation past it, which a 30-digit literal in a formula reaches."""
    context = Context(prec=max(28, value.adjusted() + scale + 2))
    return value.quantize(Decimal(1).scaleb(-scale), context=context)


def evaluate(node: Node, env: dict[str, object]) -> Decimal | None:
    """Recompute a formula over merged values (district totals); empty operands or /0 give None."""
    match node:
        case Num(v):
            return v
        case Ref(code):
            v = env.get(code)
            return None if v is None or isinstance(v, bool) else Decimal(str(v))
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
