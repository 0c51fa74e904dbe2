"""The import wizard (screen 8, C6-7) in a real browser at 375 px: a township clerk uploads a small
legacy XLSX, checks the proposed columns (an unknown one flagged), runs the dry run and reads the
counts and the bad row in Chinese, downloads the 问题行 file and submits; a reviewer (platform
admin) opens the batch from 首页, approves, commits and undoes it."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
import xlsxwriter
from playwright.sync_api import Page, expect

from app.catalog.validators import make_id_card
from tests.web.conftest import Live
from tests.web.test_browser import login, shot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ADDRESS = "重庆市永川区临江镇临江村3组12号"
BAD_ID = "500118196001019990"  # wrong check digit
HEADERS = ["序号", "姓名", "公民身份号码", "性别", "联系电话", "现居住标准地址", "自编栏目"]
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def legacy_sheet() -> bytes:
    """Two new people, one repeated by ID (a duplicate in the file), one with a bad ID: the header
    is row 1, so the bad row is row 5."""
    one = make_id_card("500118", date(1981, 3, 4), 101, "1")
    two = make_id_card("500118", date(1983, 7, 9), 102, "2")
    rows = [[1, "周明", one, "男", "13811110001", ADDRESS, "甲"],
            [2, "吴芳", two, "女", "", ADDRESS, ""],
            [3, "周明", one, "男", "13811110009", ADDRESS, ""],
            [4, "郑丽", BAD_ID, "女", "", ADDRESS, ""]]
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    ws = book.add_worksheet("人口信息")
    ws.write_row(0, 0, HEADERS)
    for n, r in enumerate(rows, 1):
        for c, v in enumerate(r):
            if v != "":
                ws.write_string(n, c, str(v))
    book.close()
    return buf.getvalue()


def phone(browser):
    return browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN",
                               is_mobile=True, has_touch=True, device_scale_factor=1,
                               accept_downloads=True)


def count(page: Page, label: str):
    name = page.locator(".label", has_text=re.compile(f"^{label}$"))
    return page.locator("li.count").filter(has=name).locator(".n")


def test_clerk_imports_and_reviewer_commits(live: Live, browser, tmp_path):
    path = tmp_path / "2026年11月临江镇人口台账.xlsx"
    path.write_bytes(legacy_sheet())

    context = phone(browser)
    page = context.new_page()
    login(page, live, "ta")
    page.get_by_role("button", name="导入存量台账").click()
    expect(page.get_by_role("heading", name="导入存量台账")).to_be_visible()
    page.get_by_label("表格文件", exact=True).set_input_files(str(path))
    page.get_by_role("button", name="上传").click()

    # 核对列: the proposed mapping, the unknown column flagged.
    mapping = page.get_by_role("region", name="核对列")
    expect(mapping).to_be_visible()
    expect(page).to_have_url(re.compile(r"/imports/\d+$"))
    batch_id = int(page.url.rsplit("/", 1)[1])
    unknown = mapping.locator("tr.unknown")
    expect(unknown.filter(has_text="自编栏目")).to_have_count(1)
    expect(unknown.filter(has_text="自编栏目")).to_contain_text("未识别")
    expect(unknown.filter(has_text="公民身份号码")).to_have_count(0)
    shot(page, live, "import-mapping-375")
    known = mapping.locator("tr", has_text="公民身份号码").first
    expect(known.locator(".el-select")).to_contain_text("公民身份号码")
    assert page.evaluate(OVERFLOW) <= 0
    # The clerk leaves 联系电话 out by the dropdown: the batch is dry-run with that mapping.
    mapping.locator("tr", has_text="联系电话").locator(".el-select").click()
    page.locator(".el-select-dropdown__item:visible", has_text="（不导入）").click()
    expect(mapping.locator("tr.unknown").filter(has_text="联系电话")).to_have_count(1)

    # 试导入: counts per outcome and the bad row, in Chinese.
    page.get_by_role("button", name="试导入").click()
    expect(count(page, "读取")).to_have_text("4")
    expect(count(page, "新增")).to_have_text("2")
    expect(count(page, "文件内重复")).to_have_text("1")
    expect(count(page, "错误")).to_have_text("1")
    issues = page.locator(".issues .el-table__body tr")
    bad = issues.filter(has_text=BAD_ID)
    expect(bad).to_have_count(1)
    expect(bad.locator("td").nth(0)).to_have_text("5")
    expect(bad).to_contain_text("公民身份号码")
    expect(bad.locator(".bad")).to_contain_text(re.compile(r"[\u4e00-\u9fff]"))
    assert page.evaluate(OVERFLOW) <= 0
    shot(page, live, "import-dry-run-375")

    with live.api("ta") as api:
        got = api.get(f"/api/v1/imports/{batch_id}").json()
        used = {m["header"]: m["field"] for m in got["mapping"]}
        assert used["联系电话"] is None and used["公民身份号码"] == "id_number"

    with page.expect_download() as dl:
        page.get_by_role("button", name="下载问题行（XLSX）").click()
    assert dl.value.suggested_filename.endswith(".xlsx")

    # The clerk cannot approve her own batch: only 提交审核 is offered.
    expect(page.get_by_role("button", name="审核通过")).to_have_count(0)
    page.get_by_role("button", name="提交审核").click()
    expect(page.locator(".title .el-tag")).to_have_text("待审核")
    expect(page.get_by_text("等待区级审核人员审核")).to_be_visible()
    with live.api("ta") as api:
        assert api.get(f"/api/v1/imports/{batch_id}").json()["status"] == "awaiting_approval"
    context.close()

    # The reviewer: from 首页, by batch number; approve, commit, undo.
    context = phone(browser)
    page = context.new_page()
    login(page, live, "admin")
    page.get_by_label("待审核的导入批次").fill(str(batch_id))
    page.get_by_role("button", name="打开").click()
    expect(page.locator(".title .el-tag")).to_have_text("待审核")
    expect(count(page, "错误")).to_have_text("1")
    expect(page.locator(".issues .el-table__body tr").filter(has_text=BAD_ID)).to_have_count(1)
    shot(page, live, "import-review-375")
    page.get_by_role("button", name="审核通过").click()
    expect(page.locator(".title .el-tag")).to_have_text("已审核通过")
    page.get_by_role("button", name="正式导入").click()
    expect(page.locator(".title .el-tag")).to_have_text("已导入")
    with live.api("ta") as api:
        done = api.get(f"/api/v1/imports/{batch_id}").json()
        assert done["status"] == "committed" and done["counts"]["created"] == 2
    page.get_by_role("button", name="撤销导入").click()
    page.get_by_role("dialog").get_by_role("button", name="撤销").click()
    expect(page.locator(".title .el-tag")).to_have_text("已撤销")
    expect(page.get_by_role("status").filter(has_text="已撤销")).to_contain_text("删除 2 条")
    assert page.evaluate(OVERFLOW) <= 0
    context.close()
