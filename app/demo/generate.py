"""Deterministic demo-district rows, produced without a database (tests use them directly).

generate() yields one Batch per village: plain tuples per table in COLUMNS order, with explicit ids,
so the loader can COPY them as they come and memory stays bounded at full scale (1.2 M persons).
Everything derives from one random.Random(seed); the org tree itself is fixed (district.py).

Households are the unit: a household (户) of 1-6 persons, each a member with their relation to the head,
lives in one house; persons of rural villages contract land; organisations, events and things of a
village point at its own persons and houses. Household rows draw nothing from the RNG, so adding them
left every other row of a seed as it was.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from app.catalog.validators import id_card_check_char, make_id_card
from app.demo import names
from app.demo.district import DISTRICT_CODE, PREFIX, Village, villages

# The demo's "today": fixed so a seed always yields the same rows (ages, event dates, inspections).
AS_OF = date(2026, 11, 1)
TZ = timezone(timedelta(hours=8))
SCALES: dict[str, int] = {"small": 6_000, "medium": 120_000, "full": 1_200_000}  # persons
ORGS_PER_PERSON = 0.05  # ~60 k organisations at full scale, besides one committee per village
EVENTS_PER_PERSON = 1 / 30
THINGS_PER_PERSON = 1 / 40

_BASE = ("id", "region_code", "provenance")
_REL = ("id", "region_code", "from_id", "to_id")
# Column order of the row tuples. Catalogue fields left out stay NULL (death_date, remark …).
COLUMNS: dict[str, tuple[str, ...]] = {
    "lg_person": (
        *_BASE,
        "name",
        "id_number",
        "sex",
        "birth_date",
        "ethnicity",
        "phone",
        "household_type",
        "hukou_address",
        "residence_address",
        "marital_status",
        "political_status",
        "employment_status",
        "is_disabled",
        "disability_level",
        "low_income_status",
        "elderly_living_alone",
        "is_veteran",
    ),
    "lg_house": (
        *_BASE,
        "house_code",
        "standard_address",
        "building",
        "unit",
        "room",
        "floor_area",
        "use",
        "structure",
        "built_year",
        "ownership_type",
        "owner_name",
        "owner_id_number",
        "occupancy",
        "is_dangerous",
    ),
    "rel_residence": (*_REL, "since"),
    "lg_household": (*_BASE, "household_no", "household_kind", "registered_on"),
    "rel_household_member": (*_REL, "relation_to_head", "since"),
    "rel_household_house": _REL,
    "lg_disability": (
        *_BASE,
        "parent_id",
        "certificate_number",
        "disability_type",
        "disability_level",
        "certificate_issued_on",
        "certificate_valid_until",
        "guardian_name",
        "guardian_phone",
        "living_subsidy",
        "care_subsidy",
        "subsidy_amount",
        "rehabilitation_need",
        "rehabilitation_received",
        "assistive_device",
        "employed",
        "education_level",
        "medical_insurance",
        "pension_insurance",
        "barrier_free_renovated",
    ),
    "lg_low_income": (
        *_BASE,
        "parent_id",
        "category",
        "approved_on",
        "household_size",
        "monthly_allowance",
        "last_review_on",
    ),
    "lg_land": (
        *_BASE,
        "parcel_code",
        "parcel_name",
        "area_mu",
        "land_type",
        "contractor_name",
        "contract_number",
        "contract_start",
        "contract_end",
        "transfer_status",
        "transferee",
        "transfer_area_mu",
        "annual_rent",
        "is_abandoned",
    ),
    "rel_land_contract": (*_REL, "share"),
    "lg_organisation": (
        *_BASE,
        "flags",
        "credit_code",
        "name",
        "org_type",
        "legal_representative",
        "legal_rep_phone",
        "address",
        "industry",
        "registered_capital",
        "established_on",
        "employees",
        "is_active",
    ),
    "rel_membership": (*_REL, "role"),
    "lg_event": (
        *_BASE,
        "event_number",
        "event_type",
        "title",
        "occurred_at",
        "place",
        "description",
        "status",
        "handler",
        "closed_at",
    ),
    "rel_event_person": (*_REL, "role"),
    "rel_event_house": _REL,
    "rel_event_land": _REL,
    "rel_event_organisation": _REL,
    "lg_thing": (
        *_BASE,
        "asset_code",
        "name",
        "thing_type",
        "location",
        "owner_name",
        "status",
        "last_inspected_on",
        "next_inspection_due",
    ),
    "rel_thing_organisation": _REL,
    "rel_thing_house": _REL,
}
# Positions in a person tuple that other generators read.
P_ID, P_REGION, P_NAME, P_IDNUM, P_SEX, P_BIRTH, P_PHONE, P_ADDR = 0, 1, 3, 4, 5, 6, 8, 11


def default_provenance(at: datetime | date = AS_OF) -> str:
    """Provenance of every demo row: the load is the baseline, so there is no history behind it."""
    return json.dumps({"*": {"source": "demo", "at": at.isoformat()}}, separators=(",", ":"))


@dataclass
class Batch:
    """The rows of one village, table by table (COLUMNS order)."""

    village: Village
    rows: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in COLUMNS})


def weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Callable[[], Any]:
    """A fast picker: bisect over cumulative weights (random.choices re-sums them on every call)."""
    items = [p[0] for p in pairs]
    cum = list(itertools.accumulate(p[1] for p in pairs))
    total, r, bis = cum[-1], rng.random, bisect.bisect
    return lambda: items[bis(cum, r() * total)]


# Household sizes (Chongqing 2020 census: mean ~2.6) -> ~450 k households for 1.2 M persons.
_SIZES = ((1, 25), (2, 30), (3, 20), (4, 13), (5, 8), (6, 4))
# Age of people heading a 1-2 person household: young singles, couples, many elderly.
_LONE_AGE = (
    (20, 6),
    (25, 7),
    (30, 6),
    (35, 5),
    (40, 5),
    (45, 7),
    (50, 9),
    (55, 10),
    (60, 11),
    (65, 11),
    (70, 9),
    (75, 7),
    (80, 4),
    (85, 2),
    (90, 0.7),
    (95, 0.2),
)
_ETHNICITY = (("01", 970), ("15", 16), ("06", 10), ("03", 2), ("08", 1), ("07", 1))
_DISABILITY_TYPE = (("4", 45), ("2", 15), ("1", 12), ("6", 10), ("5", 8), ("7", 8), ("3", 2))
_DISABILITY_LEVEL = (("1", 12), ("2", 25), ("3", 33), ("4", 30))
_LAND_TYPE = (
    ("0101", 38),
    ("0103", 28),
    ("0102", 4),
    ("0201", 6),
    ("0202", 4),
    ("0301", 12),
    ("1104", 4),
    ("0702", 4),
)
# GB/T 37346 feature codes: J 集体; D 承包耕地, E 承包林地, C 宅基地, Y 其他.
_PARCEL_KIND = {"0301": "JE", "0702": "JC", "1104": "JY"}
_TRANSFER = (("0", 75), ("1", 15), ("2", 4), ("3", 4), ("4", 1), ("5", 1))
_PLACES = "大田坎 堰塘湾 坡地 河坝 山坳 岩脚 院坝边 林盘 沟口 梁子".split()
_EDUCATION = {
    "old": ("未上学", "小学", "小学", "初中"),
    "mid": ("小学", "初中", "初中", "高中", "中专"),
    "new": ("初中", "高中", "中专", "大专", "本科"),
}
_DEVICES = {"4": ("轮椅", "拐杖", "假肢", "护理床"), "1": ("盲杖", "助视器"), "2": ("助听器",)}
_REHAB = ("康复训练", "辅助器具适配", "医疗康复", "无")
_MOBILE = names.MOBILE_PREFIXES


def _era(year: int) -> str:
    return "old" if year < 1965 else "mid" if year < 1995 else "new"


class DistrictGenerator:
    def __init__(
        self,
        scale: str = "small",
        seed: int = 20261123,
        *,
        provenance: str | None = None,
        as_of: date = AS_OF,
    ):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}")
        self.rng = rng = random.Random(seed)
        self.provenance = provenance or default_provenance(as_of)
        self.as_of = as_of
        self.as_of_ord = as_of.toordinal()
        self.ids = dict.fromkeys(COLUMNS, 0)  # last id used per table
        self._id_seq: dict[tuple[str, int, str], int] = {}  # (division, birth, sex) -> IDs issued
        self.seq: dict[str, int] = {}  # running numbers: events, things by prefix, org codes
        self._cache: dict[str, Any] = {}
        self._ymd: dict[int, str] = {}  # birth ordinal -> YYYYMMDD
        self._org_names: set[str] = set()
        surnames = [(c, w) for chars, w in names.SURNAMES for c in chars]
        self.surname = weighted(rng, surnames)
        self.size = weighted(rng, _SIZES)
        self.lone_age = weighted(rng, _LONE_AGE)
        self.ethnicity = weighted(rng, _ETHNICITY)
        self.disability_type = weighted(rng, _DISABILITY_TYPE)
        self.disability_level = weighted(rng, _DISABILITY_LEVEL)
        self.land_type = weighted(rng, _LAND_TYPE)
        self.transfer = weighted(rng, _TRANSFER)
        vs = villages()
        total = sum(v.weight for v in vs)
        self.targets = [(v, round(SCALES[scale] * v.weight / total)) for v in vs]

    # --- small helpers ---------------------------------------------------------------------------

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def next_seq(self, key: str) -> int:
        self.seq[key] = n = self.seq.get(key, 0) + 1
        return n

    def cache(self, key: str, make: Callable[[], Any]) -> Any:
        """Per-generator memo for pickers built on first use (they hold the generator's RNG)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def unique_name(self, make: Callable[[], str]) -> str:
        """Organisation names are unique in a district (名称登记); retry, then number the duplicate."""
        name = make()
        for _ in range(20):
            if name not in self._org_names:
                break
            name = make()
        base, k = name, 1
        while name in self._org_names:
            k += 1
            name = f"{base}（{k}）"
        self._org_names.add(name)
        return name

    def between(self, lo: int, hi: int) -> int:
        """randint without its argument checks (a third of the time on hot paths)."""
        return lo + int(self.rng.random() * (hi - lo + 1))

    def sround(self, x: float) -> int:
        """Stochastic rounding: small villages still get their fair share of events and things."""
        return int(x + self.rng.random())

    def given_name(self, sex: str, year: int) -> str:
        chars = names.GIVEN[(sex, _era(year))]
        r, n = self.rng.random, len(chars)
        return chars[int(r() * n)] + (chars[int(r() * n)] if r() < 0.8 else "")

    def name(self, sex: str, year: int) -> str:
        return self.surname() + self.given_name(sex, year)

    def phone(self) -> str:
        r = self.rng.random
        return _MOBILE[int(r() * len(_MOBILE))] + f"{int(r() * 100_000_000):08d}"

    def id_number(self, division: str, birth: date, birth_ord: int, sex: str) -> str:
        """A valid, district-unique ID: the 3-digit sequence counts people per (place, day, sex).

        Same digits as make_id_card(division, birth, seq3, sex) (tests check they agree), built
        from a cached date string: make_id_card's strftime adds ~15 % to a full-scale generation.
        """
        key = (division, birth_ord, sex)
        n = self._id_seq.get(key, 0)
        if n >= 500:
            raise RuntimeError("more than 500 people share a birth place, day and sex")
        self._id_seq[key] = n + 1
        ymd = self._ymd.get(birth_ord)
        if ymd is None:
            ymd = self._ymd[birth_ord] = f"{birth.year:04d}{birth.month:02d}{birth.day:02d}"
        # Spread sequences so they do not all start at 001; the last digit's parity is the sex.
        seq = (birth_ord * 37 + n) % 500 * 2 + (sex == "1")
        first17 = f"{division}{ymd}{seq:03d}"
        return first17 + id_card_check_char(first17)

    def date_between(self, lo: int, hi: int) -> date:
        """A date from ordinal lo to hi inclusive (hi is clipped to the demo's today)."""
        hi = min(hi, self.as_of_ord)
        return date.fromordinal(lo if lo >= hi else self.between(lo, hi))

    # --- the district ---------------------------------------------------------------------------

    def batches(self) -> Iterator[Batch]:
        from app.demo import activity

        for v, n_persons in self.targets:
            ctx = VillageRows(Batch(v), estates=v.groups)
            self.households(ctx, n_persons)
            activity.organisations(self, ctx)
            self.land(ctx)
            activity.events(self, ctx)
            activity.things(self, ctx)
            yield ctx.batch

    def households(self, ctx: VillageRows, n_persons: int) -> None:
        made = 0
        while made < n_persons:
            made += self.household(ctx, self.household_shape())

    def household_shape(self) -> list[tuple[str, str, int]]:
        """(relation to head, sex, age) of each member; the head first."""
        rng, r = self.rng, self.rng.random
        n = self.size()
        spouse = n >= 2 and (r() < 0.75 if n == 2 else r() < 0.92)
        rest = n - 1 - spouse
        parents = 0
        if rest:
            parents = {
                1: 0 if r() < 0.8 else 1,
                2: 0 if r() < 0.75 else 1,
                3: rng.choice((0, 1, 1, 2)),
                4: 2,
                5: 2,
            }[rest]
            parents = min(parents, rest)
        children = rest - parents
        if parents:
            head_age = self.between(30, 55)
        elif children:
            head_age = self.between(25, 62)
        else:
            head_age = self.lone_age() + self.between(0, 4)
        head_sex = "1" if r() < 0.72 else "2"
        out = [("01", head_sex, head_age)]
        if spouse:
            out.append(
                ("02", "2" if head_sex == "1" else "1", max(18, min(100, head_age + int(rng.gauss(0, 3)))))
            )
        child_age = head_age - self.between(22, 34)
        for _ in range(children):
            sex = "1" if r() < 0.52 else "2"
            out.append(("10" if sex == "1" else "20", sex, max(0, child_age)))
            child_age -= self.between(1, 6)
        for i in range(parents):
            sex = "1" if (parents == 2 and i == 0) or (parents == 1 and r() < 0.4) else "2"
            out.append(("50", sex, min(100, head_age + self.between(22, 34))))
        return out

    def household(self, ctx: VillageRows, shape: list[tuple[str, str, int]]) -> int:
        """Persons, their household (户) and house, membership and residence links (+ disability /
        low-income rows); returns size."""
        r, v, as_of_ord = self.rng.random, ctx.village, self.as_of_ord
        rows = ctx.batch.rows
        # Per-member draws first: the household's low-income status depends on them.
        members = []
        for rel, sex, age in shape:
            p_dis = 0.015 if age < 18 else 0.045 if age < 60 else 0.10 if age < 80 else 0.18
            level = self.disability_level() if r() < p_dis else None
            members.append((rel, sex, age, as_of_ord - int((age + r()) * 365.2425), level))
        size, head_age = len(shape), shape[0][2]
        couple = size > 1 and shape[1][0] == "02"
        any_disabled = any(m[4] for m in members)
        lone_elder = size == 1 and head_age >= 65
        low = "0"
        if r() < (0.12 if any_disabled else 0.05 if lone_elder else 0.014):
            if size == 1 and (head_age >= 60 or any_disabled) and r() < 0.4:
                low = "2"  # 特困供养: people living alone without support
            else:
                low = "1" if r() < 0.65 else "3" if r() < 0.6 else "4"

        hh_no = ctx.households = ctx.households + 1
        addr, building, unit, room = self.address(ctx, hh_no)
        hh = _Household(
            addr=addr,
            low=low,
            lone_elder=lone_elder,
            couple=couple,
            parents=sum(m[0] == "50" for m in members),
            ethnicity=self.ethnicity(),
            htype=("3" if r() < 0.75 else "2") if v.is_community else ("1" if r() < 0.45 else "3"),
            surname=self.surname(),
        )
        # Children carry the father's surname: the spouse's when a woman heads a couple.
        hh.kids_surname = self.surname() if shape[0][1] == "2" and couple else hh.surname
        persons = [self.person(ctx, hh, *m) for m in members]
        head = persons[0]
        rows["lg_person"] += persons
        ctx.persons += persons
        ctx.adults += [p for p, m in zip(persons, members, strict=True) if 22 <= m[2] <= 75]

        house_id, built_year = self.house(ctx, head, hh_no, addr, building, unit, room)
        # Residence: the head moved in as an adult, after the house was built; children at birth.
        since_ord = self.date_between(
            max(date(built_year, 1, 1).toordinal(), head[P_BIRTH].toordinal() + 18 * 365), as_of_ord
        ).toordinal()
        # The 户 registered when the head moved in; 户号: the village code + its household number.
        since = date.fromordinal(since_ord)
        household_id = self.ctx_row(
            ctx, "lg_household", (v.code, self.provenance, f"{v.code}{hh_no:04d}", "1", since)
        )
        self.ctx_row(ctx, "rel_household_house", (v.code, household_id, house_id))
        residence, member = rows["rel_residence"], rows["rel_household_member"]
        for p, m in zip(persons, members, strict=True):
            moved_in = date.fromordinal(max(since_ord, m[3]))
            residence.append((self.next_id("rel_residence"), v.code, p[P_ID], house_id, moved_in))
            member.append(
                (self.next_id("rel_household_member"), v.code, p[P_ID], household_id, m[0], moved_in)
            )
            ctx.house_of[p[P_ID]] = house_id
            if m[4] is not None:
                self.disability(ctx, p, m[2], m[4], low != "0", persons)
            if low != "0":
                self.low_income(ctx, p, low, size)
        if not v.is_community:
            ctx.farmers.append((head, hh_no))
        return size

    def person(
        self,
        ctx: VillageRows,
        hh: _Household,
        rel: str,
        sex: str,
        age: int,
        birth_ord: int,
        level: str | None,
    ) -> tuple:
        r = self.rng.random
        birth = date.fromordinal(birth_ord)
        if rel == "01" or (rel == "50" and sex == "1"):
            surname = hh.surname
        elif rel in ("10", "20", "30"):
            surname = hh.kids_surname
        else:
            surname = self.surname()
        # ID numbers keep the place of birth; most were born here, some moved their hukou here too.
        if r() < (0.9 if age < 30 else 0.8):
            division, hukou = DISTRICT_CODE, hh.addr
        else:
            division, origin = self.rng.choice(names.ORIGINS)
            hukou = hh.addr if r() < 0.6 else f"{origin}{self.village_name()}{self.between(1, 12)}组"
        if rel == "02" or (rel == "01" and hh.couple):
            marital = "20" if r() < 0.93 else "22"
        elif rel == "50":
            marital = "20" if hh.parents == 2 else "30"
        elif age < 20:
            marital = "10"
        elif rel in ("10", "20"):
            marital = "10" if r() < 0.9 else "40"
        elif age < 30:
            marital = "10"
        elif age < 60:
            marital = "10" if r() < 0.4 else "40" if r() < 0.65 else "30"
        else:
            marital = "30" if r() < 0.7 else "40" if r() < 0.5 else "10"
        if age >= 18 and r() < 0.075:
            political = "01"
        elif 14 <= age <= 28 and r() < 0.35:
            political = "03"
        else:
            political = "02" if age >= 18 and r() < 0.005 else "13"
        x = r()
        if age < 6:
            employment = None
        elif age < 18:
            employment = "5"
        elif age < 23:
            employment = "5" if x < 0.6 else "1" if x < 0.85 else "2" if x < 0.95 else "6"
        elif age < 60:
            employment = (
                "1" if x < 0.62 else "2" if x < 0.80 else "3" if x < 0.85 else "6" if x < 0.95 else "9"
            )
        else:
            farming_on = 0.58 if ctx.village.is_community else 0.72  # villagers farm past 60
            employment = "4" if x < 0.5 else "1" if x < farming_on else "6"
        return (
            self.next_id("lg_person"),
            ctx.village.code,
            self.provenance,
            surname + self.given_name(sex, birth.year),
            self.id_number(division, birth, birth_ord, sex),
            sex,
            birth,
            hh.ethnicity if rel != "02" or r() < 0.9 else self.ethnicity(),
            self.phone() if age >= 16 and r() < (0.92 if age < 75 else 0.55) else None,
            hh.htype,
            hukou,
            hh.addr,
            marital,
            political,
            employment,
            level is not None,
            level,
            hh.low,
            hh.lone_elder,
            sex == "1" and 35 <= age <= 85 and r() < 0.04,
        )

    def village_name(self) -> str:
        return self.rng.choice(names.VILLAGE_A) + self.rng.choice(names.VILLAGE_B) + "村"

    def house(
        self,
        ctx: VillageRows,
        head: tuple,
        hh_no: int,
        addr: str,
        building: str | None,
        unit: str | None,
        room: str | None,
    ) -> tuple[int, int]:
        """The household's house, owned by the head unless rented / lent; returns (id, built year)."""
        rng, r, v = self.rng, self.rng.random, ctx.village
        occupancy = "1" if r() < 0.86 else "2" if r() < 0.64 else "4"
        if occupancy == "1":
            owner, owner_id = head[P_NAME], head[P_IDNUM]
        else:
            o_birth = date.fromordinal(self.as_of_ord - self.between(30 * 365, 80 * 365))
            owner = self.name("1", o_birth.year)
            owner_id = make_id_card(DISTRICT_CODE, o_birth, rng.randrange(1000), "1")
        if v.is_community:
            area = round(rng.triangular(40, 160, 88), 2)
            use = "10" if r() < 0.95 else "20"
            structure = "1" if r() < 0.75 else "2"
            ownership = "1" if r() < 0.85 else "4" if r() < 0.55 else "3"
            built_year = self.between(1985, 2023)
        else:
            area = round(rng.triangular(60, 300, 140), 2)
            x = r()
            use = "10" if x < 0.95 else "20" if x < 0.98 else "50"
            x = r()
            structure = "2" if x < 0.55 else "3" if x < 0.75 else "4" if x < 0.87 else "1"
            ownership = "1" if r() < 0.97 else "2"
            built_year = self.between(1975, 2022)
        dangerous = r() < (0.2 if structure == "4" else 0.05 if structure == "3" else 0.005)
        house_id = self.ctx_row(
            ctx,
            "lg_house",
            (
                v.code,
                self.provenance,
                f"{v.code}{hh_no:06d}",
                addr,
                building,
                unit,
                room,
                area,
                use,
                structure,
                built_year,
                ownership,
                owner,
                owner_id,
                occupancy,
                dangerous,
            ),
        )
        ctx.houses.append((house_id, head, addr))
        return house_id, built_year

    def address(self, ctx: VillageRows, hh_no: int) -> tuple[str, str | None, str | None, str | None]:
        """Standard address; communities are flats (building, unit, room) in estates on their roads."""
        v = ctx.village
        base = PREFIX + v.full_name
        if not v.is_community:
            return f"{base}{1 + hh_no % v.groups}组{1 + hh_no // v.groups}号", None, None, None
        r = self.rng.random
        # A random free flat: estates of 20 buildings x 3 units x 12 floors x 2 doors. A community
        # starts with v.groups estates and gets another whenever they are 60 % taken.
        if len(ctx.flats) > 0.6 * 1440 * ctx.estates:
            ctx.estates += 1
        while True:
            flat = (
                int(r() * ctx.estates),
                1 + int(r() * 20),
                1 + int(r() * 3),
                1 + int(r() * 12),
                1 + int(r() * 2),
            )
            if flat not in ctx.flats:
                ctx.flats.add(flat)
                break
        estate, b, u, floor, door = flat
        room = f"{floor}{door:02d}"
        road = v.roads[estate % len(v.roads)]
        return f"{base}{road}{18 + 24 * estate}号{b}栋{u}单元{room}", f"{b}栋", f"{u}单元", room

    def disability(
        self, ctx: VillageRows, p: tuple, age: int, level: str, poor: bool, household: list[tuple]
    ) -> None:
        rng, r = self.rng, self.rng.random
        dtype = self.disability_type()
        birth_ord = p[P_BIRTH].toordinal()
        issued = self.date_between(max(birth_ord + 180, date(2008, 1, 1).toordinal()), self.as_of_ord)
        guardian = guardian_phone = None
        if age < 18 or dtype in ("5", "6") or level == "1":
            others = [q for q in household if q is not p and q[P_BIRTH].year <= self.as_of.year - 18]
            if others:
                g = rng.choice(others)
                guardian, guardian_phone = g[P_NAME], g[P_PHONE]
            else:
                guardian, guardian_phone = self.name("2", 1970), self.phone()
        care = level in ("1", "2")
        amount = (90 if poor else 0) + ((100 if level == "1" else 80) if care else 0)
        devices = _DEVICES.get(dtype)
        era = _era(p[P_BIRTH].year)
        education = "学龄前" if age < 6 else "在校" if age < 16 else rng.choice(_EDUCATION[era])
        self.ctx_row(
            ctx,
            "lg_disability",
            (
                p[P_REGION],
                self.provenance,
                p[P_ID],
                f"{p[P_IDNUM]}{dtype}{level}{'B1' if r() < 0.03 else ''}",
                dtype,
                level,
                issued,
                issued + timedelta(days=3652),  # valid for ten years
                guardian,
                guardian_phone,
                poor,
                care,
                float(amount),
                rng.choice(_REHAB),
                r() < 0.6,
                rng.choice(devices) if devices and r() < 0.5 else None,
                16 <= age < 60 and r() < 0.35,
                education,
                r() < 0.97,
                age >= 16 and r() < 0.85,
                care and dtype in ("1", "4", "7") and r() < 0.5,
            ),
        )

    def low_income(self, ctx: VillageRows, p: tuple, category: str, size: int) -> None:
        rng = self.rng
        if category == "1":
            allowance = rng.uniform(600, 760) if ctx.village.is_community else rng.uniform(450, 600)
        elif category == "2":
            allowance = 988.0 if ctx.village.is_community else 780.0
        else:
            allowance = 0.0  # 低保边缘 / 监测对象: watched, not paid
        self.ctx_row(
            ctx,
            "lg_low_income",
            (
                p[P_REGION],
                self.provenance,
                p[P_ID],
                category,
                self.date_between(date(2015, 1, 1).toordinal(), self.as_of_ord - 30),
                size,
                round(allowance, 2),
                date.fromordinal(self.as_of_ord - rng.randint(7, 360)),
            ),
        )

    def ctx_row(self, ctx: VillageRows, table: str, row: tuple) -> int:
        """Append a row (without its id) to the village batch; returns the new id."""
        rid = self.next_id(table)
        ctx.batch.rows[table].append((rid, *row))
        return rid

    def land(self, ctx: VillageRows) -> None:
        """Contracted parcels of rural households; about a quarter transferred (流转) to others."""
        v = ctx.village
        if v.is_community:
            return
        rng, r, prov = self.rng, self.rng.random, self.provenance
        zone = v.code[6:]  # 地籍区 + 地籍子区: township + village digits
        takers = [o[1] for o in ctx.orgs if o[2] in ("1", "3")]
        n_parcel = 0
        for head, hh_no in ctx.farmers:
            k = rng.choice((0, 0, 1, 1, 1, 1, 1, 2, 2, 2))
            start = date(1998, 1, 1) if r() < 0.85 else date(rng.randint(2003, 2015), 1, 1)
            end = date(2057, 12, 31) if r() < 0.1 else date(2027, 12, 31)
            for _ in range(k):
                n_parcel += 1
                ltype = self.land_type()
                if ltype == "0702":  # homestead
                    area = rng.uniform(0.3, 0.6)
                else:  # median ~1.6 mu, woodland three times larger
                    area = rng.lognormvariate(0.45, 0.8) * (3 if ltype == "0301" else 1)
                area = round(min(max(area, 0.3), 30.0), 2)
                status = "0" if ltype == "0702" else self.transfer()
                transferee = t_area = rent = None
                if status != "0":
                    transferee = rng.choice(takers) if takers and r() < 0.6 else self.name("1", 1970)
                    t_area = area if r() < 0.8 else round(area * rng.uniform(0.5, 1), 2)
                    rent = rng.randrange(300, 1201, 10)
                lid = self.ctx_row(
                    ctx,
                    "lg_land",
                    (
                        v.code,
                        prov,
                        f"{DISTRICT_CODE}{zone}{_PARCEL_KIND.get(ltype, 'JD')}{n_parcel:05d}",
                        f"{1 + hh_no % v.groups}组{rng.choice(_PLACES)}",
                        area,
                        ltype,
                        head[P_NAME],
                        f"CB{v.code}{hh_no:05d}",
                        start,
                        end,
                        status,
                        transferee,
                        t_area,
                        rent,
                        status == "0" and ltype != "0702" and r() < 0.05,
                    ),
                )
                self.ctx_row(ctx, "rel_land_contract", (v.code, head[P_ID], lid, 1.0))
                ctx.parcels.append(lid)


@dataclass
class _Household:
    """What members of one household share."""

    addr: str
    low: str
    lone_elder: bool
    couple: bool
    parents: int
    ethnicity: str
    htype: str
    surname: str
    kids_surname: str = ""


@dataclass
class VillageRows:
    """A village's batch plus what later generators need to link to (persons, houses, orgs …)."""

    batch: Batch
    persons: list[tuple] = field(default_factory=list)
    adults: list[tuple] = field(default_factory=list)  # 22-75: representatives, members
    houses: list[tuple[int, tuple, str]] = field(default_factory=list)  # (house id, head, address)
    house_of: dict[int, int] = field(default_factory=dict)  # person id -> house id
    farmers: list[tuple[tuple, int]] = field(default_factory=list)  # (head, household no.) in villages
    parcels: list[int] = field(default_factory=list)
    orgs: list[tuple[int, str, str, str]] = field(default_factory=list)  # (id, name, org_type, address)
    flats: set[tuple] = field(default_factory=set)
    households: int = 0
    estates: int = 0  # communities: housing estates in use (starts at village.groups)

    @property
    def village(self) -> Village:
        return self.batch.village


def generate(
    scale: str = "small", seed: int = 20261123, *, provenance: str | None = None, as_of: date = AS_OF
) -> Iterator[Batch]:
    """The demo district, village by village."""
    return DistrictGenerator(scale, seed, provenance=provenance, as_of=as_of).batches()
