"""Compiled statements, cached per (operation, root field, caller's effective policy, variable shape).

Building a root field's statement (the compiler walking the selection and building SQLAlchemy
constructs) and compiling it to SQL text cost several ms per request, the same every time a system
repeats a query with other variable values. Here the SQL text is kept and run again with new bind
parameter values.

What may differ between two requests that share a statement:
- values of *parametric* variables: a variable every use of which (in the whole document) is a
  record id (`person(id: $id)`), a cursor (`after: $after`) or a scalar filter operand
  (`{name: {eq|ne|gt|gte|lt|lte|prefix: $v}}`). The compiler binds these (`Var` markers below) and
  records how each bound value is derived from the variable, with the same validation and errors.
  Only non-empty scalar values are bound; null and "" change the statement's shape, so they stay in
  the key. A bound value that would change the shape on a later request (a parsed `null`, a cursor
  whose values are null or of another kind) makes that request compile afresh.
- nothing else: every other variable (page sizes, `in` lists, order, group-by, directives, whole input
  objects) is part of the key with its value, and so is the caller's effective policy on every
  ledger (row scope, level, mask and lookup of every field), the page-size settings and the catalogue.
A grant change changes the effective policy, hence the key: a stale statement is never reused.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    VariableNode,
)
from graphql.execution.collect_fields import FragmentDetails

MAX_STATEMENTS = 256  # (operation, root field, policy, variable shape) combinations kept
MAX_POLICIES = 256  # distinct grant sets kept resolved to their effective-policy fingerprint

FILTER_OPERANDS = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "prefix"})


class LRU:
    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.data: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any:
        value = self.data.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self.data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self.data[key] = value
        self.data.move_to_end(key)
        while len(self.data) > self.maxsize:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()
        self.hits = self.misses = 0


@dataclass(frozen=True)
class Var:
    """A parametric variable's value as the compiler sees it: bind it, and say how."""

    name: str
    value: Any


@dataclass
class Bind:
    """Bound parameters derived from one variable: `convert` gives their values (raising the same
    errors as the compiler would), `shape` must equal the compiled one for the SQL to stay right."""

    var: str
    names: tuple[str, ...]
    convert: Callable[[Any], tuple]
    shape: Hashable


@dataclass
class Entry:
    operation: OperationDefinitionNode  # pins the id() used in the key
    sql: str
    params: dict[str, Any]
    binds: list[Bind]
    withheld: list
    audits: dict

    def params_for(self, variables: dict[str, Any]) -> dict[str, Any] | None:
        """Parameters for these variable values; None when the statement's shape would differ."""
        params = dict(self.params)
        for b in self.binds:
            values = b.convert(variables[b.var])
            if shape_of(values) != b.shape:
                return None
            for name, value in zip(b.names, values, strict=True):
                if value is not None:  # a null is IS NULL in the SQL (same shape), not a parameter
                    params[name] = value
        return params


def shape_of(values: tuple) -> Hashable:
    """What of bound values the SQL depends on: null (IS NULL, no bind) and number vs text (cursor
    values are compared as numbers or cast from text)."""
    return tuple(None if v is None else isinstance(v, (int, float)) for v in values)


statements = LRU(MAX_STATEMENTS)
policies = LRU(MAX_POLICIES)
_parametric = LRU(MAX_STATEMENTS)  # id(operation) -> (operation, frozenset of parametric variables)


def clear() -> None:
    statements.clear()
    policies.clear()
    _parametric.clear()


def parametric_variables(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDetails]
) -> frozenset[str]:
    """Variables whose every use in the operation and its fragments is a bindable position."""
    got = _parametric.get(id(operation))
    if got is not None and got[0] is operation:
        return got[1]
    uses: dict[str, bool] = {}

    def value(node: Any, path: tuple) -> None:
        if isinstance(node, VariableNode):
            name = node.name.value
            uses[name] = uses.get(name, True) and _bindable(path)
        elif isinstance(node, ObjectValueNode):
            for f in node.fields:
                value(f.value, (*path, f.name.value))
        elif isinstance(node, ListValueNode):
            for v in node.values:
                value(v, (*path, "[]"))

    def selections(node: Any) -> None:
        for d in getattr(node, "directives", None) or ():
            for a in d.arguments:
                value(a.value, ("@",))
        if isinstance(node, FieldNode):
            for a in node.arguments or ():
                value(a.value, (a.name.value,))
        sel = getattr(node, "selection_set", None)
        for s in sel.selections if sel else ():
            selections(s)

    selections(operation)
    for frag in fragments.values():  # graphql-core's FragmentDetails: the node is its .definition
        selections(frag.definition)
    out = frozenset(name for name, ok in uses.items() if ok)
    _parametric.put(id(operation), (operation, out))
    return out


def _bindable(path: tuple) -> bool:
    if path in (("id",), ("after",)):
        return True
    return (
        len(path) >= 3
        and path[0] == "filter"
        and path[-1] in FILTER_OPERANDS
        and path[-2] not in ("and", "or", "not", "[]")
    )


def markable(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, (bool, enum.Enum)) and value != ""


def freeze(value: Any) -> Hashable:
    """A hashable, type-exact image of a (coerced) variable value."""
    if isinstance(value, dict):
        return ("d", tuple(sorted((k, freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("l", tuple(freeze(v) for v in value))
    if isinstance(value, enum.Enum):
        return ("e", type(value).__qualname__, freeze(value.value))
    return (type(value).__name__, value)
