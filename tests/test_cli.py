"""The `onetable` command, through typer's CliRunner (no database needed for these)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.catalog.loader import DEFAULT_DIR, load_catalog
from app.cli import main

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(main, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    for command in ("serve", "demo", "db", "user", "service-account", "catalog", "schemas"):
        assert re.search(rf"\b{re.escape(command)}\b", result.output), f"{command} missing from --help"


@pytest.mark.parametrize(
    ("group", "commands"),
    [
        ("db", ["upgrade", "url"]),
        ("user", ["add"]),
        ("service-account", ["add"]),
        ("catalog", ["check", "export"]),
        ("schemas", ["export"]),
    ],
)
def test_group_help_lists_subcommands(group: str, commands: list[str]):
    result = invoke(group, "--help")
    assert result.exit_code == 0, result.output
    for command in commands:
        assert command in result.output


def test_serve_help_names_its_options():
    result = invoke("serve", "--help")
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--demo", "--no-demo", "--scale", "--reload"):
        assert option in result.output


def test_catalog_check_passes_on_the_real_ledgers():
    result = invoke("catalog", "check")
    assert result.exit_code == 0, result.output
    catalog = load_catalog(DEFAULT_DIR)
    assert f"{len(catalog.ledgers)} 个台账" in result.output
    assert f"{len(catalog.codelists)} 个代码表" in result.output
    for code in catalog.ledgers:
        assert code in result.output


def _broken_catalogue(tmp_path: Path) -> Path:
    for path in DEFAULT_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "zz_bad_type.yaml").write_text(
        "ledgers:\n"
        "  - code: broken\n"
        "    label: 坏台账\n"
        "    kind: core\n"
        "    fields:\n"
        "      - {code: a, label: 甲, type: texty}\n",
        encoding="utf-8",
    )
    (tmp_path / "zz_bad_codelist.yaml").write_text(
        "ledgers:\n"
        "  - code: broken2\n"
        "    label: 坏台账二\n"
        "    kind: core\n"
        "    fields:\n"
        "      - {code: title, label: 名称, type: text}\n"
        "      - {code: kind, label: 类型, type: code, codelist: no_such_list}\n",
        encoding="utf-8",
    )
    return tmp_path


def test_catalog_check_reports_file_and_line(tmp_path: Path):
    result = invoke("catalog", "check", str(_broken_catalogue(tmp_path)))
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    bad_type = [ln for ln in lines if ln.startswith("zz_bad_type.yaml:6: ")]
    assert bad_type and "texty" in bad_type[0], result.output
    bad_codelist = [ln for ln in lines if ln.startswith("zz_bad_codelist.yaml:7: ")]
    assert bad_codelist and "no_such_list" in bad_codelist[0], result.output
    assert "2 个问题" in result.output


def test_catalog_check_on_an_empty_folder_fails(tmp_path: Path):
    result = invoke("catalog", "check", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path}:1: " in result.output


def test_schemas_export_writes_the_contracts(tmp_path: Path):
    result = invoke("schemas", "export", "--out-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    written = (tmp_path / "openapi.json").read_text(encoding="utf-8")
    assert written.endswith("}\n")
    assert '"openapi"' in written
    # A second export finds nothing to change.
    again = invoke("schemas", "export", "--out-dir", str(tmp_path))
    assert again.exit_code == 0 and "已更新" not in again.output
