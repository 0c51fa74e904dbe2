"""List templates: one row per record of the area, pulled fields (masked in SQL), provenance, write-back links."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Text, cast, func, literal, null, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from app.errors import FieldError
from app.report.compiler.builder import Builder
from app.report.compiler.columns import BASE, PROV_PREFIX, OutColumn, jsonb
from app.report.compiler.derived import derived
from app.report.compiler.gaps import gap
from app.report.dsl import AggregateColumn, FieldColumn, GapColumn, TemplateSpec


def list_statement(b: Builder, spec: TemplateSpec, base_where: list) -> tuple[Select, list[OutColumn]]:
    outs: dict[str, OutColumn] = {}
    env: dict[str, ColumnElement] = {}
    links, prefill = [], []
    records: dict[str, tuple[FromClause, str, list[str]]] = {}  # prov key -> (alias, ledger, pulled fields)
    for i, c in enumerate(spec.columns):
        where = f"body.columns.{i}"
        if isinstance(c, FieldColumn):
            got = b.pull(c.path, f"{where}.path")
            if got is None:
                outs[c.code] = OutColumn(c.code, c.label or c.code, "field", "text")
                env[c.code] = null()
                continue
            expr, masked, r = got
            f, ledger, alias = r.field, r.ledger, r.alias
            outs[c.code] = OutColumn(
                c.code,
                c.label or f.label,
                "field",
                "text" if masked else f.type.value,
                path=c.path,
                ledger_field=None if r.ref.attribute else f"{ledger}.{f.code}",
                source=None if f.code in BASE or r.ref.attribute else f.source,
                masked=masked,
                codelist=f.codelist,
            )
            env[c.code] = expr
            if f.code not in BASE and not r.ref.attribute:  # links keep no provenance
                key = PROV_PREFIX + c.path.rpartition(".")[0]
                outs[c.code].prov_key = key
                rec = records.setdefault(key, (alias, ledger, []))
                if f.code not in rec[2]:
                    rec[2].append(f.code)
        elif isinstance(c, GapColumn):
            out, target = gap(b, c, where)
            outs[c.code] = out
            if target is not None:
                links.append((c.code, target[0]))
                if target[1] is not None:
                    prefill.append((c.code, target[1]))
        elif isinstance(c, AggregateColumn):
            b.errors.append(
                FieldError(f"{where}.kind", "template.aggregate_in_list", "清单式报表不能有统计列")
            )
            outs[c.code] = OutColumn(c.code, c.label, "aggregate", "integer")
        else:
            outs[c.code] = OutColumn(c.code, c.label, c.kind, "decimal")
    derived(b, spec, outs, env)
    data = [(c.code, env[c.code]) for c in spec.columns if c.code in env and outs[c.code].kind != "gap"]
    prov: list[tuple[str, ColumnElement[Any]]] = []
    for key, (alias, ledger, pulled) in records.items():
        # Everything but the pulled fields' entries goes: one operator per record instead of one lookup
        # per cell, and no provenance of fields the report does not show is copied.
        # "*" stays: a bulk load's one provenance entry for every field (see cell_provenance).
        drop = [f.code for f in b.catalog.ledgers[ledger].fields if f.code not in pulled]
        prov.append((key, alias.c.provenance.op("-", return_type=JSONB)(literal(drop, ARRAY(Text)))))
    t0 = b.base
    stmt = (
        select(
            cast(t0.c.id, Text).label("row_key"),
            func.row_number().over(order_by=(t0.c.region_code, t0.c.id)).label("row_no"),
            null().cast(Text).label("label"),
            t0.c.id.label("record_id"),
            t0.c.region_code.label("region_code"),
            jsonb(data).label("data"),
            jsonb(prov).label("prov"),
            jsonb(links).label("links"),
            jsonb(prefill).label("prefill"),
        )
        .select_from(b.from_)
        .where(*base_where)
    )
    return stmt, [outs[c.code] for c in spec.columns]
