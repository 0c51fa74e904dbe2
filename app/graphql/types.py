"""Strawberry types generated from the registry: ledger nodes, relation links, connections, filter and
order inputs, aggregates. Labels from the catalogue become the descriptions.

Ledger fields carry no resolvers: the executor (executor.py) answers each root ledger field with one
SQL statement, so these classes only describe the schema.
"""

from __future__ import annotations

import dataclasses
import enum
from types import GenericAlias
from typing import Any, NewType, cast

import strawberry
from strawberry.annotation import StrawberryAnnotation
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.field import StrawberryField
from strawberry.types.scalar import ScalarDefinition

from app.catalog.model import Field, FieldType
from app.graphql.spec import (
    REGION_LEVELS,
    Column,
    ExtensionField,
    LinkAttribute,
    LinkEnd,
    ParentField,
    Registry,
    RelationField,
    pascal,
)

ROOT_KEY = "onetable_root"  # metadata key marking a root ledger field for the executor

# Dates travel as text: a masked date is its year ("1980") or "****", still a value of the scalar.
Date = NewType("Date", str)
DateTime = NewType("DateTime", str)
SCALAR_MAP: dict[object, ScalarDefinition] = {
    Date: strawberry.scalar(
        name="Date",
        serialize=str,
        parse_value=str,
        description="日期，YYYY-MM-DD。按年份脱敏时只有 YYYY，整体脱敏时为 ****。",
    ),
    DateTime: strawberry.scalar(
        name="DateTime",
        serialize=str,
        parse_value=str,
        description="带时区的时间，ISO 8601（如 2024-05-01T08:30:00+08:00）。整体脱敏时为 ****。",
    ),
}

PY_SCALAR: dict[str, Any] = {
    "String": str,
    "Int": int,
    "Float": float,
    "Boolean": bool,
    "ID": strawberry.ID,
    "Date": Date,
    "DateTime": DateTime,
}


@strawberry.enum(description="排序方向")
class SortDirection(enum.Enum):
    ASC = strawberry.enum_value("asc", description="升序（空值在后）")
    DESC = strawberry.enum_value("desc", description="降序（空值在后）")


@strawberry.type(description="分页信息：把 endCursor 作为下一页的 after 传入")
class PageInfo:
    end_cursor: str | None = strawberry.field(description="本页最后一条记录的游标")
    has_next_page: bool = strawberry.field(description="是否还有下一页")


# ---- small builders ----------------------------------------------------------------------------------


def _field(
    gql: str,
    annotation: Any,
    description: str | None,
    args: list[StrawberryArgument] | None = None,
    metadata: dict | None = None,
    default: Any = strawberry.UNSET,
    input_: bool = False,
) -> tuple:
    f = StrawberryField(
        python_name="f_" + gql,
        graphql_name=gql,
        description=description,
        metadata=metadata,
        default=default if input_ else dataclasses.MISSING,
    )
    if args:
        f.arguments = args
    return "f_" + gql, annotation, f


def _list_of(item: Any) -> Any:
    """`list[item]` for a class made at run time (what the annotation would say if it could be written)."""
    return GenericAlias(list, (item,))


def _enum(name: str, members: dict[str, Any]) -> type[enum.Enum]:
    # The functional API; mypy types it only for a literal name, so the class it returns is cast.
    return cast(type[enum.Enum], enum.Enum(name, members))


def _cls(name: str, fields: list[tuple]) -> type:
    cls = type(name, (), {"__annotations__": {}, "__module__": __name__})
    for py, annotation, f in fields:
        cls.__annotations__[py] = annotation
        setattr(cls, py, f)
    return cls


def _arg(name: str, annotation: Any, description: str, default: Any = strawberry.UNSET) -> StrawberryArgument:
    return StrawberryArgument(
        name, name, StrawberryAnnotation(annotation), description=description, default=default
    )


def describe(f: Field, catalog) -> str:
    if f.type == FieldType.code and f.codelist in catalog.codelists:
        cl = catalog.codelists[f.codelist]
        return f"{f.label}（代码表 {cl.code}：{cl.label}）"
    return f"{f.label}：{f.description}" if f.description else f.label


_OPS = {
    "eq": "等于",
    "ne": "不等于",
    "in": "属于列表中任一值",
    "gt": "大于",
    "gte": "大于等于",
    "lt": "小于",
    "lte": "小于等于",
    "prefix": "以此开头（文本与代码字段）",
    "isNull": "为空（true）或不为空（false）",
}


def _op_input(scalar: str) -> type:
    py = PY_SCALAR[scalar]
    ops = (
        ["eq", "ne", "isNull"]
        if scalar == "Boolean"
        else [o for o in _OPS if o != "prefix" or scalar == "String"]
    )
    fields = []
    for op in ops:
        ann = bool | None if op == "isNull" else _list_of(py) | None if op == "in" else py | None
        fields.append(_field(op, ann, _OPS[op], input_=True))
    return strawberry.input(
        _cls(scalar + "Filter", fields), description=f"{scalar} 字段的筛选条件，多个条件同时成立"
    )


