"""Organisations, events and things of one village, linked to its persons and houses.

Split from generate.py to keep files small; these functions extend DistrictGenerator.batches().
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from app.catalog.validators import USCC_ALPHABET, make_uscc
from app.demo import names
from app.demo.district import DISTRICT_CODE, PREFIX
from app.demo.generate import (
    EVENTS_PER_PERSON,
    ORGS_PER_PERSON,
    P_ADDR,
    P_ID,
    P_NAME,
    P_PHONE,
    THINGS_PER_PERSON,
    TZ,
    weighted,
)

if TYPE_CHECKING:
    from app.demo.generate import DistrictGenerator, VillageRows

_NO_FLAGS = "{}"
# How pre-2016 credit codes that fail the GB 32100 checksum are kept: stored, flagged, never silently.
CHECKSUM_FLAG = json.dumps({"credit_code": "checksum"})
# (org_type, USCC registration department, kind) — 9 market regulation, 5 civil affairs, 1 staffing.
_USCC_KIND = {
    "1": ("9", "1"),
    "2": ("9", "2"),
    "3": ("9", "3"),
    "4": ("5", "1"),
    "5": ("1", "2"),
    "6": ("5", "4"),
}
_ORG_TYPE = (("2", 55), ("1", 35), ("3", 5), ("4", 3), ("5", 2))
_INDUSTRY = (
    ("F", 25),
    ("C", 15),
    ("E", 10),
    ("A", 10),
    ("H", 8),
    ("G", 6),
    ("L", 6),
    ("O", 6),
    ("K", 4),
    ("I", 4),
    ("M", 3),
    ("R", 3),
)

# Event titles by type; True marks land-related ones (they link a parcel).
_EVENT_TYPE = (("01", 25), ("02", 20), ("03", 15), ("04", 25), ("05", 5), ("06", 4), ("07", 3), ("99", 3))
_TITLES: dict[str, tuple[tuple[str, bool], ...]] = {
    "01": (
        ("邻里宅基地界址纠纷", True),
        ("家庭赡养纠纷", False),
        ("土地流转租金纠纷", True),
        ("噪音扰民纠纷", False),
        ("婚姻家庭纠纷", False),
        ("农田灌溉用水纠纷", True),
    ),
    "02": (
        ("自建房墙体开裂", False),
        ("燃气管道老化", False),
        ("电动车楼道充电", False),
        ("河道护栏缺失", False),
        ("危岩松动", False),
    ),
    "03": (
        ("生活垃圾乱堆放", False),
        ("生活污水外溢", False),
        ("秸秆露天焚烧", True),
        ("畜禽粪污直排", False),
    ),
    "04": (
        ("低保政策咨询", False),
        ("路灯损坏报修", False),
        ("饮水管网维修", False),
        ("养老保险缴费咨询", False),
        ("残疾人证办理咨询", False),
    ),
    "05": (("电信诈骗劝阻", False), ("农机具被盗", False), ("醉酒滋事", False)),
    "06": (("暴雨致边坡垮塌", True), ("洪水淹没农田", True), ("冰雹损毁农作物", True)),
    "07": (("聚集性发热病例报告", False), ("犬只伤人", False)),
    "99": (("其他事项", False),),
}
_THING_TYPE = (("01", 22), ("02", 25), ("03", 20), ("04", 10), ("05", 12), ("06", 11))
_THINGS: dict[str, tuple[str, tuple[str, ...]]] = {  # type -> (asset code prefix, names)
    "01": ("TZSB", ("乘客电梯", "燃气锅炉", "压力容器", "叉车", "起重机")),
    "02": ("XFSS", ("室内消火栓", "灭火器箱", "烟感报警器", "消防水泵")),
    "03": ("NJJ", ("拖拉机", "微耕机", "联合收割机", "植保无人机", "插秧机")),
    "04": ("CL", ("农用三轮车", "校车", "轻型货车")),
    "05": ("GGSS", ("健身器材", "公共厕所", "垃圾中转站", "太阳能路灯")),
    "06": ("JKSB", ("视频监控探头", "雪亮工程摄像头")),
}


def organisations(g: DistrictGenerator, ctx: VillageRows) -> None:
    """The village committee plus enterprises, shops, co-operatives … with their members."""
    v, rng, r = ctx.village, g.rng, g.rng.random
    pick_type = g.cache("org_type", lambda: weighted(rng, _ORG_TYPE))
    pick_industry = g.cache("industry", lambda: weighted(rng, _INDUSTRY))
    pool = ctx.adults or ctx.persons
    if not pool:
        return
    kinds = ["6"] + [pick_type() for _ in range(g.sround(len(ctx.persons) * ORGS_PER_PERSON))]
    for kind in kinds:
        if kind == "3" and v.is_community:
            kind = "1"
        rep = rng.choice(pool)
        if kind == "6":
            name = f"{PREFIX}{v.full_name}{'居民' if v.is_community else '村民'}委员会"
            industry, capital, employees = "S", None, rng.randint(5, 9)
            established = g.date_between(date(1984, 1, 1).toordinal(), date(2001, 12, 31).toordinal())
        elif kind == "1":
            industry = pick_industry()

            def company_name(industry: str = industry) -> str:
                return f"{rng.choice(('重庆', PREFIX))}{_trade(g)}{rng.choice(names.INDUSTRY_WORDS[industry])}有限公司"

            name = g.unique_name(company_name)
            capital = round(min(max(rng.lognormvariate(4.6, 1.2), 3), 50_000), 2)
            employees = min(max(int(rng.lognormvariate(2.5, 1.0)), 1), 2000)
            established = _since(g, 2500, 1993)
        elif kind == "2":
            shop, industry = rng.choice(names.SHOPS)

            def shop_name(rep: tuple = rep, shop: str = shop) -> str:
                return f"永川区{v.township.name}{rep[P_NAME][0] + '记' if r() < 0.4 else _trade(g)}{shop}"

            name = g.unique_name(shop_name)
            capital, employees = round(rng.uniform(1, 50), 2), rng.randint(1, 5)
            established = _since(g, 1500, 1995)
        elif kind == "3":
            industry = "A"
            name = g.unique_name(
                lambda: (
                    f"{PREFIX}{v.name}{(p := rng.choice(names.COOP_PRODUCTS))}"
                    f"{'养殖' if p in ('生猪', '家禽', '水产') else '种植'}专业合作社"
                )
            )
            capital, employees = round(rng.uniform(10, 500), 2), rng.randint(5, 50)
            established = g.date_between(date(2008, 1, 1).toordinal(), g.as_of_ord)
        elif kind == "4":
            industry = "S"
            name = g.unique_name(lambda: f"永川区{v.full_name}{rng.choice(names.SOCIAL_ORGS)}")
            capital, employees = round(rng.uniform(3, 10), 2), rng.randint(0, 5)
            established = _since(g, 4000, 2000)
        else:
            name = g.unique_name(lambda: _public_body(g, ctx))
            industry = "P" if name.endswith(("小学", "幼儿园")) else "Q" if name.endswith("卫生院") else "S"
            capital, employees = None, rng.randint(10, 120)
            established = g.date_between(date(1960, 1, 1).toordinal(), date(2010, 12, 31).toordinal())
        dept, uscc_kind = _USCC_KIND[kind]
        # A bijection of the running number onto 8 digits, so organisation codes look scattered.
        code = make_uscc(DISTRICT_CODE, (g.next_seq("org") * 7919 + 10_000_000) % 10**8, dept, uscc_kind)
        flags = _NO_FLAGS
        if kind != "6" and established.year < 2016 and r() < 0.07:
            # A pre-2016 code that fails the checksum: kept as registered, marked for review.
            code = code[:17] + USCC_ALPHABET[(USCC_ALPHABET.index(code[17]) + rng.randint(1, 30)) % 31]
            flags = CHECKSUM_FLAG
        address = _org_address(g, ctx)
        oid = g.ctx_row(
            ctx,
            "lg_organisation",
            (
                v.code,
                g.provenance,
                flags,
                code,
                name,
                kind,
                rep[P_NAME],
                rep[P_PHONE],
                address,
                industry,
                capital,
                established,
                employees,
                kind in ("5", "6") or r() < 0.92,
            ),
        )
        ctx.orgs.append((oid, name, kind, address))
        g.ctx_row(ctx, "rel_membership", (v.code, rep[P_ID], oid, "1"))
        if kind == "1":  # shareholders, then a few employees
            roles = ["2"] * rng.choice((0, 1, 1, 2, 3)) + ["3"] * min(employees - 1, rng.randint(0, 4))
        else:
            roles = {"3": ["4"] * rng.randint(5, 15), "6": ["9"] * rng.randint(3, 6)}.get(kind, [])
        others = [p for p in rng.sample(pool, min(len(roles) + 1, len(pool))) if p is not rep]
        for p, role in zip(others, roles, strict=False):
            g.ctx_row(ctx, "rel_membership", (p[1], p[P_ID], oid, role))


def _trade(g: DistrictGenerator) -> str:
    """A trade name (字号) of two or three characters, such as 鑫盛 or 恒瑞达."""
    return "".join(g.rng.sample(names.TRADE_NAME, 2 if g.rng.random() < 0.6 else 3))


def _public_body(g: DistrictGenerator, ctx: VillageRows) -> str:
    """A school, clinic or service centre; schools may carry a trade-style name (萱花小学)."""
    body = g.rng.choice(names.PUBLIC_BODIES)
    if body in ("中心小学", "幼儿园") and g.rng.random() < 0.5:
        return f"{PREFIX}{_trade(g)}{body.removeprefix('中心')}"
    return f"{PREFIX}{ctx.village.full_name}{body}"


def _since(g: DistrictGenerator, mean_days: int, first_year: int) -> date:
    """Founding date: recent years more likely (exponential age), not before first_year."""
    age = int(g.rng.expovariate(1 / mean_days))
    return date.fromordinal(max(g.as_of_ord - age, date(first_year, 1, 1).toordinal()))


def _org_address(g: DistrictGenerator, ctx: VillageRows) -> str:
    v, rng = ctx.village, g.rng
    if v.is_community:
        return f"{PREFIX}{v.full_name}{rng.choice(v.roads)}{rng.randint(1, 300)}号"
    return f"{PREFIX}{v.full_name}{rng.randint(1, v.groups)}组"


def events(g: DistrictGenerator, ctx: VillageRows) -> None:
    """Grid events of the last two years, linked to 1-3 persons (+ their house, a parcel, an org)."""
    v, rng, r = ctx.village, g.rng, g.rng.random
    if not ctx.persons:
        return
    pick_type = g.cache("event_type", lambda: weighted(rng, _EVENT_TYPE))
    midnight = datetime.combine(g.as_of, time(), TZ)
    for _ in range(g.sround(len(ctx.persons) * EVENTS_PER_PERSON)):
        etype = pick_type()
        title, about_land = rng.choice(_TITLES[etype])
        days_ago = rng.randint(1, 730)
        occurred = (
            midnight
            - timedelta(days=days_ago)
            + timedelta(hours=rng.randint(8, 19), minutes=rng.randrange(60))
        )
        if days_ago > 60:
            x = r()
            status = "3" if x < 0.65 else "4" if x < 0.95 else "9"
        elif days_ago > 14:
            status = "2" if r() < 0.3 else "3"
        else:
            x = r()
            status = "1" if x < 0.4 else "2" if x < 0.8 else "3"
        closed = None
        if status in ("3", "4"):
            closed = occurred + timedelta(hours=rng.randint(2, 24 * min(30, days_ago - 1) or 2))
        who = rng.sample(ctx.persons, min(len(ctx.persons), rng.choice((1, 1, 2, 3))))
        number = f"SJ{occurred:%Y%m%d}{g.next_seq('event'):06d}"
        eid = g.ctx_row(
            ctx,
            "lg_event",
            (
                v.code,
                g.provenance,
                number,
                etype,
                title,
                occurred,
                who[0][P_ADDR],
                f"{v.full_name}群众反映：{title}。网格员已现场核实并登记。",
                status,
                g.name("2", 1985),
                closed,
            ),
        )
        for i, p in enumerate(who):
            role = ("2" if etype == "04" else "1") if i == 0 else "3"
            g.ctx_row(ctx, "rel_event_person", (v.code, eid, p[P_ID], role))
        if etype in ("02", "03", "06") and r() < 0.6 and who[0][P_ID] in ctx.house_of:
            g.ctx_row(ctx, "rel_event_house", (v.code, eid, ctx.house_of[who[0][P_ID]]))
        if about_land and ctx.parcels and r() < 0.7:
            g.ctx_row(ctx, "rel_event_land", (v.code, eid, rng.choice(ctx.parcels)))
        if etype in ("02", "03", "05") and ctx.orgs and r() < 0.3:
            g.ctx_row(ctx, "rel_event_organisation", (v.code, eid, rng.choice(ctx.orgs)[0]))


def things(g: DistrictGenerator, ctx: VillageRows) -> None:
    """Equipment and facilities: owned by an organisation of the village, or farm machinery at a house."""
    v, rng, r = ctx.village, g.rng, g.rng.random
    if not ctx.orgs:
        return
    pick_type = g.cache("thing_type", lambda: weighted(rng, _THING_TYPE))
    committee = ctx.orgs[0]
    businesses = [o for o in ctx.orgs if o[2] in ("1", "2", "5")] or [committee]
    for _ in range(g.sround(len(ctx.persons) * THINGS_PER_PERSON)):
        ttype = pick_type()
        if ttype == "03" and (v.is_community or not ctx.farmers):
            ttype = "02"
        prefix, choices = _THINGS[ttype]
        house = None
        if ttype == "03":
            house_id, head, location = rng.choice(ctx.houses)
            owner_org, owner_name = None, head[P_NAME]
            house = house_id
        else:
            owner_org = committee if ttype in ("05", "06") else rng.choice(businesses)
            owner_name, location = owner_org[1], owner_org[3]
        last = None
        if ttype in ("01", "02") or r() < 0.7:
            last = date.fromordinal(g.as_of_ord - rng.randint(0, 400))
        due = last + timedelta(days=180 if ttype == "02" else 365) if last else None
        x = r()
        status = "1" if x < 0.85 else "2" if x < 0.91 else "4" if x < 0.97 else "3"
        tid = g.ctx_row(
            ctx,
            "lg_thing",
            (
                v.code,
                g.provenance,
                f"{prefix}-{DISTRICT_CODE}-{g.next_seq(prefix):06d}",
                rng.choice(choices),
                ttype,
                location,
                owner_name,
                status,
                last,
                due,
            ),
        )
        if owner_org is not None:
            g.ctx_row(ctx, "rel_thing_organisation", (v.code, tid, owner_org[0]))
        if house is not None:
            g.ctx_row(ctx, "rel_thing_house", (v.code, tid, house))
