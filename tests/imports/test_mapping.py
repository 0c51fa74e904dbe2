"""Header -> catalogue mapping: labels, aliases from ledgers/*.yaml, two-row headers, saved mappings
per legacy form (C1-9), and unknown columns kept and flagged."""

from __future__ import annotations

import pytest

from app.catalog.loader import yaml_catalog
from app.imports.mapping import normalize_header, propose_mapping, saved_form, target_fields
from app.imports.sample import FLAT


def test_sample_headers_map_by_label_and_alias() -> None:
    got = [(m.index, m.header, m.field, m.how) for m in propose_mapping("person", FLAT)]
    assert got == [
        (0, "序号", None, "unknown"),
        (1, "姓名", "name", "label"),
        (2, "性别", "sex", "label"),
        (3, "身份证号码", "id_number", "alias"),
        (4, "出生年月", "birth_date", "alias"),
        (5, "民族", "ethnicity", "label"),
        (6, "联系方式/手机号码", "phone", "alias"),
        (7, "联系方式/固定电话", None, "unknown"),  # phone is taken: flagged, not dropped
        (8, "户籍信息/户籍地址", "hukou_address", "label"),
        (9, "户籍信息/户号", "household.household_no", "label"),
        (10, "户籍信息/与户主关系", "household.@relation_to_head", "label"),
        (11, "现住址", "residence_address", "alias"),
        (12, "婚姻状况", "marital_status", "label"),
        (13, "备注(必填)", "remark", "label"),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "身份证号",
        "身份证号码",
        "公民身份号码",
        "证件号码",
        "居民身份证号码",
        "身份证号码（必填）",
        "＊身份证号码：",
        "公民身份 号码",
        "【身份证号】",
    ],
)
def test_id_number_synonyms(header: str) -> None:
    [m] = propose_mapping("person", [header])
    assert m.field == "id_number"


@pytest.mark.parametrize(
    "header, field",
    [
        ("姓名", "name"),
        ("性别（男/女）", "sex"),
        ("出生日期", "birth_date"),
        ("联系电话", "phone"),
        ("手机号码", "phone"),
        ("户籍地址", "hukou_address"),
        ("现住址", "residence_address"),
        ("家庭住址", "residence_address"),
        ("与户主关系", "household.@relation_to_head"),
        ("户号", "household.household_no"),
        ("民族", "ethnicity"),
        ("婚姻状况", "marital_status"),
    ],
)
def test_common_headers(header: str, field: str) -> None:
    [m] = propose_mapping("person", [header])
    assert (m.field, m.how in ("label", "alias")) == (field, True)


def test_normalize_header() -> None:
    assert normalize_header("身份证号码（必填）*") == "身份证号码"
    assert normalize_header(" 姓　名： ") == "姓名"
    assert normalize_header("面积(亩)(必填)") == "面积"


def test_unknown_columns_are_kept_in_order() -> None:
    headers = ["是否参加新农合", "姓名", "列C", "身份证号码"]
    got = propose_mapping("person", headers)
    assert [m.index for m in got] == [0, 1, 2, 3]
    assert [(m.field, m.how) for m in got] == [
        (None, "unknown"),
        ("name", "label"),
        (None, "unknown"),
        ("id_number", "alias"),
    ]


def test_each_field_taken_once() -> None:
    got = propose_mapping("person", ["联系电话", "手机号码", "身份证号", "公民身份号码"])
    assert [m.field for m in got] == ["phone", None, "id_number", None]


def test_saved_mapping_reused_next_month() -> None:
    """C1-9: the clerk corrects this month's proposal; next month the same form maps with it."""
    first = propose_mapping("person", FLAT)
    by_header = {m.header: m for m in first}
    by_header["联系方式/固定电话"].field, by_header["联系方式/固定电话"].how = "remark", "manual"
    remark = by_header["备注(必填)"]
    remark.field, remark.how = None, "manual"  # left out on purpose
    by_header["序号"].how = "manual"
    saved = saved_form(first)
    # next month: same form, typed a little differently (full-width brackets, spaces)
    headers = [h.replace("(必填)", "（必填）") for h in FLAT]
    headers[1] = "姓 名"
    again = propose_mapping("person", headers, saved)
    assert all(m.how == "saved" for m in again)
    assert [m.field for m in again] == [m.field for m in first]
    assert again[7].field == "remark" and again[13].field is None
    # without the saved mapping the proposal differs where the clerk changed it
    plain = propose_mapping("person", headers)
    assert plain[7].field is None and plain[13].field == "remark"


def test_saved_mapping_to_a_field_that_no_longer_exists_falls_back() -> None:
    got = propose_mapping("person", ["身份证号码"], {"身份证号码": "gone_field"})
    assert (got[0].field, got[0].how) == ("id_number", "alias")


def test_targets_reach_extensions_and_links() -> None:
    t = target_fields("person", yaml_catalog())
    assert "disability.certificate_number" in t
    assert t["household.@relation_to_head"].codelist == "relation_to_head"
    assert "household.household_no" in t and "residence.standard_address" in t
    [m] = propose_mapping("person", ["残疾人证号"])
    assert m.field == "disability.certificate_number"


def test_unknown_ledger() -> None:
    with pytest.raises(KeyError):
        propose_mapping("no_such_ledger", ["姓名"])


def test_aliases_are_catalogue_metadata(tmp_path) -> None:
    """Declared in YAML, loaded into Field.aliases, kept by the export, checked by the schema."""
    from app.catalog.export import as_yaml
    from app.catalog.loader import CatalogError, load_catalog

    cat = yaml_catalog()
    assert "公民身份证号码" in cat.ledgers["person"].field("id_number").aliases
    (tmp_path / "all.yaml").write_text(as_yaml(cat), encoding="utf-8")
    again = load_catalog(tmp_path)
    assert (
        again.ledgers["person"].field("id_number").aliases == cat.ledgers["person"].field("id_number").aliases
    )
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text(
        "ledgers:\n  - code: thing2\n    label: 物\n    kind: core\n    fields:\n"
        "      - {code: name, label: 名称, type: text, aliases: [1]}\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError) as e:
        load_catalog(bad)
    assert "aliases" in str(e.value)
