"""Typed catalogue objects: the data standard read from ledgers/*.yaml.

Everything downstream (tables, validation, access defaults, templates, GraphQL) reads these objects,
never the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FieldType(StrEnum):
    text = "text"
    integer = "integer"
    decimal = "decimal"
    date = "date"
    datetime = "datetime"
    boolean = "boolean"
    code = "code"  # a value from a code list
    reference = "reference"  # id of a record in another ledger (no FK: tables distribute by township)


class Sensitivity(StrEnum):
    public = "public"
    internal = "internal"
    sensitive = "sensitive"
    secret = "secret"


class MaskRule(StrEnum):
    none = "none"
    id_card = "id_card"  # 500118********1234
    phone = "phone"  # 138****5678
    name = "name"  # 张** (keeps the surname)
    address = "address"  # cut after the village / community segment
    full = "full"  # ****
    year = "year"  # a date reduced to its year
    # Disability certificate (ID number + type and level digits): 500118********1234****, the
    # embedded ID masked like an ID and nothing after it shown, so type, level and length stay unseen.
    certificate = "certificate"


@dataclass(frozen=True)
class Validator:
    kind: str  # id_card | uscc | division_code | phone | regex | range | parcel_code | pattern (RE2)
    pattern: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class CodeList:
    code: str
    label: str
    values: dict[str, str]  # value -> Chinese label
    standard: str | None = None


@dataclass(frozen=True)
class Field:
    code: str
    label: str
    type: FieldType
    required: bool = False
    unique: bool = False
    sensitivity: Sensitivity = Sensitivity.internal
    mask: MaskRule = MaskRule.none
    validator: Validator | None = None
    codelist: str | None = None
    ref: str | None = None
    max_length: int | None = None
    precision: int = 14
    scale: int = 2
    source: str = "township"
    frequency: str = "on_change"
    owner: str | None = None
    description: str | None = None
    # "ledger.field" of every field whose value this one reveals in whole or part (birth date from the
    # ID number, a certificate embedding the ID): resolved so this field is never more readable than any.
    derived_from: tuple[str, ...] = ()
    # Other headers legacy sheets use for this item (身份证号码, 证件号码 …): the import maps them here.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ledger:
    code: str
    label: str
    kind: str  # core | extension
    fields: tuple[Field, ...]
    owner: str | None = None
    description: str | None = None
    parent: str | None = None  # extension: the core ledger it extends
    cardinality: str = "one"  # extension: one or many rows per parent record
    natural_key: str | None = None

    @property
    def table_name(self) -> str:
        return f"lg_{self.code}"

    def field(self, code: str) -> Field | None:
        return self._by_code.get(code)

    @property
    def _by_code(self) -> dict[str, Field]:
        cache = self.__dict__.get("_fields_by_code")
        if cache is None:
            cache = {f.code: f for f in self.fields}
            object.__setattr__(self, "_fields_by_code", cache)
        return cache


@dataclass(frozen=True)
class Relation:
    """A link table between two ledgers, e.g. residence: person -> house."""

    code: str
    label: str
    source: str  # ledger code on the "from" side; the link row lives in its township
    target: str
    forward: str  # name seen from the source (person.residence)
    backward: str  # name seen from the target (house.residents)
    forward_many: bool = False
    backward_many: bool = True
    attributes: tuple[Field, ...] = ()

    @property
    def table_name(self) -> str:
        return f"rel_{self.code}"


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    short: str | None = None  # how messages name it: 由残联维护
    push_frequency: str | None = None  # declared when the department's system pushes (行业反哺)
    push_tolerance: float = 2.0  # a feed is stale after frequency × tolerance without a push

    @property
    def short_name(self) -> str:
        return self.short or self.name.removeprefix("区")


@dataclass
class Catalog:
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    codelists: dict[str, CodeList] = field(default_factory=dict)
    relations: dict[str, Relation] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    # Which catalogue version this is: "yaml" for ledgers/*.yaml alone, else the random stamp of the
    # catalog_version row (app/catalog/admission/live.py). Caches of anything built from a catalogue key on it.
    stamp: str = "yaml"
    # Objects built once per catalogue version (tables, GraphQL registry and schema): they live and die
    # with the catalogue they were built from.
    built: dict = field(default_factory=dict, repr=False, compare=False)

    def ledger(self, code: str) -> Ledger | None:
        return self.ledgers.get(code)

    def relations_of(self, ledger: str) -> list[tuple[Relation, str]]:
        """(relation, direction) pairs touching a ledger; direction is 'forward' or 'backward'."""
        out: list[tuple[Relation, str]] = []
        for rel in self.relations.values():
            if rel.source == ledger:
                out.append((rel, "forward"))
            if rel.target == ledger:
                out.append((rel, "backward"))
        return out

    def extensions_of(self, ledger: str) -> list[Ledger]:
        return [lg for lg in self.ledgers.values() if lg.parent == ledger]
