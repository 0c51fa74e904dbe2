"""The demo org tree: 永川区 (500118), its 23 real townships and ~280 villages / communities.

Township names and codes are the real ones; village and community names are invented but stable:
they come from a fixed RNG, so the tree is identical at every scale and seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from app.demo import names

PROVINCE = ("500000000000", "重庆市", 1, None)
CITY = ("500100000000", "市辖区", 2, "500000000000")
DISTRICT_CODE = "500118"
DISTRICT = ("500118000000", "永川区", 3, "500100000000")
PREFIX = "重庆市永川区"

# (9-digit code, name, communities, villages). 街道 in the old town are all communities; the rural
# 街道 and every 镇 also have villages (codes 2xx) and a community at their seat (codes 0xx).
_TOWNSHIPS: tuple[tuple[str, str, int, int], ...] = (
    ("500118001", "中山路街道", 11, 0),
    ("500118002", "胜利路街道", 12, 0),
    ("500118003", "南大街街道", 10, 0),
    ("500118004", "茶山竹海街道", 3, 8),
    ("500118005", "大安街道", 2, 9),
    ("500118006", "陈食街道", 2, 9),
    ("500118007", "卫星湖街道", 3, 7),
    ("500118100", "青峰镇", 1, 10),
    ("500118101", "金龙镇", 1, 11),
    ("500118102", "临江镇", 2, 13),
    ("500118103", "何埂镇", 1, 10),
    ("500118104", "松溉镇", 2, 10),
    ("500118105", "仙龙镇", 1, 11),
    ("500118106", "吉安镇", 1, 12),
    ("500118107", "五间镇", 1, 10),
    ("500118108", "来苏镇", 2, 13),
    ("500118109", "宝峰镇", 1, 11),
    ("500118110", "双石镇", 1, 11),
    ("500118111", "红炉镇", 1, 10),
    ("500118112", "永荣镇", 2, 11),
    ("500118113", "三教镇", 1, 12),
    ("500118114", "板桥镇", 1, 11),
    ("500118115", "朱沱镇", 2, 12),
)
_OLD_TOWN = {"500118001", "500118002", "500118003"}


@dataclass(frozen=True)
class Village:
    code: str  # 12 digits
    name: str  # 石桥村 / 兴龙社区
    township: Township
    is_community: bool
    groups: int  # 村民小组 (villages) or housing estates (communities)
    roads: tuple[str, ...]  # communities: roads their estates face
    weight: float  # share of the district population

    @property
    def full_name(self) -> str:
        return f"{self.township.name}{self.name}"


@dataclass(frozen=True)
class Township:
    code9: str
    name: str

    @property
    def code(self) -> str:
        return self.code9 + "000"

    @property
    def is_street(self) -> bool:
        return self.name.endswith("街道")

    @property
    def office(self) -> str:
        return f"{self.name}办事处" if self.is_street else f"{self.name}人民政府"


@lru_cache
def villages() -> tuple[Village, ...]:
    """Every village and community, in code order (township by township)."""
    rng = random.Random(500118)  # fixed: the tree does not depend on the data seed
    used: set[str] = set()

    def fresh(a: str, b: str, suffix: str) -> str:
        while True:
            name = rng.choice(a) + rng.choice(b) + suffix
            if name[0] != name[1] and name not in used:
                used.add(name)
                return name

    out: list[Village] = []
    for code9, tname, n_comm, n_vill in _TOWNSHIPS:
        t = Township(code9, tname)
        for i in range(n_comm):
            weight = 4.0 if code9 in _OLD_TOWN else 2.5
            roads = tuple(rng.sample(names.ROADS, 3))
            out.append(
                Village(
                    f"{code9}{i + 1:03d}",
                    fresh(names.COMMUNITY_A, names.COMMUNITY_B, "社区"),
                    t,
                    True,
                    rng.randint(3, 8),
                    roads,
                    weight,
                )
            )
        for i in range(n_vill):
            out.append(
                Village(
                    f"{code9}{201 + i:03d}",
                    fresh(names.VILLAGE_A, names.VILLAGE_B, "村"),
                    t,
                    False,
                    rng.randint(6, 15),
                    (),
                    1.0,
                )
            )
    return tuple(out)


@lru_cache
def townships() -> tuple[Township, ...]:
    seen: dict[str, Township] = {}
    for v in villages():
        seen.setdefault(v.township.code9, v.township)
    return tuple(seen.values())


def region_rows() -> list[tuple[str, str, int, str | None]]:
    """(code, name, level, parent_code) for province, city, district, townships and villages."""
    rows = [PROVINCE, CITY, DISTRICT]
    rows += [(t.code, t.name, 4, DISTRICT[0]) for t in townships()]
    rows += [(v.code, v.name, 5, v.township.code) for v in villages()]
    return rows