# ---- the schema's ledger part -------------------------------------------------------------------------


class Built:
    """The generated classes, by GraphQL name."""

    def __init__(self, reg: Registry):
        self.reg = reg
        cat = reg.catalog
        self.ops = {s: _op_input(s) for s in PY_SCALAR}
        self.classes: dict[str, type] = {}
        self.inputs: dict[str, type] = {}
        self.enums: dict[str, type] = {}
        pending: list[tuple[type, str]] = []

        # Input types and enums first: they have no cycles through output types.
        for code, names in reg.ledgers.items():
            filt = _cls(names.filter, [])
            fields = [
                _field(g, self.ops[c.scalar] | None, describe(c.field, cat), input_=True)
                for g, c in names.filterable.items()
            ]
            fields += [
                _field("and", _list_of(filt) | None, "全部条件成立", input_=True),
                _field("or", _list_of(filt) | None, "任一条件成立", input_=True),
                _field("not", filt | None, "条件不成立", input_=True),
            ]
            for py, ann, f in fields:
                filt.__annotations__[py] = ann
                setattr(filt, py, f)
            self.inputs[names.filter] = strawberry.input(
                filt, description=f"{cat.ledgers[code].label}筛选条件"
            )
            order_field = strawberry.enum(
                _enum(
                    names.order_field,
                    {
                        c.code.upper(): strawberry.enum_value(c.code, description=c.field.label)
                        for c in names.filterable.values()
                    },
                ),
                description=f"{cat.ledgers[code].label}可排序字段",
            )
            self.enums[names.order_field] = order_field
            self.inputs[names.order] = strawberry.input(
                _cls(
                    names.order,
                    [
                        _field("field", order_field, "排序字段", input_=True, default=strawberry.UNSET),
                        _field("direction", SortDirection, "方向", input_=True, default=SortDirection.ASC),
                    ],
                ),
                description=f"{cat.ledgers[code].label}排序",
            )
            groupable = {}
            for value, code_ in names.groupable.items():
                f = cat.ledgers[code].field(code_)
                groupable[value] = strawberry.enum_value(
                    code_, description=REGION_LEVELS.get(code_) or (f.label if f is not None else code_)
                )
            self.enums[names.group_by] = strawberry.enum(
                _enum(names.group_by, groupable), description="分组依据：区划层级或代码表字段"
            )

        # Output types: plain classes first, decorated once all exist, so cycles resolve.
        for spec in reg.types.values():
            if spec.kind in ("numbers", "extremes", "key") and not spec.fields:
                continue
            self.classes[spec.name] = _cls(spec.name, [])
        for names in reg.ledgers.values():
            self.classes[names.node + "Connection"] = _cls(names.node + "Connection", [])
            self.classes[names.node + "Edge"] = _cls(names.node + "Edge", [])
            for suffix in ("Aggregate", "AggregateGroup"):
                self.classes[names.node + suffix] = _cls(names.node + suffix, [])
        for rel in cat.relations.values():
            name = pascal(rel.code)
            self.classes[name + "Connection"] = _cls(name + "Connection", [])
            self.classes[name + "Edge"] = _cls(name + "Edge", [])

        for spec in reg.types.values():
            cls = self.classes.get(spec.name)
            if cls is None:
                continue
            for gql, kind in spec.fields.items():
                self._add(cls, *self._output_field(gql, kind, spec.kind))
            label = cat.ledgers[spec.ledger].label if spec.ledger else ""
            desc = {
                "node": f"{label}台账记录",
                "link": ""
                if spec.relation is None
                else f"{spec.relation.label}：{cat.ledgers[spec.relation.source].label} → "
                f"{cat.ledgers[spec.relation.target].label}（关联本身及其两端记录）",
                "numbers": f"{label}数值字段的合计或平均值",
                "extremes": f"{label}字段的最小或最大值",
                "key": f"{label}分组键：未参与分组的为 null",
            }[spec.kind]
            pending.append((cls, desc))
        for code, names in reg.ledgers.items():
            node = self.classes[names.node]
            self._connection(names.node, node, cat.ledgers[code].label, pending)
            self._aggregate(code, pending)
        for rel in cat.relations.values():
            name = pascal(rel.code)
            self._connection(name, self.classes[name], rel.label, pending)
        for cls, desc in pending:
            strawberry.type(cls, description=desc)

    # ---- pieces ------------------------------------------------------------------------------------
    @staticmethod
    def _add(cls: type, py: str, annotation: Any, f: StrawberryField) -> None:
        cls.__annotations__[py] = annotation
        setattr(cls, py, f)

    def connection_args(self, ledger: str) -> list[StrawberryArgument]:
        names = self.reg.ledgers[ledger]
        return [
            _arg("filter", self.inputs[names.filter] | None, "筛选条件"),
            _arg(
                "orderBy", _list_of(self.inputs[names.order]) | None, "排序，总以记录编号收尾以保证顺序稳定"
            ),
            _arg("first", int | None, "每页条数（默认 50，最多见 docs/graphql.md）"),
            _arg("after", str | None, "上一页 pageInfo.endCursor"),
        ]

    def _output_field(self, gql: str, kind: object, parent_kind: str) -> tuple:
        cat = self.reg.catalog
        if isinstance(kind, Column):
            scalar = float if parent_kind == "numbers" else PY_SCALAR[kind.scalar]
            required = kind.base and parent_kind == "node"
            return _field(gql, scalar if required else scalar | None, describe(kind.field, cat))
        if isinstance(kind, LinkAttribute):
            return _field(gql, PY_SCALAR[kind.scalar] | None, describe(kind.field, cat))
        if isinstance(kind, str):  # aggregate key: a region level or a code-list field
            return _field(gql, str | None, REGION_LEVELS.get(kind) or f"代码值：{kind}")
        if isinstance(kind, RelationField):
            rel = kind.relation
            far = cat.ledgers[kind.far].label
            desc = f"{rel.label}（{far}）"
            if kind.many:
                return _field(
                    gql,
                    self.classes[kind.link_type + "Connection"],
                    desc,
                    args=self.connection_args(kind.far),
                )
            return _field(gql, self.classes[kind.link_type] | None, desc)
        if isinstance(kind, ExtensionField):
            node = self.reg.ledgers[kind.ledger].node
            desc = f"专题台账：{cat.ledgers[kind.ledger].label}"
            if kind.many:
                return _field(
                    gql, self.classes[node + "Connection"], desc, args=self.connection_args(kind.ledger)
                )
            return _field(gql, self.classes[node] | None, desc)
        if isinstance(kind, (ParentField, LinkEnd)):
            node = self.reg.ledgers[kind.ledger].node
            return _field(gql, self.classes[node] | None, f"{cat.ledgers[kind.ledger].label}记录")
        raise TypeError(kind)

    def _connection(self, name: str, node: type, label: str, pending: list) -> None:
        edge = self.classes[name + "Edge"]
        self._add(edge, *_field("cursor", str, "该条记录的游标"))
        self._add(edge, *_field("node", node, label))
        conn = self.classes[name + "Connection"]
        self._add(conn, *_field("nodes", _list_of(node), f"本页的{label}"))
        self._add(conn, *_field("edges", _list_of(edge), "本页的记录及各自游标"))
        self._add(conn, *_field("pageInfo", PageInfo, "分页信息"))
        pending += [(edge, f"{label}及其游标"), (conn, f"{label}分页列表（按游标翻页）")]

    def _aggregate(self, ledger: str, pending: list) -> None:
        names = self.reg.ledgers[ledger]
        label = self.reg.catalog.ledgers[ledger].label
        numbers = self.classes.get(names.node + "AggregateNumbers")
        extremes = self.classes.get(names.node + "AggregateExtremes")

        def metrics() -> list[tuple]:  # fresh field objects per class: strawberry fields are not shared
            out = [_field("count", int, "记录数")]
            if numbers is not None:
                out += [_field("sum", numbers | None, "合计"), _field("avg", numbers | None, "平均值")]
            if extremes is not None:
                out += [_field("min", extremes | None, "最小值"), _field("max", extremes | None, "最大值")]
            return out

        group = self.classes[names.node + "AggregateGroup"]
        for f in [_field("key", self.classes[names.node + "AggregateKey"], "分组键"), *metrics()]:
            self._add(group, *f)
        agg = self.classes[names.node + "Aggregate"]
        for f in [*metrics(), _field("groups", _list_of(group), "按 groupBy 分组的结果（未分组时为一组）")]:
            self._add(agg, *f)
        pending += [(group, f"{label}统计的一组"), (agg, f"{label}统计（在您可见的范围内）")]

    def root_fields(self) -> list[tuple]:
        out = []
        for code, names in self.reg.ledgers.items():
            label = self.reg.catalog.ledgers[code].label
            node = self.classes[names.node]
            out.append(
                _field(
                    names.single,
                    node | None,
                    f"按记录编号读取一条{label}记录（不可见或不存在时为 null）",
                    args=[_arg("id", strawberry.ID, "记录编号")],
                    metadata={ROOT_KEY: ("single", code)},
                )
            )
            out.append(
                _field(
                    names.list,
                    self.classes[names.node + "Connection"] | None,
                    f"{label}台账（分页）",
                    args=self.connection_args(code),
                    metadata={ROOT_KEY: ("list", code)},
                )
            )
            out.append(
                _field(
                    names.aggregate,
                    self.classes[names.node + "Aggregate"] | None,
                    f"{label}统计：计数、合计、平均、最值，可按镇街、村社区或代码表字段分组",
                    args=[
                        _arg("filter", self.inputs[names.filter] | None, "筛选条件"),
                        _arg("groupBy", _list_of(self.enums[names.group_by]) | None, "分组依据"),
                    ],
                    metadata={ROOT_KEY: ("aggregate", code)},
                )
            )
        return out
