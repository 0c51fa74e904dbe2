"""Steps 去重 and 合并 of Layer A: legacy form headers matched across forms and to the catalogue.

Headers are read as concepts the way catalogue admission reads labels (app/catalog/admission/
duplicates.py: NFKC, bracketed units dropped, synonyms of ledgers/terms/synonyms.yaml rewritten,
framing affixes removed), then
1. headers of the same concept across forms become one item (equal concepts, or a rapidfuzz score of
   at least SAME_ITEM for small spelling differences: 残疾证号 / 残疾人证号);
2. each item is matched to a catalogue data item (score ≥ admission's THRESHOLD), preferring the
   forms' subject (the extension most of their items fall in), then its parent, then ledgers the
   parent reaches by a one-to-one relation;
3. forms are grouped by subject: one proposal per ledger or extension, its items with their
   maintaining source (platform / department / township) from the catalogue. Township upkeep is the
   number of items townships would still keep: township-sourced ones and ones the catalogue lacks.
Pure functions of the forms and a catalogue: nothing is read from or written to the database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.catalog.admission.duplicates import THRESHOLD, concept, score
from app.catalog.model import Catalog, Field, Ledger

SAME_ITEM = 88  # two headers of different forms name one item
# Headers that frame a form rather than name a data item.
NOT_ITEMS = frozenset(
    {"序号", "编号", "合计", "小计", "备注", "填表人", "审核人", "填报单位", "填报日期", "联系人"}
)


@dataclass(frozen=True)
class Form:
    id: int
    name: str
    department: str
    headers: tuple[str, ...]


@dataclass
class Item:
    concept: str
    headers: Counter[str] = field(default_factory=Counter)  # header text -> how many forms print it
    forms: set[int] = field(default_factory=set)
    ledger: str | None = None
    field: str | None = None
    score: float = 0.0

    @property
    def label(self) -> str:
        return self.headers.most_common(1)[0][0]


def source_kind(f: Field | None) -> str:
    """platform | department | township: who keeps the item's values (unknown item: townships)."""
    if f is None or f.source == "township":
        return "township"
    if f.source == "city_platform":
        return "platform"
    return "department"


def _candidates(catalog: Catalog, want: str) -> list[tuple[float, str, str]]:
    out = []
    for lg in catalog.ledgers.values():
        for f in lg.fields:
            s = score(want, concept(f.label))
            if s >= THRESHOLD:
                out.append((s, lg.code, f.code))
    return out


def reachable(catalog: Catalog, subject: Ledger) -> list[str]:
    """Ledgers whose items belong with a subject, nearest first: itself, its parent, the parent's
    one-to-one relations (residence → house, household)."""
    base = catalog.ledger(subject.parent) if subject.parent else subject
    assert base is not None
    out = [subject.code] + ([base.code] if base is not subject else [])
    for rel in catalog.relations.values():
        if rel.source == base.code and not rel.forward_many and rel.target not in out:
            out.append(rel.target)
    return out


def path_of(catalog: Catalog, subject: Ledger, ledger: str, code: str) -> str | None:
    """The report-template path of an item, from the subject's base ledger (person for an
    extension)."""
    base = subject.parent or subject.code
    if ledger == base:
        return code
    lg = catalog.ledger(ledger)
    if lg is not None and lg.parent == base:
        return f"{ledger}.{code}"
    for rel in catalog.relations.values():
        if rel.source == base and rel.target == ledger and not rel.forward_many:
            return f"{rel.forward}.{code}"
    return None


def _items(forms: list[Form]) -> list[Item]:
    items: list[Item] = []
    by_concept: dict[str, Item] = {}
    for form in forms:
        for header in form.headers:
            c = concept(header)
            if not c or c in NOT_ITEMS:
                continue
            item = by_concept.get(c)
            if item is None:
                best = max(items, key=lambda it: score(c, it.concept), default=None)
                if best is not None and score(c, best.concept) >= SAME_ITEM:
                    item = best
                else:
                    item = Item(c)
                    items.append(item)
                by_concept[c] = item
            item.headers[header] += 1
            item.forms.add(form.id)
    return items


