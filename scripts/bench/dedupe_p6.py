"""P6 dedupe quality: the Onetable matcher vs Splink (DuckDB backend) on seeded duplicates.

    .venv/bin/python scripts/bench/dedupe_p6.py --records 50000 200000 [--seed 6] [--no-splink]

The generator makes a district's person rows (demo name pools, so namesakes are as common as in a
real township) and, for a share of them, duplicates as a township sheet would hold them: typos and
homophones in the name, traditional characters, the ID missing or in its 15-digit form, day and
month swapped, a moved address, another or no phone. Truth is the entity each row was made from; a
true pair is two rows of one entity. Both matchers get the same folded columns
(app.dedupe.normalize) and the same blocking keys (app.dedupe.blocking.keys); Splink estimates u
by random sampling and m by EM, the Onetable matcher uses its fixed Fellegi-Sunter priors.
Printed per size: pairs compared; precision, recall and F1 at each method's decision threshold
(Onetable's candidate probability, Splink's usual 0.5) and each method's best F1 over a grid of
thresholds; seconds, and the time ratio Splink / Onetable. With `--database-url` (or
ONETABLE_DATABASE_URL) it prints the environment line and, as the plain-SQL reference, the exact
rule "same name and birth date" as a self-join in PostgreSQL (quality and time).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import opencc
from pypinyin import Style, lazy_pinyin

from app.catalog.validators import make_id_card
from app.dedupe import normalize as nz
from app.dedupe.blocking import MAX_BLOCK, keys, pairs_within
from app.dedupe.scoring import CANDIDATE_PROBABILITY, Profile, match_weight, probability, profile
from app.demo.names import GIVEN, MOBILE_PREFIXES, ROADS, SURNAMES, VILLAGE_A, VILLAGE_B

TOWNS = (
    "中山路街道",
    "胜利路街道",
    "南大街街道",
    "茶山竹海街道",
    "大安街道",
    "陈食街道",
    "卫星湖街道",
    "青峰镇",
    "金龙镇",
    "临江镇",
    "何埂镇",
    "松溉镇",
    "仙龙镇",
    "吉安镇",
    "五间镇",
    "来苏镇",
)
# Extra characters so most given-name characters have a homophone to be mistaken for.
EXTRA = (
    "丽力立利莉理礼黎励伟卫维威为玮薇微华化桦骅军君钧均峻骏珺铭鸣名民闵方放坊晶菁京精敬靖婧"
    "萍评屏苹坪勇永涌咏泳强蔷墙磊蕾垒军涛韬滔桃斌彬宾滨超朝潮巢刚钢岗纲辉晖慧惠会鹏朋彭蓬飞菲"
    "非妃鑫欣新心馨波博柏伯宇雨语羽玉浩昊皓豪凯恺楷锴健建剑俊骏峻帆凡繁帅率旭绪序许宁凝柠龙隆"
    "珑林琳霖麟洋杨阳扬成诚城承程东冬栋亮良梁川传船松嵩颂江姜疆峰锋丰枫风兵彬冰秀绣英莹颖迎兰"
    "岚蓝澜桂贵珍真贞芬纷分凤奉翠萃花华琼穷淑书舒素苏菊局莲连廉群裙芳艳燕焰雁娟捐霞夏侠燕玲灵"
    "龄凌婷亭庭廷雪学琳敏闽梅眉媚红虹宏洪丹单旦月悦越岳佳家嘉加欣心"
)
_S2T = opencc.OpenCC("s2t")


@dataclass
class Row:
    uid: int
    entity: int
    name: str
    sex: str
    birth_date: date | None
    id_number: str | None
    phone: str | None
    residence_address: str


def _weighted_surnames() -> tuple[list[str], list[float]]:
    chars, weights = [], []
    for group, w in SURNAMES:
        for ch in group:
            chars.append(ch)
            weights.append(w)
    return chars, weights


def _homophones() -> dict[str, list[str]]:
    pool = set("".join(GIVEN.values()) + EXTRA)
    by_sound: dict[str, list[str]] = defaultdict(list)
    for ch in sorted(pool):
        by_sound[nz.fuzzy_syllable(lazy_pinyin(ch, style=Style.NORMAL)[0])].append(ch)
    return {ch: [o for o in group if o != ch] for group in by_sound.values() for ch in group}


class Generator:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.surnames, self.weights = _weighted_surnames()
        self.homophones = _homophones()
        self.all_given = "".join(GIVEN.values()) + EXTRA
        self.ids: set[str] = set()

    def address(self) -> str:
        r = self.r
        town = r.choice(TOWNS)
        if town.endswith("街道"):
            road = f"{r.choice(ROADS)}{r.randint(1, 300)}号"
            flat = f"{r.randint(1, 30)}栋{r.randint(1, 30)}-{r.randint(1, 6)}"
            return f"重庆市永川区{town}{road}{flat}"
        village = r.choice(VILLAGE_A) + r.choice(VILLAGE_B) + "村"
        return f"重庆市永川区{town}{village}{r.randint(1, 12)}组{r.randint(1, 80)}号"

    def base(self, uid: int) -> Row:
        r = self.r
        sex = r.choice("12")
        birth = date(1930, 1, 1) + timedelta(days=r.randint(0, 80 * 365))
        era = "old" if birth.year < 1960 else "mid" if birth.year < 1995 else "new"
        given = "".join(r.choice(GIVEN[(sex, era)]) for _ in range(r.choice((1, 2, 2, 2))))
        name = r.choices(self.surnames, self.weights)[0] + given
        phone = r.choice(MOBILE_PREFIXES) + f"{r.randint(0, 99_999_999):08d}" if r.random() < 0.8 else None
        idn = make_id_card("500118", birth, r.randint(0, 999), sex)
        while idn in self.ids:  # one number per person, as the real ones are
            idn = make_id_card("500118", birth, r.randint(0, 999), sex)
        self.ids.add(idn)
        return Row(uid, uid, name, sex, birth, idn, phone, self.address())

    def duplicate(self, src: Row, uid: int) -> Row:
        r = self.r
        d = Row(
            uid,
            src.entity,
            src.name,
            src.sex,
            src.birth_date,
            src.id_number,
            src.phone,
            src.residence_address,
        )
        # What a township sheet does to a person (several at once, as in real sheets).
        if r.random() < 0.65:
            d.id_number = None  # stock sheets often have no ID column
        elif r.random() < 0.3 and d.id_number:
            d.id_number = d.id_number[:6] + d.id_number[8:17]  # the 15-digit form
        edits = r.sample(
            ("typo", "homophone", "traditional", "swap", "moved", "phone", "birth_typo"),
            k=r.choice((1, 2, 2, 3)),
        )
        given = list(d.name[1:])
        if "typo" in edits and given:
            i = r.randrange(len(given))
            given[i] = r.choice(self.all_given)
        if "homophone" in edits and given:
            i = r.randrange(len(given))
            if self.homophones.get(given[i]):
                given[i] = r.choice(self.homophones[given[i]])
        d.name = d.name[0] + "".join(given)
        if "traditional" in edits:
            d.name = _S2T.convert(d.name)
            d.residence_address = _S2T.convert(d.residence_address)
        if (
            "swap" in edits
            and d.birth_date
            and d.birth_date.day <= 12
            and d.birth_date.day != d.birth_date.month
        ):
            d.birth_date = date(d.birth_date.year, d.birth_date.day, d.birth_date.month)
        if "birth_typo" in edits and d.birth_date:
            d.birth_date = d.birth_date + timedelta(days=r.choice((-10, -1, 1, 10)))
        if "moved" in edits:
            d.residence_address = self.address()
        if "phone" in edits:
            d.phone = (
                None if r.random() < 0.5 else r.choice(MOBILE_PREFIXES) + f"{r.randint(0, 99_999_999):08d}"
            )
        if r.random() < 0.1:
            d.sex = ""  # not typed
        return d

    def rows(self, n: int) -> list[Row]:
        out: list[Row] = []
        uid = 0
        while len(out) < n:
            src = self.base(uid)
            uid += 1
            out.append(src)
            x = self.r.random()
            extra = 2 if x < 0.04 else 1 if x < 0.22 else 0  # ~20 % of persons recorded twice or more
            for _ in range(extra):
                if len(out) < n:
                    out.append(self.duplicate(src, uid))
                    uid += 1
        return out


def true_pairs(rows: list[Row]) -> set[tuple[int, int]]:
    by_entity: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_entity[row.entity].append(row.uid)
    out = set()
    for uids in by_entity.values():
        for i in range(len(uids)):
            for j in range(i + 1, len(uids)):
                out.add((uids[i], uids[j]))
    return out


def as_dict(row: Row) -> dict[str, Any]:
    return {
        "name": row.name,
        "sex": row.sex,
        "birth_date": row.birth_date,
        "id_number": row.id_number,
        "phone": row.phone,
        "residence_address": row.residence_address,
    }


def scores(
    found: dict[tuple[int, int], float], truth: set[tuple[int, int]], threshold: float
) -> tuple[float, float, float]:
    predicted = {p for p, s in found.items() if s >= threshold}
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def best_f1(found: dict[tuple[int, int], float], truth: set[tuple[int, int]]) -> tuple[float, float]:
    grid = [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]
    return max((scores(found, truth, t)[2], t) for t in grid)


def run_onetable(rows: list[Row]) -> tuple[dict[tuple[int, int], float], int, float, float]:
    t0 = time.perf_counter()
    profiles = [profile(as_dict(r), ("residence_address",)) for r in rows]
    t1 = time.perf_counter()
    found: dict[tuple[int, int], float] = {}
    compared = 0
    for i, j in pairs_within(profiles):
        compared += 1
        w, _ = match_weight(profiles[i], profiles[j])
        p = probability(w)
        if p >= 0.01:
            a, b = rows[i].uid, rows[j].uid
            found[(a, b) if a < b else (b, a)] = p
    t2 = time.perf_counter()
    return found, compared, t1 - t0, t2 - t1


def splink_table(rows: list[Row], profiles: list[Profile]) -> Any:
    """The same folded columns and blocking keys the Onetable matcher uses, as an Arrow table."""
    import pyarrow as pa

    cols: dict[str, list[Any]] = defaultdict(list)
    for row, p in zip(rows, profiles, strict=True):
        k = keys(p)
        cols["unique_id"].append(row.uid)
        cols["name"].append(p.name or None)
        cols["name_py"].append(p.fuzzy or None)
        cols["birth"].append(p.birth.isoformat() if p.birth else None)
        cols["birth_swapped"].append(s.isoformat() if p.birth and (s := nz.swapped(p.birth)) else None)
        cols["sex"].append(p.sex)
        cols["phone"].append(p.phone)
        cols["id18"].append(p.id18)
        cols["addr"].append(sorted(p.address) or None)
        cols["k_name"].append(next((x for x in k if x[0] == "n"), None))
        cols["k_sur"].append(next((x for x in k if x[0] == "s"), None))
        cols["k_given"].append(next((x for x in k if x[0] == "g"), None))
        cols["k_month"].append(next((x for x in k if x[0] == "m"), None))
    return pa.table(cols)


def run_splink(rows: list[Row], seed: int) -> tuple[dict[tuple[int, int], float], float]:
    import duckdb
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    profiles = [profile(as_dict(r), ("residence_address",)) for r in rows]
    table = splink_table(rows, profiles)
    t0 = time.perf_counter()
    con = duckdb.connect()
    db_api = DuckDBAPI(connection=con)
    df = db_api.register(table)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.CustomComparison(
                output_column_name="name",
                comparison_levels=[
                    cll.NullLevel("name"),
                    cll.ExactMatchLevel("name"),
                    cll.ExactMatchLevel("name_py"),
                    cll.LevenshteinLevel("name", 1),
                    cll.ElseLevel(),
                ],
            ),
            cl.CustomComparison(
                output_column_name="birth",
                comparison_levels=[
                    cll.NullLevel("birth"),
                    cll.ExactMatchLevel("birth"),
                    cll.CustomLevel("birth_swapped_l = birth_r", "day and month swapped"),
                    cll.LevenshteinLevel("birth", 1),
                    cll.CustomLevel("substr(birth_l, 1, 4) = substr(birth_r, 1, 4)", "same year"),
                    cll.ElseLevel(),
                ],
            ),
            cl.CustomComparison(
                output_column_name="id18",
                comparison_levels=[
                    cll.NullLevel("id18"),
                    cll.ExactMatchLevel("id18"),
                    cll.LevenshteinLevel("id18", 1),
                    cll.ElseLevel(),
                ],
            ),
            cl.ExactMatch("phone"),
            cl.CustomComparison(  # the same token Jaccard levels as app.dedupe.scoring
                output_column_name="addr",
                comparison_levels=[
                    cll.NullLevel("addr"),
                    cll.CustomLevel(
                        "len(list_intersect(addr_l, addr_r)) >= 0.7 * (len(addr_l) + len(addr_r) "
                        "- len(list_intersect(addr_l, addr_r)))",
                        "jaccard >= 0.7",
                    ),
                    cll.CustomLevel(
                        "len(list_intersect(addr_l, addr_r)) >= 0.4 * (len(addr_l) + len(addr_r) "
                        "- len(list_intersect(addr_l, addr_r)))",
                        "jaccard >= 0.4",
                    ),
                    cll.ElseLevel(),
                ],
            ),
            cl.ExactMatch("sex"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("k_name"),
            block_on("k_sur"),
            block_on("k_given"),
            block_on("k_month"),
            block_on("phone"),
            block_on("id18"),
        ],
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )
    linker = Linker(df, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id18"), block_on("name", "birth")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("k_sur"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    pred = linker.inference.predict(threshold_match_probability=0.01)
    rel = pred.as_duckdbpyrelation()
    got = rel.select("unique_id_l, unique_id_r, match_probability").fetchall()
    t1 = time.perf_counter()
    found: dict[tuple[int, int], float] = {}
    for a, b, p in got:
        a, b = int(a), int(b)
        found[(a, b) if a < b else (b, a)] = float(p)
    return found, t1 - t0


def run_plain_sql(rows: list[Row], database_url: str) -> tuple[dict[tuple[int, int], float], float]:
    """The rule a clerk would write in SQL: same name as typed and same birth date (a self-join in
    PostgreSQL on a temporary table), timed from COPY to the fetched pairs."""
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        t0 = time.perf_counter()
        conn.execute("CREATE TEMP TABLE p6 (uid bigint, name text, birth_date date)")
        with conn.cursor().copy("COPY p6 (uid, name, birth_date) FROM STDIN") as cp:
            for row in rows:
                cp.write_row((row.uid, row.name, row.birth_date))
        got = conn.execute(
            "SELECT a.uid, b.uid FROM p6 a JOIN p6 b ON a.name = b.name "
            "AND a.birth_date = b.birth_date AND a.uid < b.uid"
        ).fetchall()
        secs = time.perf_counter() - t0
        conn.rollback()
    return {(int(a), int(b)): 1.0 for a, b in got}, secs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--no-splink", action="store_true")
    ap.add_argument("--database-url", default=os.environ.get("ONETABLE_DATABASE_URL"))
    args = ap.parse_args(argv)
    if args.database_url:
        from scripts.bench._env import print_environment

        print_environment(args.database_url)
    else:
        load1, load5, _ = os.getloadavg()
        print(
            f"environment: no database (pure matching); {os.cpu_count()} CPUs, load average "
            f"{load1:.1f}/{load5:.1f}"
        )
    try:
        from importlib.metadata import version

        import duckdb
        import splink  # noqa: F401

        print(
            f"splink {version('splink')}, duckdb {duckdb.__version__}; "
            f"blocks capped at {MAX_BLOCK} rows (both methods)"
        )
    except ImportError:
        args.no_splink = True
        print("splink not installed (pip install -e '.[bench]'): Onetable figures only")
    for n in args.records:
        rows = Generator(args.seed).rows(n)
        truth = true_pairs(rows)
        found, compared, prep, match = run_onetable(rows)
        p, r, f1 = scores(found, truth, CANDIDATE_PROBABILITY)
        bf1, bt = best_f1(found, truth)
        ours = prep + match
        print(f"\n{n:,} records, {len(truth):,} true pairs, {compared:,} pairs compared (blocked)")
        print(
            f"  onetable: precision {p:.4f} recall {r:.4f} F1 {f1:.4f} "
            f"at p>={CANDIDATE_PROBABILITY} "
            f"(best F1 {bf1:.4f} at p>={bt}); "
            f"{ours:.1f} s (fold {prep:.1f} s + block/score {match:.1f} s)"
        )
        if args.database_url:
            qfound, qsecs = run_plain_sql(rows, args.database_url)
            qp, qr, qf1 = scores(qfound, truth, 0.5)
            print(
                f"  plain SQL (name + birth date exact): precision {qp:.4f} recall {qr:.4f} "
                f"F1 {qf1:.4f}; {qsecs:.1f} s; time onetable / plain SQL: {ours / qsecs:.1f}x"
            )
        if not args.no_splink:
            sfound, secs = run_splink(rows, args.seed)
            sp, sr, sf1 = scores(sfound, truth, 0.5)
            sbf1, sbt = best_f1(sfound, truth)
            print(
                f"  splink:   precision {sp:.4f} recall {sr:.4f} F1 {sf1:.4f} at p>=0.5 "
                f"(best F1 {sbf1:.4f} at p>={sbt}); "
                f"{secs:.1f} s (train + predict, folding not counted)"
            )
            print(f"  F1 onetable - splink: {f1 - sf1:+.4f}; time splink / onetable: {secs / ours:.2f}x")
    return 0


# The quick profile `make bench-smoke` runs (scripts/bench/_smoke.py): a few seconds, small district.
SMOKE_ARGS = ["--records", "2000"]

if __name__ == "__main__":
    raise SystemExit(main())
