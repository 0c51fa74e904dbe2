"""Output columns of a compiled template, the compiled result, and the JSON the statement builds per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, String, cast, func, literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from app.catalog.model import Field as CField
from app.errors import FieldError
from app.query.paths import BASE_FIELDS
from app.report.dsl import TemplateSpec

NUMERIC = {"integer", "decimal"}
BASE = BASE_FIELDS  # base columns a template may pull or filter on, typed like catalogue fields
JSON_PAIRS_PER_CALL = 45  # jsonb_build_object takes at most 100 arguments
# report_row.prov holds, per record a list row reads ("$" + its path: "$" the row's own record,
# "$residence" its house …), that record's provenance cut down to the fields the template pulls from it.
# `cell_provenance` turns it into the per-column view ({column code: provenance or null}); rows stored
# before this layout hold that view directly (column codes never start with "$").
PROV_PREFIX = "$"


@dataclass
class OutColumn:
    code: str
    label: str
    kind: str  # field | formula | ratio | aggregate | gap
    type: str  # text | integer | decimal | date | datetime | boolean | code (and masked → text)
    path: str | None = None
    ledger_field: str | None = None  # "person.name": what the column reads or writes
    source: str | None = None  # the catalogue's source of truth for a pulled field
    masked: bool = False
    codelist: str | None = None
    gap: CField | None = None  # how a gap cell is validated
    required: bool = False
    help: str | None = None
    write_back: tuple[str, str] | None = None  # (ledger, field)
    prov_key: str | None = None  # key of the record's provenance in report_row.prov (pulled fields)
    prefilled: bool = False  # a write-back gap whose current ledger value is pre-filled
    fn: str | None = None

    def public(self) -> dict:
        out = {
            "code": self.code,
            "label": self.label,
            "kind": self.kind,
            "type": self.type,
            "editable": self.kind == "gap",
            "required": self.required,
        }
        for k in ("path", "ledger_field", "source", "help", "codelist", "fn"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        if self.masked:
            out["masked"] = True
        if self.write_back:
            out["write_back"] = ".".join(self.write_back)
        return out


@dataclass
class Compiled:
    spec: TemplateSpec
    columns: list[OutColumn]
    stmt: Select
    denied: list[FieldError] = field(default_factory=list)  # fields the department may not read
    fields_used: set[str] = field(default_factory=set)  # "ledger.field" pulled, aggregated or filtered
    code_rows: int | None = None  # aggregate by code value: the number of rows, known without a query


def jsonb(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    if not pairs:
        return cast(literal("{}"), JSONB)
    parts = []
    for i in range(0, len(pairs), JSON_PAIRS_PER_CALL):
        args = []
        for k, v in pairs[i : i + JSON_PAIRS_PER_CALL]:
            args += [literal(k, String), v]
        parts.append(func.jsonb_build_object(*args, type_=JSONB))
    out: ColumnElement[Any] = parts[0]
    for p in parts[1:]:
        out = out.op("||", return_type=JSONB)(p)
    return out


def cell_provenance(prov: dict | None, columns: list[OutColumn]) -> dict:
    """A stored row's provenance per pulled column: {column code: the field's provenance or null}.

    Keys come in JSONB's order (shorter first, then bytewise), as when each cell's was stored apart.
    """
    prov = prov or {}
    if not any(k.startswith(PROV_PREFIX) for k in prov):
        return prov  # stored per column already
    out = {}
    for c in columns:
        if c.prov_key is not None and c.ledger_field:
            rec = prov.get(c.prov_key)
            # A field's own entry, else the record's "*" entry (bulk loads stamp every field at once).
            out[c.code] = (
                (rec.get(c.ledger_field.partition(".")[2]) or rec.get("*")) if isinstance(rec, dict) else None
            )
    return {k: out[k] for k in sorted(out, key=lambda k: (len(k.encode()), k.encode()))}
