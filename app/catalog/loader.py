"""Read ledgers/*.yaml into a Catalog, reporting every problem with file, line and reason."""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from app.catalog.model import (
    Catalog,
    CodeList,
    Department,
    Field,
    FieldType,
    Ledger,
    MaskRule,
    Relation,
    Sensitivity,
    Validator,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "ledgers"
SCHEMA_PATH = ROOT / "schemas" / "catalog.schema.json"

# Base columns every ledger table has; catalogue fields may not reuse these names.
RESERVED = {
    "id",
    "region_code",
    "version",
    "created_at",
    "updated_at",
    "deleted_at",
    "provenance",
    "flags",
    "parent_id",
    "from_id",
    "to_id",
}


@dataclass(frozen=True)
class CatalogIssue:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class CatalogError(Exception):
    def __init__(self, issues: list[CatalogIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def _to_python(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> Any:
    """Turn a composed YAML node into plain data, remembering the line of every path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            out[key] = _to_python(value_node, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, i), lines) for i, v in enumerate(node.value)]
    return yaml.SafeLoader.construct_object(yaml.SafeLoader(""), node, deep=True)


def _line(lines: dict[tuple, int], path: tuple) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


@lru_cache
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def parse_field(raw: dict) -> Field:
    """One field as written in ledgers/*.yaml (or in an admitted proposal) -> Field."""
    v = raw.get("validator")
    validator = None
    if isinstance(v, str):
        validator = Validator(kind=v)
    elif isinstance(v, dict):
        validator = Validator(kind=v["kind"], pattern=v.get("pattern"), min=v.get("min"), max=v.get("max"))
    return Field(
        code=raw["code"],
        label=raw["label"],
        type=FieldType(raw["type"]),
        required=raw.get("required", False),
        unique=raw.get("unique", False),
        sensitivity=Sensitivity(raw.get("sensitivity", "internal")),
        mask=MaskRule(raw.get("mask", "none")),
        validator=validator,
        codelist=raw.get("codelist"),
        ref=raw.get("ref"),
        max_length=raw.get("max_length"),
        precision=raw.get("precision", 14),
        scale=raw.get("scale", 2),
        source=raw.get("source", "township"),
        frequency=raw.get("frequency", "on_change"),
        owner=raw.get("owner"),
        description=raw.get("description"),
        derived_from=_refs(raw.get("derived_from")),
        aliases=tuple(raw.get("aliases", ())),
    )


def _refs(v: str | list[str] | None) -> tuple[str, ...]:
    if v is None:
        return ()
    return (v,) if isinstance(v, str) else tuple(v)


def load_catalog(directory: Path | str = DEFAULT_DIR) -> Catalog:
    """Load and check every *.yaml in directory; raise CatalogError listing all issues."""
    directory = Path(directory)
    issues: list[CatalogIssue] = []
    catalog = Catalog()
    where: dict[tuple[str, str], tuple[str, int]] = {}  # (kind, code) -> (file, line), for semantic checks
    validator_cls = jsonschema.Draft202012Validator(_schema())

    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError([CatalogIssue(str(directory), 1, "no *.yaml catalogue files found")])
    for path in files:
        name = path.name
        try:
            node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            issues.append(CatalogIssue(name, (mark.line + 1) if mark else 1, f"YAML syntax: {exc}"))
            continue
        if node is None:
            continue
        lines: dict[tuple, int] = {}
        data = _to_python(node, (), lines)
        errors = sorted(validator_cls.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            for err in errors:
                p = tuple(err.absolute_path)
                loc = "/".join(map(str, p)) or "(top)"
                issues.append(CatalogIssue(name, _line(lines, p), f"{loc}: {err.message}"))
            continue
        for i, raw in enumerate(data.get("departments", [])):
            _register(where, issues, "department", raw["code"], name, _line(lines, ("departments", i)))
            push = raw.get("push") or {}
            catalog.departments[raw["code"]] = Department(
                raw["code"],
                raw["name"],
                raw.get("short"),
                push.get("frequency"),
                float(push.get("tolerance", 2.0)),
            )
        for i, raw in enumerate(data.get("codelists", [])):
            _register(where, issues, "codelist", raw["code"], name, _line(lines, ("codelists", i)))
            catalog.codelists[raw["code"]] = CodeList(
                raw["code"], raw["label"], {str(k): v for k, v in raw["values"].items()}, raw.get("standard")
            )
        for i, raw in enumerate(data.get("ledgers", [])):
            _register(where, issues, "ledger", raw["code"], name, _line(lines, ("ledgers", i)))
            fields = []
            for j, fr in enumerate(raw["fields"]):
                where[("field", f"{raw['code']}.{fr['code']}")] = (
                    name,
                    _line(lines, ("ledgers", i, "fields", j)),
                )
                fields.append(parse_field(fr))
            catalog.ledgers[raw["code"]] = Ledger(
                code=raw["code"],
                label=raw["label"],
                kind=raw["kind"],
                fields=tuple(fields),
                owner=raw.get("owner"),
                description=raw.get("description"),
                parent=raw.get("parent"),
                cardinality=raw.get("cardinality", "one"),
                natural_key=raw.get("natural_key"),
            )
        for i, raw in enumerate(data.get("relations", [])):
            _register(where, issues, "relation", raw["code"], name, _line(lines, ("relations", i)))
            attrs = []
            for j, fr in enumerate(raw.get("attributes", [])):
                where[("field", f"rel:{raw['code']}.{fr['code']}")] = (
                    name,
                    _line(lines, ("relations", i, "attributes", j)),
                )
                attrs.append(parse_field(fr))
            catalog.relations[raw["code"]] = Relation(
                code=raw["code"],
                label=raw["label"],
                source=raw["from"],
                target=raw["to"],
                forward=raw["forward"],
                backward=raw["backward"],
                forward_many=raw.get("forward_many", False),
                backward_many=raw.get("backward_many", True),
                attributes=tuple(attrs),
            )
    issues.extend(semantic_issues(catalog, where))
    if issues:
        raise CatalogError(issues)
    return catalog


def _register(where, issues, kind, code, file, line) -> None:
    if (kind, code) in where:
        f0, l0 = where[(kind, code)]
        issues.append(CatalogIssue(file, line, f"duplicate {kind} '{code}' (first at {f0}:{l0})"))
    where[(kind, code)] = (file, line)


def semantic_issues(cat: Catalog, where) -> list[CatalogIssue]:
    """Checks across the whole catalogue (also run on the catalogue an admission would make)."""
    out: list[CatalogIssue] = []

    def at(kind: str, code: str, reason: str) -> None:
        f, ln = where.get((kind, code), ("?", 1))
        out.append(CatalogIssue(f, ln, reason))

    def check_field(key: str, fld: Field) -> None:
        if fld.code in RESERVED:
            at("field", key, f"field code '{fld.code}' is reserved for a base column")
        if fld.type == FieldType.code and (fld.codelist is None or fld.codelist not in cat.codelists):
            at("field", key, f"type code needs a known codelist, got '{fld.codelist}'")
        if fld.type != FieldType.code and fld.codelist is not None:
            at("field", key, "codelist is only allowed on type code")
        if fld.type == FieldType.reference and (fld.ref is None or fld.ref not in cat.ledgers):
            at("field", key, f"type reference needs ref to a known ledger, got '{fld.ref}'")
        if fld.owner and fld.owner not in cat.departments:
            at("field", key, f"owner department '{fld.owner}' is not declared")
        if fld.source.startswith("department:") and fld.source.split(":", 1)[1] not in cat.departments:
            at("field", key, f"source department '{fld.source}' is not declared")
        v = fld.validator
        if v is not None:
            if v.kind == "regex":
                import re

                try:
                    re.compile(v.pattern or "")
                except re.error as exc:
                    at("field", key, f"regex validator does not compile: {exc}")
                if not v.pattern:
                    at("field", key, "regex validator needs a pattern")
            if v.kind == "range" and fld.type not in (FieldType.integer, FieldType.decimal, FieldType.date):
                at("field", key, "range validator needs an integer, decimal or date field")
            if (
                v.kind in ("id_card", "uscc", "division_code", "phone", "parcel_code", "regex")
                and fld.type != FieldType.text
            ):
                at("field", key, f"{v.kind} validator needs a text field")
        if fld.sensitivity in (Sensitivity.sensitive,) and fld.mask == MaskRule.none:
            at("field", key, "a sensitive field needs a mask rule")
        if fld.derived_from and key.startswith("rel:"):
            at("field", key, "derived_from is only allowed on ledger fields")
        for ref in fld.derived_from:
            lg_code, _, f_code = ref.partition(".")
            src = cat.ledgers.get(lg_code)
            if src is None:
                at("field", key, f"derived_from '{ref}': unknown ledger '{lg_code}'")
            elif src.field(f_code) is None:
                at("field", key, f"derived_from '{ref}': ledger '{lg_code}' has no field '{f_code}'")
            elif ref == key:
                at("field", key, "derived_from names the field itself")

    for lg in cat.ledgers.values():
        seen: set[str] = set()
        for fld in lg.fields:
            key = f"{lg.code}.{fld.code}"
            if fld.code in seen:
                at("field", key, f"duplicate field '{fld.code}' in ledger '{lg.code}'")
            seen.add(fld.code)
            check_field(key, fld)
        if lg.kind == "extension":
            parent = cat.ledgers.get(lg.parent or "")
            if parent is None or parent.kind != "core":
                at("ledger", lg.code, f"extension ledger needs parent: a core ledger, got '{lg.parent}'")
        elif lg.parent:
            at("ledger", lg.code, "only extension ledgers have a parent")
        if lg.natural_key and lg.field(lg.natural_key) is None:
            at("ledger", lg.code, f"natural_key '{lg.natural_key}' is not a field of the ledger")
        if lg.owner and lg.owner not in cat.departments:
            at("ledger", lg.code, f"owner department '{lg.owner}' is not declared")
    for key in _derivation_cycles(cat):
        at("field", key, f"derived_from forms a cycle through '{key}'")
    for lg in cat.ledgers.values():
        # person.residence, house.residents, person.disability …: one name, one meaning per ledger.
        names = [rel.forward if d == "forward" else rel.backward for rel, d in cat.relations_of(lg.code)]
        names += [e.code for e in cat.extensions_of(lg.code)]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            at("ledger", lg.code, f"relation name '{dup}' is used twice on ledger '{lg.code}'")
    for rel in cat.relations.values():
        for side in (rel.source, rel.target):
            if side not in cat.ledgers:
                at("relation", rel.code, f"relation refers to unknown ledger '{side}'")
        for fld in rel.attributes:
            check_field(f"rel:{rel.code}.{fld.code}", fld)
    return out


def _derivation_cycles(cat: Catalog) -> list[str]:
    """Fields on a derived_from cycle (one per cycle): resolution follows the links and must end."""
    graph = {f"{lg.code}.{f.code}": f.derived_from for lg in cat.ledgers.values() for f in lg.fields}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[str] = []

    def visit(key: str) -> None:
        state[key] = 1
        for ref in graph.get(key, ()):
            if ref not in graph or ref == key:
                continue  # reported as unknown or self reference
            if state.get(ref) == 1:
                found.append(ref)
            elif ref not in state:
                visit(ref)
        state[key] = 2

    for key in graph:
        if key not in state:
            visit(key)
    return found


@lru_cache
def yaml_catalog() -> Catalog:
    """ledgers/*.yaml alone: catalogue version 1, stamp "yaml"."""
    return load_catalog(DEFAULT_DIR)


# The catalogue in effect for the running request: ledgers/*.yaml plus the approved admissions its
# transaction sees, set per request by app/catalog/admission/live.py. Unset (CLI, direct calls): the YAML.
IN_EFFECT: ContextVar[Catalog | None] = ContextVar("catalog_in_effect", default=None)


def get_catalog() -> Catalog:
    cat = IN_EFFECT.get()
    return yaml_catalog() if cat is None else cat
