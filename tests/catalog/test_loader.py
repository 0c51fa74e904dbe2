"""Catalogue loading: the real data standard loads; broken files are reported with file, line, reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.catalog.loader import DEFAULT_DIR, CatalogError, load_catalog
from app.catalog.model import Sensitivity


def test_the_data_standard_loads_with_six_core_subjects_and_households():
    cat = load_catalog()
    core = {c for c, lg in cat.ledgers.items() if lg.kind == "core"}
    assert core == {"person", "house", "land", "event", "thing", "organisation", "household"}
    assert cat.ledger("disability").parent == "person"
    person = cat.ledger("person")
    assert person.field("id_number").sensitivity == Sensitivity.sensitive
    assert cat.codelists["sex"].values["2"] == "女"
    assert {r.code for r in cat.relations.values()} >= {
        "residence",
        "land_contract",
        "membership",
        "event_person",
    }
    # The relation to the head is the household's (one truth), not the residence's.
    assert [a.code for a in cat.relations["household_member"].attributes] == ["relation_to_head", "since"]
    assert all(a.code != "relation_to_head" for a in cat.relations["residence"].attributes)
    assert (
        not cat.relations["household_member"].forward_many
        and not cat.relations["household_house"].forward_many
    )
    assert cat.codelists["relation_to_head"].values["01"] == "户主"


def _copy(tmp_path: Path) -> Path:
    d = tmp_path / "ledgers"
    shutil.copytree(DEFAULT_DIR, d)
    return d


def _issues(d: Path) -> list[str]:
    with pytest.raises(CatalogError) as err:
        load_catalog(d)
    return [str(i) for i in err.value.issues]


def test_schema_error_names_file_and_line(tmp_path):
    d = _copy(tmp_path)
    (d / "extra.yaml").write_text(
        "ledgers:\n  - code: pet\n    label: 宠物\n    kind: core\n    fields:\n"
        "      - {code: name, label: 名字, type: txt}\n",
        encoding="utf-8",
    )
    issues = _issues(d)
    assert any(i.startswith("extra.yaml:6:") and "txt" in i for i in issues), issues


def test_semantic_errors_unknown_codelist_duplicate_and_reserved(tmp_path):
    d = _copy(tmp_path)
    (d / "extra.yaml").write_text(
        "ledgers:\n"
        "  - code: pet\n    label: 宠物\n    kind: core\n    fields:\n"
        "      - {code: kind, label: 种类, type: code, codelist: no_such_list}\n"
        "      - {code: version, label: 版本, type: integer}\n"
        "  - code: person\n    label: 重复\n    kind: core\n    fields:\n"
        "      - {code: x, label: x, type: text}\n",
        encoding="utf-8",
    )
    issues = _issues(d)
    assert any(i.startswith("extra.yaml:6:") and "codelist" in i for i in issues), issues
    assert any(i.startswith("extra.yaml:7:") and "reserved" in i for i in issues), issues
    assert any("duplicate ledger 'person'" in i and "extra.yaml:8" in i for i in issues), issues


def test_yaml_syntax_error_has_a_line(tmp_path):
    d = _copy(tmp_path)
    (d / "broken.yaml").write_text("ledgers:\n  - code: [unclosed\n", encoding="utf-8")
    assert any(i.startswith("broken.yaml:") for i in _issues(d))


def test_item1_derived_from_is_declared_and_checked(tmp_path):
    cat = load_catalog()
    assert cat.ledger("person").field("birth_date").derived_from == ("person.id_number",)
    assert "person.id_number" in cat.ledger("disability").field("certificate_number").derived_from
    assert cat.ledger("house").field("owner_id_number").derived_from == ("person.id_number",)
    d = _copy(tmp_path)
    (d / "extra.yaml").write_text(
        "ledgers:\n"
        "  - code: pet\n    label: 宠物\n    kind: core\n    fields:\n"
        "      - {code: tag, label: 牌号, type: text, derived_from: person.no_such_field}\n"
        "      - {code: chip, label: 芯片, type: text, derived_from: [nowhere.id_number]}\n"
        "      - {code: a, label: 甲, type: text, derived_from: pet.b}\n"
        "      - {code: b, label: 乙, type: text, derived_from: pet.a}\n",
        encoding="utf-8",
    )
    (d / "shape.yaml").write_text(
        "ledgers:\n  - code: cat\n    label: 猫\n    kind: core\n    fields:\n"
        "      - {code: c, label: 丙, type: text, derived_from: pet}\n",
        encoding="utf-8",
    )
    issues = _issues(d)
    assert any(i.startswith("extra.yaml:6:") and "no field 'no_such_field'" in i for i in issues), issues
    assert any(i.startswith("extra.yaml:7:") and "unknown ledger 'nowhere'" in i for i in issues), issues
    assert any(i.startswith("extra.yaml:") and "cycle" in i for i in issues), issues
    assert any(i.startswith("shape.yaml:6:") and "derived_from" in i for i in issues), issues
