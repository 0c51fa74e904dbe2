"""The demo-district generator, without a database: determinism, valid keys, consistent links."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import date

import pytest

from app.catalog.loader import RESERVED, get_catalog
from app.catalog.validators import (
    check_id_card,
    check_id_card_consistent,
    check_parcel_code,
    check_phone,
    check_uscc,
    make_id_card,
)
from app.demo.activity import CHECKSUM_FLAG
from app.demo.district import region_rows, townships, villages
from app.demo.generate import AS_OF, COLUMNS, generate


@pytest.fixture(scope="module")
def rows() -> dict[str, list[tuple]]:
    """The whole small district, table -> rows."""
    out: dict[str, list[tuple]] = {t: [] for t in COLUMNS}
    for batch in generate("small"):
        for table, batch_rows in batch.rows.items():
            out[table] += batch_rows
    return out


def _col(table: str, name: str) -> int:
    return COLUMNS[table].index(name)


def _records(rows, table: str) -> list[dict]:
    return [dict(zip(COLUMNS[table], r, strict=True)) for r in rows[table]]


def _first(seed: int, n_batches: int = 3) -> list:
    return [b.rows for b in itertools.islice(generate("small", seed), n_batches)]


def test_same_seed_same_rows_other_seed_other_rows():
    assert _first(7) == _first(7)
    assert _first(7)[0]["lg_person"] != _first(8)[0]["lg_person"]


def test_district_tree():
    ts = townships()
    assert len(ts) == 23
    assert {t.code9 for t in ts} == {f"500118{n:03d}" for n in [*range(1, 8), *range(100, 116)]}
    assert sum(t.is_street for t in ts) == 7
    vs = villages()
    assert 260 <= len(vs) <= 300
    assert len({v.code for v in vs}) == len(vs) and len({v.full_name for v in vs}) == len(vs)
    for v in vs:
        assert re.fullmatch(r"500118\d{6}", v.code) and v.code.startswith(v.township.code9)
        assert v.name.endswith("社区" if v.is_community else "村")
        assert v.code[9] == ("0" if v.is_community else "2")
    levels = Counter(r[2] for r in region_rows())
    assert levels == {1: 1, 2: 1, 3: 1, 4: 23, 5: len(vs)}


def test_columns_exist_in_catalogue():
    cat = get_catalog()
    for table, cols in COLUMNS.items():
        kind, code = table.split("_", 1)
        if kind == "lg":
            lg = cat.ledger(code)
            known = {f.code for f in lg.fields}
        else:
            known = {f.code for f in cat.relations[code].attributes}
        assert set(cols) <= known | RESERVED, table


def test_row_shapes_and_ids(rows):
    for table, table_rows in rows.items():
        assert all(len(r) == len(COLUMNS[table]) for r in table_rows), table
        assert [r[0] for r in table_rows] == list(range(1, len(table_rows) + 1)), table
    assert 5_500 <= len(rows["lg_person"]) <= 7_000


def test_every_region_code_is_a_village_of_the_district(rows):
    codes = {v.code for v in villages()}
    for table, table_rows in rows.items():
        assert {r[1] for r in table_rows} <= codes, table


def test_person_ids_are_valid_unique_and_match_the_record(rows):
    people = _records(rows, "lg_person")
    assert len({p["id_number"] for p in people}) == len(people)
    natives = 0
    for p in people:
        info = check_id_card(p["id_number"])
        check_id_card_consistent(info, p["birth_date"], p["sex"])
        assert info.birth_date <= AS_OF and 0 <= (AS_OF - info.birth_date).days // 365 <= 101
        natives += info.division == "500118"
        if p["phone"] is not None:
            assert check_phone(p["phone"]) == p["phone"]
        if p["elderly_living_alone"]:
            assert (AS_OF - p["birth_date"]).days >= 65 * 365
    assert 0.75 < natives / len(people) < 0.95


def test_fast_id_path_agrees_with_make_id_card(rows):
    for p in _records(rows, "lg_person")[:500]:
        n = p["id_number"]
        assert make_id_card(n[:6], p["birth_date"], int(n[14:17]), p["sex"]) == n


def test_households_live_in_houses_with_valid_codes(rows):
    cat = get_catalog()
    pattern = re.compile(cat.ledger("house").field("house_code").validator.pattern)
    houses = {h["id"]: h for h in _records(rows, "lg_house")}
    assert all(pattern.fullmatch(h["house_code"]) for h in houses.values())
    assert len({h["house_code"] for h in houses.values()}) == len(houses)
    people = {p["id"]: p for p in _records(rows, "lg_person")}
    res = _records(rows, "rel_residence")
    assert sorted(r["from_id"] for r in res) == sorted(people)
    house_of = {r["from_id"]: r["to_id"] for r in res}
    household_house = {r["from_id"]: r["to_id"] for r in _records(rows, "rel_household_house")}
    heads = [r for r in _records(rows, "rel_household_member") if r["relation_to_head"] == "01"]
    assert len(heads) == len(houses) == len(household_house)
    for r in heads:
        h, p = houses[household_house[r["to_id"]]], people[r["from_id"]]
        assert house_of[p["id"]] == h["id"]
        assert r["region_code"] == p["region_code"] == h["region_code"]
        if h["occupancy"] == "1":
            assert (h["owner_name"], h["owner_id_number"]) == (p["name"], p["id_number"])
        assert 40 <= h["floor_area"] <= 300
    sizes = Counter(r["to_id"] for r in res)
    assert set(sizes.values()) <= set(range(1, 7))


def test_households_have_one_head_members_and_a_house(rows):
    cat = get_catalog()
    pattern = re.compile(cat.ledger("household").field("household_no").validator.pattern)
    households = {h["id"]: h for h in _records(rows, "lg_household")}
    assert all(
        pattern.fullmatch(h["household_no"]) and h["household_no"].startswith(h["region_code"])
        for h in households.values()
    )
    assert len({h["household_no"] for h in households.values()}) == len(households)
    assert {h["household_kind"] for h in households.values()} == {"1"}
    people = {p["id"]: p for p in _records(rows, "lg_person")}
    members = _records(rows, "rel_household_member")
    # Every person belongs to exactly one household, of their own village; each household has one head.
    assert sorted(m["from_id"] for m in members) == sorted(people)
    assert all(
        m["region_code"] == people[m["from_id"]]["region_code"] == households[m["to_id"]]["region_code"]
        for m in members
    )
    heads = Counter(m["to_id"] for m in members if m["relation_to_head"] == "01")
    assert set(heads) == set(households) and set(heads.values()) == {1}
    codes = set(cat.codelists["relation_to_head"].values)
    assert {m["relation_to_head"] for m in members} <= codes
    # Members of one household share its house and its low-income status (the generator decides per 户).
    house_of = {r["from_id"]: r["to_id"] for r in _records(rows, "rel_residence")}
    household_house = {r["from_id"]: r["to_id"] for r in _records(rows, "rel_household_house")}
    assert set(household_house) == set(households)
    by_household: dict[int, list[dict]] = {}
    for m in members:
        by_household.setdefault(m["to_id"], []).append(people[m["from_id"]])
    for hid, persons in by_household.items():
        assert {house_of[p["id"]] for p in persons} == {household_house[hid]}
        assert len({p["low_income_status"] for p in persons}) == 1
    assert 2.2 < len(members) / len(households) < 3.0


def test_credit_codes_valid_except_flagged(rows):
    orgs = _records(rows, "lg_organisation")
    assert len({o["credit_code"] for o in orgs}) == len(orgs)
    flagged = 0
    for o in orgs:
        result = check_uscc(o["credit_code"])
        assert result.checksum_ok == (o["flags"] != CHECKSUM_FLAG)
        assert o["flags"] in ("{}", CHECKSUM_FLAG)
        flagged += not result.checksum_ok
    assert 0 < flagged <= 0.03 * len(orgs)
    assert len({o["name"] for o in orgs}) == len(orgs)
    reps = {(m["to_id"], m["from_id"]) for m in _records(rows, "rel_membership") if m["role"] == "1"}
    people = {p["id"]: p for p in _records(rows, "lg_person")}
    assert len(reps) == len(orgs)
    names = {o["id"]: o["legal_representative"] for o in orgs}
    assert all(names[org] == people[person]["name"] for org, person in reps)
    pairs = [(m["from_id"], m["to_id"]) for m in _records(rows, "rel_membership")]
    assert len(set(pairs)) == len(pairs)


def test_parcels_and_contracts(rows):
    land = _records(rows, "lg_land")
    assert land and len({x["parcel_code"] for x in land}) == len(land)
    for x in land:
        assert check_parcel_code(x["parcel_code"]) == x["parcel_code"]
        assert x["parcel_code"].startswith("500118" + x["region_code"][6:])
        assert 0.3 <= x["area_mu"] <= 30
        if x["transfer_status"] != "0":
            assert x["transferee"] and 300 <= x["annual_rent"] <= 1200
    people = {p["id"]: p for p in _records(rows, "lg_person")}
    contracts = {c["to_id"]: c for c in _records(rows, "rel_land_contract")}
    assert set(contracts) == {x["id"] for x in land}
    for x in land:
        person = people[contracts[x["id"]]["from_id"]]
        assert person["name"] == x["contractor_name"] and person["region_code"] == x["region_code"]
    share = sum(x["transfer_status"] != "0" for x in land) / len(land)
    assert 0.15 < share < 0.35


def test_extensions_match_persons(rows):
    cat = get_catalog()
    cert = re.compile(cat.ledger("disability").field("certificate_number").validator.pattern)
    people = {p["id"]: p for p in _records(rows, "lg_person")}
    dis = _records(rows, "lg_disability")
    assert {d["parent_id"] for d in dis} == {i for i, p in people.items() if p["is_disabled"]}
    assert len(dis) == len({d["parent_id"] for d in dis})
    for d in dis:
        p = people[d["parent_id"]]
        assert d["disability_level"] == p["disability_level"] and d["region_code"] == p["region_code"]
        assert cert.fullmatch(d["certificate_number"]) and d["certificate_number"].startswith(p["id_number"])
        assert d["certificate_number"][18:20] == d["disability_type"] + d["disability_level"]
        assert all(d[c] is not None for c in ("certificate_issued_on", "subsidy_amount", "education_level"))
    assert 0.04 < len(dis) / len(people) < 0.08
    low = _records(rows, "lg_low_income")
    assert {x["parent_id"] for x in low} == {i for i, p in people.items() if p["low_income_status"] != "0"}
    assert all(people[x["parent_id"]]["low_income_status"] == x["category"] for x in low)
    assert 0.015 < len(low) / len(people) < 0.05


def test_events_and_things(rows):
    people = {p["id"]: p for p in _records(rows, "lg_person")}
    events = {e["id"]: e for e in _records(rows, "lg_event")}
    for e in events.values():
        assert re.fullmatch(r"SJ\d{8,24}", e["event_number"])
        assert (AS_OF - e["occurred_at"].date()).days <= 731
        assert (e["closed_at"] is not None) == (e["status"] in ("3", "4"))
    links = _records(rows, "rel_event_person")
    assert {link["from_id"] for link in links} == set(events)
    for link in links:
        assert link["region_code"] == events[link["from_id"]]["region_code"]
        assert people[link["to_id"]]["region_code"][:9] == link["region_code"][:9]
    things = _records(rows, "lg_thing")
    assert all(re.fullmatch(r"[A-Z]{2,4}-500118-\d{6}", t["asset_code"]) for t in things)
    owned = {r[2] for r in rows["rel_thing_organisation"]} | {r[2] for r in rows["rel_thing_house"]}
    assert owned == {t["id"] for t in things}


def test_age_pyramid_is_plausible(rows):
    ages = [(AS_OF - p[_col("lg_person", "birth_date")]).days // 365 for p in rows["lg_person"]]
    n = len(ages)
    assert 0.10 < sum(a < 15 for a in ages) / n < 0.25
    assert 0.15 < sum(a >= 60 for a in ages) / n < 0.32
    assert max(ages) <= 101 and min(ages) >= 0
    assert date(1925, 1, 1) <= min(p[_col("lg_person", "birth_date")] for p in rows["lg_person"])
