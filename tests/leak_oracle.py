"""The leak property tests' oracle: what a caller may read of each field, written independently of
`app/access/policy.py` (the code under test) from the rules in docs/access.md.

Masks are re-implemented here from their documented shapes (500118********1234, 138****5678, 张**,
address cut after the village segment, year, ****), not imported from app/access/masks.py.

Three rules came with issue 8 (items 1, 3 and 7). Each is one function below, named in
`ORACLE_RULES`; all are on. Turning one off (editing the dict) shows what the old behaviour was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.catalog.loader import get_catalog

ORACLE_RULES: dict[str, bool] = {
    # Item 1: a field derived from (or embedding) another is never more readable than its source.
    "derived_capped": True,
    # Item 7: a masked field shows its mask for NULL too, so it does not reveal whether a value exists.
    "masked_null_masked": True,
    # Item 3: service accounts get only grants made to them by name (not their org unit's or role's).
    "service_accounts_named_only": True,
}

# derived (ledger, field) -> the (ledger, field)s it reveals; used where the catalogue declares none
# (a catalogue field's `derived_from: ledger.field`, once there is one, is the declaration).
DERIVED = {
    ("person", "birth_date"): (("person", "id_number"),),
    ("disability", "certificate_number"): (("person", "id_number"),),
    ("house", "owner_id_number"): (("person", "id_number"),),
}

LEVELS = ("hidden", "masked", "read", "write")
DEFAULT = {"public": "read", "internal": "read", "sensitive": "masked", "secret": "hidden"}
RANK = {"named": 4, "role_in_unit": 3, "org_unit": 2, "role": 1}
FULL = "****"


# ---- masks --------------------------------------------------------------------------------------


def _id_card(v: str) -> str:
    return v[:6] + "*" * max(len(v) - 10, 0) + v[-4:]


def _phone(v: str) -> str:
    return v[:3] + "****" + v[-4:] if len(v) >= 7 else FULL


def _name(v: str) -> str:
    return v[:1] + "*" * max(len(v) - 1, 1)


def _address(v: str) -> str:
    ends = [v.find(t) + len(t) for t in ("村", "社区", "居委会") if t in v]
    return v[: min(ends)] + "***" if ends else v[:6] + "***"


def _year(v: str) -> str:
    return v[:4]


def _certificate(v: str) -> str:
    # 500118********1234****: the embedded ID masked like an ID, then a fixed tail.
    return v[:6] + "********" + v[14:18] + "****"


_MASKS = {
    "id_card": _id_card,
    "phone": _phone,
    "name": _name,
    "address": _address,
    "year": _year,
    "certificate": _certificate,
}


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def masked_null(rule: str) -> str | None:
    """What a masked field shows for NULL. A `full` mask shows nothing of a value, so with item 7 it
    shows **** for NULL too; partial masks show part of a value (so its presence) and keep NULL."""
    return FULL if ORACLE_RULES["masked_null_masked"] and rule not in _MASKS else None


def masked(ledger: str, code: str, value: object) -> str | None:
    """The masked form of a value, by the field's catalogue mask rule (none -> full)."""
    rule = get_catalog().ledger(ledger).field(code).mask.value
    if value is None:
        return masked_null(rule)
    fn = _MASKS.get(rule)
    return fn(as_text(value)) if fn else FULL


# ---- callers and grants -------------------------------------------------------------------------


@dataclass(frozen=True)
class G:
    """One grant as the oracle sees it. scope: region prefixes ("" = everything), "own" already resolved."""

    who: str  # named | role_in_unit | org_unit | role
    ledger: str  # a ledger code or "*"
    field: str  # a field code or "*"
    level: str
    scope: tuple[str, ...]


@dataclass
class Caller:
    kind: str  # user | service_account
    home: str  # region prefix of its org unit's subtree
    grants: list[G] = field(default_factory=list)  # in creation order (newest last)


def usable_grants(caller: Caller) -> list[G]:
    """The grants that apply to a caller: service accounts keep only those naming them (item 3)."""
    if caller.kind == "service_account" and ORACLE_RULES["service_accounts_named_only"]:
        return [g for g in caller.grants if g.who == "named"]
    return list(caller.grants)


def _best(grants: list[G]) -> G | None:
    ranked = [(RANK[g.who], g.field != "*", g.ledger != "*", i, g) for i, g in enumerate(grants)]
    return max(ranked, key=lambda t: t[:4])[4] if ranked else None


def raw_level(caller: Caller, ledger: str, code: str) -> str:
    """Most specific grantee, then named field over "*", then named ledger over "*", then newest."""
    hit = _best([g for g in usable_grants(caller) if g.ledger in (ledger, "*") and g.field in (code, "*")])
    if hit is not None:
        return hit.level
    if caller.kind == "user":
        return DEFAULT[get_catalog().ledger(ledger).field(code).sensitivity.value]
    return "hidden"


def sources_of(ledger: str, code: str) -> tuple[tuple[str, str], ...]:
    declared = getattr(get_catalog().ledger(ledger).field(code), "derived_from", ())
    if declared:
        return tuple(tuple(ref.split(".", 1)) for ref in declared)
    return DERIVED.get((ledger, code), ())


def capped_by_source(caller: Caller, ledger: str, code: str, level: str) -> str:
    """A derived field is never more readable than any field it reveals (item 1)."""
    if not ORACLE_RULES["derived_capped"]:
        return level
    return min([level, *(level_of(caller, *src) for src in sources_of(ledger, code))], key=LEVELS.index)


def level_of(caller: Caller, ledger: str, code: str) -> str:
    return capped_by_source(caller, ledger, code, raw_level(caller, ledger, code))


def scope_of(caller: Caller, ledger: str) -> tuple[str, ...]:
    """Row scope: from the best non-hidden grant on the ledger, else users' own subtree, else none."""
    hit = _best([g for g in usable_grants(caller) if g.ledger in (ledger, "*") and g.level != "hidden"])
    if hit is not None:
        return hit.scope
    return (caller.home,) if caller.kind == "user" else ()


def in_scope(caller: Caller, ledger: str, region_code: str) -> bool:
    return any(region_code.startswith(p) for p in scope_of(caller, ledger))


def readable(caller: Caller, ledger: str, code: str, region_code: str) -> bool:
    """May the caller read this field of a row in this region in plain through REST?"""
    return in_scope(caller, ledger, region_code) and LEVELS.index(level_of(caller, ledger, code)) >= 2


def expected(caller: Caller, ledger: str, code: str, value: object) -> tuple[str, object]:
    """(level, what the caller gets for the value): hidden -> absent, masked -> mask, read -> plain."""
    level = level_of(caller, ledger, code)
    if level == "hidden":
        return level, None
    if level == "masked":
        return level, masked(ledger, code, value)
    return level, value


def at_least_read(level: str) -> bool:
    return LEVELS.index(level) >= 2
