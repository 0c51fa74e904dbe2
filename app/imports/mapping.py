"""Header -> catalogue field: by a mapping saved for the legacy form, by label, by declared aliases.

Targets are written as app/query paths from the imported ledger, so the job side can tell a field of
the ledger from one reached through a link:
- `id_number`                   a field of the ledger itself;
- `disability.certificate_number` a field of a one-per-record extension;
- `household.household_no`      a field of the record a to-one link leads to (person -> household);
- `household.@relation_to_head` an attribute of that link (与户主关系 lives on the membership).
The ledger's own fields win over extension fields, then link attributes, then linked ledgers.

Headers are compared normalised: NFKC (full-width forms), no spaces, no bracketed notes such as
"(必填)" or "（男/女）", no "*" required markers or trailing colons. A two-row header
"户籍信息/户号" is tried whole, then by its lower label, then by its upper one. Every column comes
back: one the catalogue does not know is how='unknown' with field None, for the clerk to map or
leave out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.catalog.loader import get_catalog
from app.catalog.model import Catalog, Field
from app.catalog.validators import normalize_text


@dataclass
class ColumnMap:
    index: int
    header: str
    field: str | None
    how: str  # 'label' | 'alias' | 'saved' | 'unknown' | 'manual'


_NOTE = re.compile(r"[(\[【〔{][^()\[\]【】〔〕{}]*[)\]】〕}]")
_BRACKETS = re.compile(r"[()\[\]【】〔〕{}]")
_NOISE = re.compile(r"[\s*＊※:：、.．]+")


def normalize_header(text: str) -> str:
    """The form headers are compared in: 身份证号码（必填）* -> 身份证号码."""
    s = normalize_text(text)
    prev = None
    while prev != s:
        prev, s = s, _NOTE.sub("", s)
    if not _NOISE.sub("", s):  # the whole header was in brackets: 【身份证号】
        s = _BRACKETS.sub("", normalize_text(text))
    return _NOISE.sub("", s)


def target_fields(ledger: str, catalog: Catalog | None = None) -> dict[str, Field]:
    """Every field an import into `ledger` may fill, by path, in order of preference."""
    cat = catalog or get_catalog()
    lg = cat.ledger(ledger)
    if lg is None:
        raise KeyError(ledger)
    out: dict[str, Field] = {f.code: f for f in lg.fields}
    for ext in cat.extensions_of(ledger):
        if ext.cardinality == "one":
            out.update({f"{ext.code}.{f.code}": f for f in ext.fields})
    to_one = [rel for rel, d in cat.relations_of(ledger) if d == "forward" and not rel.forward_many]
    for rel in to_one:
        out.update({f"{rel.forward}.@{a.code}": a for a in rel.attributes})
    for rel in to_one:
        target = cat.ledger(rel.target)
        if target is not None:
            out.update({f"{rel.forward}.{f.code}": f for f in target.fields})
    return out


def _index(targets: dict[str, Field]) -> tuple[dict[str, str], dict[str, str]]:
    by_label: dict[str, str] = {}
    by_alias: dict[str, str] = {}
    for path, f in targets.items():
        by_label.setdefault(normalize_header(f.label), path)
        for alias in f.aliases:
            by_alias.setdefault(normalize_header(alias), path)
    return by_label, by_alias


def _candidates(header: str) -> list[str]:
    whole = normalize_header(header)
    if "/" not in header:
        return [whole]
    upper, _, lower = header.rpartition("/")
    return [whole, normalize_header(lower), normalize_header(upper)]


def propose_mapping(ledger: str, headers: list[str], saved: dict[str, str] | None = None) -> list[ColumnMap]:
    """One ColumnMap per header, in column order. `saved` (header -> field path, "" for a column the
    clerk chose to leave out) comes from the last import of the same legacy form and wins; its keys
    match a header as typed or normalised. A field is taken by one column only: a second column for
    it is 'unknown' (shown to the clerk, not dropped)."""
    targets = target_fields(ledger)
    by_label, by_alias = _index(targets)
    saved_norm = {normalize_header(k): v for k, v in (saved or {}).items()}
    out: list[ColumnMap | None] = [None] * len(headers)
    taken: set[str] = set()
    for i, h in enumerate(headers):
        hit = (saved or {}).get(h, saved_norm.get(normalize_header(h)))
        if hit is not None and (hit == "" or hit in targets) and hit not in taken:
            out[i] = ColumnMap(i, h, hit or None, "saved")
            if hit:
                taken.add(hit)
    for i, h in enumerate(headers):
        if out[i] is not None:
            continue
        found: ColumnMap | None = None
        for key in _candidates(h):
            for table, how in ((by_label, "label"), (by_alias, "alias")):
                path = table.get(key)
                if path is not None and path not in taken:
                    found = ColumnMap(i, h, path, how)
                    break
            if found:
                break
        if found is None:
            found = ColumnMap(i, h, None, "unknown")
        elif found.field:
            taken.add(found.field)
        out[i] = found
    return [m for m in out if m is not None]


def saved_form(mapping: list[ColumnMap]) -> dict[str, str]:
    """What to store for the legacy form after the clerk confirmed a mapping (header -> path, "" for
    a column left out): next month's file maps itself with it (C1-9)."""
    return {m.header: m.field or "" for m in mapping}
