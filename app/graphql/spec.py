"""What each generated GraphQL type means, derived from the catalogue alone.

The strawberry type builder (types.py) and the SQL compiler (compiler.py) both read this registry, so a
GraphQL name always maps back to the same column, relation or extension.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field, FieldType, Relation

# Catalogue type -> GraphQL scalar name.
SCALAR = {
    FieldType.text: "String",
    FieldType.code: "String",
    FieldType.integer: "Int",
    FieldType.decimal: "Float",
    FieldType.date: "Date",
    FieldType.datetime: "DateTime",
    FieldType.boolean: "Boolean",
    FieldType.reference: "ID",
}
# Scalars whose masked form (a partial or starred string) is still a value of the type.
MASKABLE_SCALARS = {"String", "Date", "DateTime"}

BASE_FIELDS = (
    Field("id", "记录编号", FieldType.reference),
    Field("region_code", "所属区划代码（村社区 12 位或网格 15 位）", FieldType.text),
    Field("version", "版本号（每次修改加一）", FieldType.integer),
    Field("created_at", "创建时间", FieldType.datetime),
    Field("updated_at", "更新时间", FieldType.datetime),
)
PARENT_ID = Field("parent_id", "所属主体记录编号", FieldType.reference)
# Region levels a ledger can be grouped by (aggregates), besides its code-list fields.
REGION_LEVELS = {"township": "镇街（12 位代码）", "village": "村社区（12 位代码）"}


def camel(code: str) -> str:
    head, *rest = code.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def pascal(code: str) -> str:
    c = camel(code)
    return c[:1].upper() + c[1:]


def plural(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


# ---- field kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of a ledger row: a base column or a catalogue field."""

    code: str
    field: Field
    scalar: str
    base: bool = False


@dataclass(frozen=True)
class RelationField:
    """A relation seen from one side: the far ledger is reached through the link table."""

    relation: Relation
    direction: str  # forward (near = source) | backward (near = target)
    many: bool

    @property
    def far(self) -> str:
        return self.relation.target if self.direction == "forward" else self.relation.source

    @property
    def link_type(self) -> str:
        return pascal(self.relation.code)


@dataclass(frozen=True)
class ExtensionField:
    ledger: str  # the extension ledger
    many: bool


@dataclass(frozen=True)
class ParentField:
    ledger: str  # the core ledger an extension row belongs to


@dataclass(frozen=True)
class LinkEnd:
    ledger: str
    side: str  # source | target


@dataclass(frozen=True)
class LinkAttribute:
    code: str
    field: Field
    scalar: str


@dataclass
class TypeSpec:
    kind: str  # node | link | numbers | extremes | key
    name: str
    ledger: str | None = None
    relation: Relation | None = None
    fields: dict[str, object] = field(default_factory=dict)  # GraphQL name -> one of the kinds above


@dataclass
class LedgerNames:
    node: str
    single: str  # root field: one record by id
    list: str  # root field: connection
    aggregate: str  # root field
    filter: str
    order: str
    order_field: str
    group_by: str
    # GraphQL name -> code, for filters / order / group by
    filterable: dict[str, Column] = field(default_factory=dict)
    # builtins.list: `list` is a field of this class (the root connection's name) from here on.
    numeric: builtins.list[Column] = field(default_factory=builtins.list)  # sum / avg
    ordered: builtins.list[Column] = field(default_factory=builtins.list)  # min / max
    groupable: dict[str, str] = field(default_factory=dict)  # enum value -> code or region level


@dataclass
class Registry:
    types: dict[str, TypeSpec]
    ledgers: dict[str, LedgerNames]
    catalog: Catalog


def _column(f: Field, base: bool = False) -> Column:
    return Column(f.code, f, SCALAR[f.type], base)


def build_registry(catalog: Catalog) -> Registry:
    types: dict[str, TypeSpec] = {}
    ledgers: dict[str, LedgerNames] = {}

    def add(spec: TypeSpec) -> TypeSpec:
        if spec.name in types:
            raise ValueError(f"GraphQL type name '{spec.name}' is generated twice")
        types[spec.name] = spec
        return spec

    for lg in catalog.ledgers.values():
        node = pascal(lg.code)
        names = LedgerNames(
            node=node,
            single=camel(lg.code),
            list=plural(camel(lg.code)),
            aggregate=camel(lg.code) + "Aggregate",
            filter=node + "Filter",
            order=node + "Order",
            order_field=node + "OrderField",
            group_by=node + "GroupBy",
        )
        spec = add(TypeSpec("node", node, ledger=lg.code))
        cols = [_column(f, base=True) for f in BASE_FIELDS]
        if lg.kind == "extension":
            cols.append(_column(PARENT_ID, base=True))
        cols += [_column(f) for f in lg.fields]
        for c in cols:
            _put(spec, camel(c.code), c)
            if c.code in ("id", "region_code", "created_at", "updated_at") or not c.base:
                names.filterable[camel(c.code)] = c
            if not c.base and c.field.type in (FieldType.integer, FieldType.decimal):
                names.numeric.append(c)
            if not c.base and c.field.type in (
                FieldType.integer,
                FieldType.decimal,
                FieldType.date,
                FieldType.datetime,
            ):
                names.ordered.append(c)
        names.groupable = {lvl.upper(): lvl for lvl in REGION_LEVELS}
        for f in lg.fields:
            if f.type == FieldType.code:
                if f.code.upper() in names.groupable:
                    raise ValueError(f"{lg.code}.{f.code} collides with a region level")
                names.groupable[f.code.upper()] = f.code
        for rel, direction in catalog.relations_of(lg.code):
            many = rel.forward_many if direction == "forward" else rel.backward_many
            _put(
                spec,
                camel(rel.forward if direction == "forward" else rel.backward),
                RelationField(rel, direction, many),
            )
        for ext in catalog.extensions_of(lg.code):
            _put(spec, camel(ext.code), ExtensionField(ext.code, ext.cardinality == "many"))
        if lg.kind == "extension" and lg.parent:
            _put(spec, camel(lg.parent), ParentField(lg.parent))
        ledgers[lg.code] = names
        add(
            TypeSpec(
                "numbers",
                node + "AggregateNumbers",
                ledger=lg.code,
                fields={camel(c.code): c for c in names.numeric},
            )
        )
        add(
            TypeSpec(
                "extremes",
                node + "AggregateExtremes",
                ledger=lg.code,
                fields={camel(c.code): c for c in names.ordered},
            )
        )
        add(
            TypeSpec(
                "key",
                node + "AggregateKey",
                ledger=lg.code,
                fields={camel(code): code for code in names.groupable.values()},
            )
        )
    for rel in catalog.relations.values():
        spec = add(TypeSpec("link", pascal(rel.code), relation=rel))
        for a in rel.attributes:
            _put(spec, camel(a.code), LinkAttribute(a.code, a, SCALAR[a.type]))
        ends = ("from", "to") if rel.source == rel.target else (camel(rel.source), camel(rel.target))
        _put(spec, ends[0], LinkEnd(rel.source, "source"))
        _put(spec, ends[1], LinkEnd(rel.target, "target"))
    return Registry(types, ledgers, catalog)


def _put(spec: TypeSpec, name: str, value: object) -> None:
    if name in spec.fields:
        raise ValueError(f"GraphQL field {spec.name}.{name} is generated twice")
    spec.fields[name] = value


def registry() -> Registry:
    """The registry of the catalogue in effect, built once per catalogue version."""
    cat = get_catalog()
    got = cat.built.get("graphql_registry")
    if got is None:
        got = cat.built["graphql_registry"] = build_registry(cat)
    return got
