"""A messy legacy person sheet, as township stock data really looks, for tests and the P5 bench.

Deterministic by seed and streamed (xlsxwriter's constant_memory mode, csv.writer), so a million
rows cost a few MB of memory. What it holds:
- a title row and a "填报单位 / 填报日期" row above a two-row header with merged parents (联系方式
  over 手机号码 / 固定电话, 户籍信息 over 户籍地址 / 户号 / 与户主关系; 姓名 etc. merged down);
- IDs mostly 18 digits, some 15-digit, some full-width, some with a lower-case x, a few blank, a few
  with a wrong check digit; sex as 男/女/1/2, occasionally contradicting the ID;
- birth dates as 1974.02, 1974-2-3, 1974年2月3日, 19740203, 1974/02/03, Excel date cells and
  serials;
- phones with spaces, +86, landlines, 无, /, blanks; 民族 as 汉族/汉/01;
- about 4 % duplicates: rows repeating an earlier person with the same ID (other formatting), and
  rows repeating one without any ID (same name and birth date);
- a few blank rows, a 合计 row and a 填表人 / 审核人 footer.
`SampleTruth` says what the generator did, so tests can check the reader against it.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import xlsxwriter

from app.catalog.validators import make_id_card

TITLE = "永川区中山路街道实有人口信息登记表（存量）"
TOP = [
    "序号",
    "姓名",
    "性别",
    "身份证号码",
    "出生年月",
    "民族",
    "联系方式",
    None,
    "户籍信息",
    None,
    None,
    "现住址",
    "婚姻状况",
    "备注（必填）",
]
BELOW = [
    None,
    None,
    None,
    None,
    None,
    None,
    "手机号码",
    "固定电话",
    "户籍地址",
    "户号",
    "与户主关系",
    None,
    None,
    None,
]
# The headers as read_table flattens them.
FLAT = [
    "序号",
    "姓名",
    "性别",
    "身份证号码",
    "出生年月",
    "民族",
    "联系方式/手机号码",
    "联系方式/固定电话",
    "户籍信息/户籍地址",
    "户籍信息/户号",
    "户籍信息/与户主关系",
    "现住址",
    "婚姻状况",
    "备注(必填)",
]
TITLE_ROWS = 2
HEADER_ROWS = 2

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志强红梅玉兰德明春花文博子涵浩然雨欣"
_VILLAGES = ["红旗社区", "光明村", "石龙村", "凤凰社区", "双石村", "来苏村", "临江社区", "朱沱村"]
_STREETS = ["中山路", "人民大道", "昌州大道", "兴龙大道", "萱花路", "红河路"]
_RELATIONS = "户主 配偶 子 女 孙子女 父母 兄弟姐妹 其他 妻 儿子 女儿 本人".split()
_MARITAL = ["未婚", "已婚", "已婚", "已婚", "丧偶", "离婚", "初婚"]
_FULL = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


@dataclass
class SampleTruth:
    data_rows: int = 0  # rows that are data (duplicates included)
    duplicates_with_id: int = 0
    duplicates_without_id: int = 0
    ids_15: int = 0
    bad_checksums: int = 0
    sex_contradictions: int = 0
    blank_rows: int = 0
    skipped_rows: list[int] = field(default_factory=list)  # 1-based sheet rows that are not data


@dataclass
class _Person:
    name: str
    sex: str  # "1" / "2"
    birth: date
    id18: str
    hukou: str
    residence: str
    household: int


def _person(rng: random.Random, n: int) -> _Person:
    sex = rng.choice("12")
    birth = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 90))
    division = rng.choice(["500118", "500118", "500118", "500101", "510104"])
    id18 = make_id_card(division, birth, rng.randrange(0, 1000), sex)
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    village = rng.choice(_VILLAGES)
    street = rng.choice(_STREETS)
    hukou = f"重庆市永川区中山路街道{village}{rng.randrange(1, 12)}组{rng.randrange(1, 200)}号"
    building, unit = rng.randrange(1, 30), rng.randrange(1, 9)
    residence = f"重庆市永川区{street}{rng.randrange(1, 999)}号{building}栋{unit}单元"
    return _Person(name, sex, birth, id18, hukou, residence, n // 3 + 1)


def _birth_text(rng: random.Random, d: date) -> str | int | date:
    k = rng.randrange(9)
    if k == 0:
        return f"{d.year}.{d.month:02d}"
    if k == 1:
        return f"{d.year}-{d.month}-{d.day}"
    if k == 2:
        return f"{d.year}年{d.month}月{d.day}日"
    if k == 3:
        return f"{d:%Y%m%d}"
    if k == 4:
        return f"{d:%Y/%m/%d}"
    if k == 5:
        return (d - date(1899, 12, 30)).days  # an Excel serial typed as a number
    if k == 6:
        return f"{d.year}.{d.month}.{d.day}"
    return d  # a real date cell (CSV: ISO text)


def _phone(rng: random.Random) -> str | None:
    k = rng.randrange(20)
    mobile = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
    if k < 11:
        return mobile
    if k < 13:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if k == 13:
        return "+86" + mobile
    if k == 14:
        return "无"
    if k == 15:
        return "/"
    if k == 16:
        return mobile.translate(_FULL)
    return None


def _id_text(rng: random.Random, p: _Person, truth: SampleTruth) -> str | None:
    k = rng.randrange(200)
    if k < 6 and 1900 <= p.birth.year <= 1999:  # 15-digit IDs ended in 1999
        truth.ids_15 += 1
        return p.id18[:6] + p.id18[8:17]
    if k < 10:
        return p.id18.translate(_FULL)
    if k < 11:
        truth.bad_checksums += 1
        last = "0123456789X"[("0123456789X".index(p.id18[17]) + 1) % 11]
        return p.id18[:17] + last
    if k < 15:
        return p.id18.lower()
    if k < 17:
        return f" {p.id18} "
    return p.id18


def _sex_text(rng: random.Random, p: _Person, truth: SampleTruth) -> str:
    sex = p.sex
    if rng.randrange(200) == 0:
        sex = "2" if sex == "1" else "1"
        truth.sex_contradictions += 1
    return sex if rng.randrange(5) == 0 else {"1": "男", "2": "女"}[sex]


Cell = str | int | date | None


def sample_rows(n: int, seed: int = 2024, truth: SampleTruth | None = None) -> Iterator[list[Cell]]:
    """Every row of the sheet, title to footer, as cell values (None: blank)."""
    rng = random.Random(seed)
    truth = truth if truth is not None else SampleTruth()
    blank: list[Cell] = [None] * len(TOP)
    yield [TITLE, *blank[1:]]
    unit = list(blank)
    unit[0], unit[10] = "填报单位：中山路街道（盖章）", "填报日期：2024年1月5日"
    yield unit
    yield list(TOP)
    yield list(BELOW)
    row_no = TITLE_ROWS + HEADER_ROWS
    truth.skipped_rows.extend(range(1, TITLE_ROWS + 1))
    recent: list[tuple[_Person, bool]] = []  # people a duplicate may repeat
    seq = 0
    while truth.data_rows < n:
        if rng.randrange(2000) == 0:
            row_no += 1
            truth.blank_rows += 1
            truth.skipped_rows.append(row_no)
            yield [None] * len(TOP)
        dup = recent and rng.randrange(100) < 4
        if dup:
            p, had_id = recent[rng.randrange(len(recent))]
            if had_id:
                truth.duplicates_with_id += 1
                short = rng.randrange(2) and 1900 <= p.birth.year <= 1999
                id_text: str | None = p.id18[:6] + p.id18[8:17] if short else p.id18
            else:
                truth.duplicates_without_id += 1
                id_text = None
        else:
            seq += 1
            p = _person(rng, seq)
            id_text = None if rng.randrange(50) == 0 else _id_text(rng, p, truth)
            recent.append((p, id_text is not None))
            if len(recent) > 500:
                recent.pop(0)
        truth.data_rows += 1
        row_no += 1
        ethnicity = rng.choice(["汉族", "汉族", "汉族", "汉", "01", "土家族", "苗族"])
        relation = rng.choice(_RELATIONS)
        yield [
            str(truth.data_rows),
            p.name if rng.randrange(30) else f"{p.name[0]} {p.name[1:]}",
            _sex_text(rng, p, truth),
            id_text,
            _birth_text(rng, p.birth),
            ethnicity,
            _phone(rng),
            "023-4981" + f"{rng.randrange(10000):04d}" if rng.randrange(10) == 0 else None,
            p.hukou,
            str(p.household),
            relation,
            p.residence if rng.randrange(8) else "无",
            rng.choice(_MARITAL),
            None,
        ]
    yield ["合计", f"共{truth.data_rows}人", *blank[2:]]
    yield [None] * len(TOP)
    footer: list[Cell] = [None] * len(TOP)
    footer[0], footer[3], footer[8] = "填表人：李明", "审核人：王芳", "填报日期：2024年1月5日"
    yield footer
    truth.skipped_rows.extend([row_no + 1, row_no + 2, row_no + 3])


def write_xlsx(path: Path, n: int, seed: int = 2024, *, sheet: str = "人口信息") -> SampleTruth:
    truth = SampleTruth()
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        ws = wb.add_worksheet(sheet)
        notes = wb.add_worksheet("填表说明")  # a second sheet, as legacy workbooks have
        notes.write(0, 0, "本表由系统生成，用于导入测试")
        date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        for r, line in enumerate(sample_rows(n, seed, truth)):
            if r == 0:
                ws.merge_range(0, 0, 0, len(TOP) - 1, line[0])
                continue
            if r == TITLE_ROWS:  # the two header rows: merged parents and merged-down labels
                for c, text in enumerate(TOP):
                    if text is None:
                        continue
                    if BELOW[c] is None:
                        ws.merge_range(r, c, r + 1, c, text)
                    else:
                        span = 1
                        while c + span < len(TOP) and TOP[c + span] is None and BELOW[c + span]:
                            span += 1
                        if span > 1:
                            ws.merge_range(r, c, r, c + span - 1, text)
                        else:
                            ws.write_string(r, c, text)
                continue
            if r == TITLE_ROWS + 1:
                for c, text in enumerate(BELOW):
                    if text is not None:
                        ws.write_string(r, c, text)
                continue
            for c, v in enumerate(line):
                if v is None:
                    continue
                if isinstance(v, date):
                    ws.write_datetime(r, c, v, date_fmt)
                elif isinstance(v, int):
                    ws.write_number(r, c, v)
                else:
                    ws.write_string(r, c, v)
    finally:
        wb.close()
    return truth


def write_csv(path: Path, n: int, seed: int = 2024, *, encoding: str = "gb18030") -> SampleTruth:
    """CSV as Excel saves it in China: GB18030 (GBK) by default, or utf-8-sig."""
    truth = SampleTruth()
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        for line in sample_rows(n, seed, truth):
            w.writerow(["" if v is None else v.isoformat() if isinstance(v, date) else v for v in line])
    return truth
