"""The matcher without a database: folding, levels, blocking, survivorship rules."""

from __future__ import annotations

from datetime import date

from app.catalog.loader import get_catalog
from app.dedupe import normalize as nz
from app.dedupe.blocking import pairs_between, pairs_within
from app.dedupe.merge import LOSER, SURVIVOR, survive
from app.dedupe.scoring import is_candidate, match_weight, profile

LEDGER = {
    "name": "张三",
    "birth_date": "1960-05-01",
    "residence_address": "重庆市永川区中山路街道幸福村3组12号",
}


def test_folding_traditional_full_width_and_15_digit_ids():
    assert nz.name_key("張 三") == "张三"
    assert nz.name_key("ＡＢＣ·李") == "ABC李"
    assert nz.fuzzy_pinyin("张三") == nz.fuzzy_pinyin("章山") != nz.fuzzy_pinyin("王五")
    assert nz.id_key("500118600501123") == "50011819600501123" + nz.id_key("500118600501123")[-1]
    assert len(nz.id_key("500118600501123") or "") == 18
    assert nz.swapped(date(1960, 5, 1)) == date(1960, 1, 5) and nz.swapped(date(1960, 5, 13)) is None
    assert nz.phone_key("+86 138-0000-1111") == "13800001111"


def test_c1_4_traditional_row_scores_as_candidate_and_a_stranger_does_not():
    row = profile(
        {
            "name": "張三",
            "birth_date": "1960-05-01",
            "residence_address": "永川區中山路街道幸福村3組12號",
        }
    )
    w, reasons = match_weight(row, profile(LEDGER))
    assert is_candidate(w)
    assert "姓名一致（繁简、全半角折叠后）" in reasons and "出生日期一致" in reasons and "地址相近" in reasons
    stranger = profile({"name": "李四", "birth_date": "1971-03-02", "residence_address": "永川区胜利路街道"})
    w2, _ = match_weight(stranger, profile(LEDGER))
    assert not is_candidate(w2)


def test_same_name_different_person_is_not_a_candidate():
    # Same (common) name and year, other birthday, other address, other ID: a namesake.
    a = profile({**LEDGER, "id_number": "500118196005011234"})
    b = profile(
        {
            "name": "张三",
            "birth_date": "1960-08-21",
            "residence_address": "永川区卫星湖街道",
            "id_number": "500118196008214321",
        }
    )
    assert not is_candidate(match_weight(a, b)[0])


def test_blocking_pairs_homophones_and_swapped_dates():
    people = [
        profile(LEDGER),
        profile({"name": "章山", "birth_date": "1960-01-05"}),
        profile({"name": "王五", "birth_date": "1990-02-03"}),
    ]
    assert set(pairs_within(people)) == {(0, 1)}
    assert set(pairs_between([people[1]], people)) == {(0, 0), (0, 1)}


def test_survivorship_owner_then_recency_then_completeness():
    person = get_catalog().ledger("person")
    assert person is not None
    fields = tuple(
        f for f in person.fields if f.code in ("marital_status", "phone", "remark", "political_status")
    )
    old, new = "2020-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"
    surv = {
        "marital_status": "20",
        "phone": "13800000001",
        "remark": None,
        "political_status": "13",
    }
    surv_prov = {
        "marital_status": {"source": "township:500118101000", "at": new},
        "phone": {"source": "township:500118101000", "at": old},
        "political_status": {"source": "township:500118101000", "at": new},
    }
    loser = {
        "marital_status": "10",
        "phone": "13800000002",
        "remark": "补录",
        "political_status": "01",
    }
    loser_prov = {
        "marital_status": {"source": "department:mzj", "at": old},
        "phone": {"source": "township:500118101000", "at": new},
        "remark": {"source": "township:500118101000", "at": old},
        "political_status": {"source": "township:500118101000", "at": old},
    }
    d = survive(fields, surv, surv_prov, loser, loser_prov)
    assert d["marital_status"]["from"] == LOSER and d["marital_status"]["rule"] == "owner"  # older, but mzj's
    assert d["phone"]["from"] == LOSER and d["phone"]["rule"] == "recency"
    assert d["remark"]["from"] == LOSER and d["remark"]["rule"] == "completeness"
    assert d["political_status"]["from"] == SURVIVOR and d["political_status"]["rule"] == "recency"
    assert d["phone"]["values"] == {
        SURVIVOR: "13800000001",
        LOSER: "13800000002",
    }  # every value kept
