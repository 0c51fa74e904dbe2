"""Formula ordering: the one place that decides in which order formula and ratio columns are computed.

The SQL compiler (app/report/compiler.py) and the Python recomputation of merged rows and totals
(app/report/aggregate.py) both evaluate formulas over other formulas; both take their order from here,
so a chain of any depth computes every column and a cycle is named the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ordered:
    order: list[str] = field(default_factory=list)  # computable formulas, each after the formulas it uses
    cycles: list[str] = field(default_factory=list)  # formulas on a reference cycle (declaration order)
    blocked: list[str] = field(default_factory=list)  # not on a cycle, but using a formula that is


def evaluation_order(refs: Mapping[str, Iterable[str]]) -> Ordered:
    """Topological order of formulas. `refs` maps each formula's code to the codes it refers to; codes
    that are not formulas (fields, aggregates, unknown names) are operands, not edges. Ties keep the
    declaration order, so the result is stable."""
    deps = {code: {r for r in used if r in refs} for code, used in refs.items()}
    order: list[str] = []
    done: set[str] = set()
    pending = list(deps)
    while True:  # at most 120 columns: a repeated scan is simpler than a queue and plenty fast
        ready = [c for c in pending if deps[c] <= done]
        if not ready:
            break
        for c in ready:
            order.append(c)
            done.add(c)
        pending = [c for c in pending if c not in done]
    cycles = [c for c in pending if _reaches(deps, c, c)]
    blocked = [c for c in pending if c not in cycles]
    return Ordered(order, cycles, blocked)


def _reaches(deps: Mapping[str, set[str]], start: str, target: str) -> bool:
    seen: set[str] = set()
    stack = list(deps[start])
    while stack:
        c = stack.pop()
        if c == target:
            return True
        if c not in seen:
            seen.add(c)
            stack.extend(deps[c])
    return False


__all__ = ["Ordered", "evaluation_order"]