def _subject_of(catalog: Catalog, cands: list[list[tuple[float, str, str]]]) -> Ledger | None:
    """The extension most items fall in; with none, the core ledger most items fall in."""
    ext: Counter[str] = Counter()
    core: Counter[str] = Counter()
    for options in cands:
        for ledger in {lg for _, lg, _ in options}:
            lg = catalog.ledger(ledger)
            if lg is not None:
                (ext if lg.kind == "extension" else core)[ledger] += 1
    pick = (ext or core).most_common(1)
    return catalog.ledger(pick[0][0]) if pick else None


def propose(forms: list[Form], catalog: Catalog) -> list[dict[str, Any]]:
    """One proposal per subject (ledger or extension) the forms fall into."""
    per_form: dict[int, Ledger | None] = {}
    for form in forms:
        per_form[form.id] = _subject_of(
            catalog,
            [_candidates(catalog, concept(h)) for h in form.headers if concept(h) not in NOT_ITEMS],
        )
    # A form of only base items (name, ID, address) about an extension's subject, as its name says
    # (残疾人户籍信息核对表), joins that extension when other forms of the batch fall in it.
    extensions = {s.code: s for s in per_form.values() if s is not None and s.kind == "extension"}
    for form in forms:
        subj = per_form[form.id]
        if subj is not None and subj.kind == "core":
            named = [e for e in extensions.values() if e.parent == subj.code and e.label in form.name]
            if named:
                per_form[form.id] = named[0]
    groups: dict[str | None, list[Form]] = {}
    for form in forms:
        subj = per_form[form.id]
        groups.setdefault(subj.code if subj else None, []).append(form)
    return [
        _proposal(catalog, catalog.ledger(code) if code else None, group) for code, group in groups.items()
    ]


def _proposal(catalog: Catalog, subject: Ledger | None, forms: list[Form]) -> dict[str, Any]:
    items = _items(forms)
    near = reachable(catalog, subject) if subject else []
    for item in items:
        options = _candidates(catalog, item.concept)
        if not options:
            continue
        # Best score, then the nearest ledger: 残疾等级 is the extension's item, not the
        # person's flag.
        rank = {code: i for i, code in enumerate(near)}
        options.sort(key=lambda o: (-o[0], rank.get(o[1], len(near)), o[1], o[2]))
        item.score, item.ledger, item.field = options[0]
    by_source: Counter[str] = Counter()
    out_items = []
    for item in sorted(items, key=lambda it: (-len(it.forms), it.label)):
        lg = catalog.ledger(item.ledger) if item.ledger else None
        f = lg.field(item.field) if lg and item.field else None
        kind = source_kind(f)
        by_source[kind] += 1
        out_items.append(
            {
                "label": item.label,
                "headers": sorted(item.headers),
                "forms": len(item.forms),
                "ledger": item.ledger,
                "field": item.field,
                "catalogue_label": f.label if f else None,
                "score": round(item.score),
                "source": kind,
                "catalogue_source": f.source if f else None,
                "owner": f.owner if f else None,
                "frequency": f.frequency if f else None,
                "path": path_of(catalog, subject, item.ledger, item.field)
                if subject and item.ledger and item.field
                else None,
                "new_item": f is None,  # not in the catalogue yet: goes to admission (数据项准入)
            }
        )
    return {
        "subject": subject.code if subject else None,
        "subject_label": subject.label if subject else None,
        "subject_kind": subject.kind if subject else None,
        "base_ledger": (subject.parent or subject.code) if subject else None,
        "forms": [{"id": f.id, "name": f.name} for f in forms],
        "legacy_reports_merged": len(forms),
        "items": out_items,
        "item_count": len(out_items),
        "by_source": {k: by_source.get(k, 0) for k in ("platform", "department", "township")},
        "township_upkeep": by_source.get("township", 0),
    }


def pull_only_template(proposal: dict[str, Any], code: str, name: str) -> dict[str, Any]:
    """A report template spec with one pulled column per catalogued item: what the merged forms
    become at go-live (no gap column, nothing typed by townships)."""
    columns = [
        {
            "kind": "field",
            "code": f"c{i + 1}",
            "label": (it["catalogue_label"] or it["label"])[:60],
            "path": it["path"],
        }
        for i, it in enumerate(i for i in proposal["items"] if i["path"])
    ]
    spec: dict[str, Any] = {
        "code": code,
        "name": name,
        "kind": "list",
        "ledger": proposal["base_ledger"],
        "columns": columns,
    }
    if proposal["subject_kind"] == "extension":
        spec["filter"] = [{"path": proposal["subject"], "op": "exists"}]
    return spec
