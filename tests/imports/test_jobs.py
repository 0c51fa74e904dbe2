"""Import jobs through /api/v1/imports: review gate and counts (C1-6), exact dedupe with survivorship
(C1-3), scope (C1-5), idempotence (C1-7), undo with conflicts (C1-8), saved mappings (C1-9),
households from the sheet, rejects as XLSX."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import func, insert, select, text, update

from app.access.models import Grant
from app.catalog.validators import make_id_card
from app.db.ledger_tables import tables
from app.org.models import Region
from tests.world import A, B

VILLAGE = A + "201"
HEADERS = ["序号", "姓名", "公民身份号码", "性别", "联系电话", "现居住标准地址", "婚姻状况", "备注"]
ADDR_A = "重庆市永川区临江镇石桥村3组12号"
ADDR_B = "重庆市永川区何埂镇红旗村1组2号"


def pid(n: int, sex: str = "1") -> str:
    return make_id_card("500118", date(1960, 1, 1 + n % 27), n % 1000, sex)


def sheet(rows: list[list[Any]], headers: list[str] = HEADERS) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue().encode("utf-8")


@pytest.fixture
async def area(session, world):
    for code, name, level, parent in (
        ("500118000000", "永川区", 3, None),
        (A + "000", "临江镇", 4, "500118000000"),
        (VILLAGE, "石桥村", 5, A + "000"),
        (B + "000", "何埂镇", 4, "500118000000"),
        (B + "201", "红旗村", 5, B + "000"),
    ):
        if await session.get(Region, code) is None:
            session.add(Region(code=code, name=name, level=level, parent_code=parent))
    await session.flush()
    return world


async def upload(
    client,
    headers,
    content: bytes,
    name: str = "2026年10月临江镇人口台账.csv",
    township: str = A,
    **form: str,
) -> dict[str, Any]:
    r = await client.post(
        "/api/v1/imports",
        headers=headers,
        files={"file": (name, content, "text/csv")},
        data={"ledger": "person", "township": township, **form},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def run(
    client, world, content: bytes, name: str = "2026年10月临江镇人口台账.csv", commit: bool = True
) -> dict[str, Any]:
    b = await upload(client, world.a, content, name)
    r = await client.post(f"/api/v1/imports/{b['id']}/dry-run", headers=world.a)
    assert r.status_code == 200, r.text
    if not commit:
        return r.json()
    assert (await client.post(f"/api/v1/imports/{b['id']}/submit", headers=world.a)).status_code == 200
    assert (await client.post(f"/api/v1/imports/{b['id']}/approve", headers=world.admin)).status_code == 200
    r = await client.post(f"/api/v1/imports/{b['id']}/commit", headers=world.admin)
    assert r.status_code == 200, r.text
    return r.json()


async def rows_of(client, world, batch_id: int, outcome: str | None = None) -> list[dict[str, Any]]:
    q = f"?outcome={outcome}" if outcome else ""
    r = await client.get(f"/api/v1/imports/{batch_id}/rows{q}", headers=world.a)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def person(session, id_number: str) -> dict[str, Any] | None:
    t = tables().ledgers["person"]
    row = (
        await session.execute(select(t).where(t.c.id_number == id_number, t.c.deleted_at.is_(None)))
    ).first()
    return dict(row._mapping) if row else None


async def test_review_gate_and_counts(client, session, area):
    """C1-6: no commit before a district reviewer approved; afterwards the counts are on the batch."""
    world = area
    content = sheet(
        [
            [1, "王伟", pid(1), "男", "13800000001", ADDR_A, "已婚", None],
            [2, "李娜", pid(2, "2"), "女", None, ADDR_A, None, "新迁入"],
            [3, "张强", pid(1), "男", "13800000009", ADDR_A, None, None],  # same ID as row 1
            [4, "赵敏", "500118196001019990", "女", None, ADDR_A, None, None],
        ]
    )  # bad checksum
    b = await upload(client, world.a, content)
    assert b["status"] == "draft"
    assert {m["header"]: m["field"] for m in b["mapping"]}["公民身份号码"] == "id_number"
    bid = b["id"]
    early = await client.post(f"/api/v1/imports/{bid}/commit", headers=world.admin)
    assert early.status_code == 409 and early.json()["code"] == "import.approval_required"
    r = await client.post(f"/api/v1/imports/{bid}/submit", headers=world.a)
    assert r.status_code == 409 and r.json()["code"] == "import.dry_run_required"
    dry = (await client.post(f"/api/v1/imports/{bid}/dry-run", headers=world.a)).json()
    assert dry["status"] == "dry_run"
    assert dry["counts"]["created"] == 2 and dry["counts"]["duplicates"] == 1 and dry["counts"]["errors"] == 1
    assert await person(session, pid(1)) is None  # a dry run writes nothing
    err = (await rows_of(client, world, bid, "error"))[0]
    assert err["row"] == 5  # the header is row 1
    bad = next(i for i in err["issues"] if i["severity"] == "error")
    assert bad["column"] == "公民身份号码" and bad["raw"] == "500118196001019990" and bad["message"]
    assert (await client.post(f"/api/v1/imports/{bid}/submit", headers=world.a)).json()[
        "status"
    ] == "awaiting_approval"
    early = await client.post(f"/api/v1/imports/{bid}/commit", headers=world.a)
    assert early.status_code == 409
    # The township cannot approve its own batch; nor can another township see it.
    r = await client.post(f"/api/v1/imports/{bid}/approve", headers=world.a)
    assert r.status_code == 403 and r.json()["code"] == "import.approval_forbidden"
    assert (await client.get(f"/api/v1/imports/{bid}", headers=world.b)).status_code == 404
    assert (await client.post(f"/api/v1/imports/{bid}/approve", headers=world.admin)).json()[
        "status"
    ] == "approved"
    done = (await client.post(f"/api/v1/imports/{bid}/commit", headers=world.a)).json()
    assert done["status"] == "committed"
    got = (await client.get(f"/api/v1/imports/{bid}", headers=world.a)).json()
    c = got["counts"]
    assert (
        c["read"],
        c["created"],
        c["updated"],
        c["unchanged"],
        c["duplicates"],
        c["candidates"],
        c["errors"],
    ) == (4, 2, 0, 0, 1, 0, 1)
    p = await person(session, pid(1))
    assert p is not None and p["region_code"] == VILLAGE and p["phone"] == "13800000001"
    assert p["provenance"]["phone"]["source"] == f"import:{bid}" and p["provenance"]["phone"]["row"] == 2
    h = tables().history
    sources = (
        (
            await session.execute(
                select(h.c.source).where(
                    h.c.ledger == "person", h.c.record_id == p["id"], h.c.field == "phone"
                )
            )
        )
        .scalars()
        .all()
    )
    assert sources == [f"import:{bid}:2"]
    again = await client.post(f"/api/v1/imports/{bid}/commit", headers=world.admin)
    assert again.status_code == 409 and again.json()["code"] == "import.already_committed"


async def test_exact_dedupe_and_survivorship(client, session, area):
    """C1-3: two rows with one ID plus the ledger's record give one record; the department-owned
    marital status keeps the department's value, township items are filled."""
    world = area
    t = tables().ledgers["person"]
    prov = {"marital_status": {"source": "department:mzj"}}
    await session.execute(
        insert(t).values(
            region_code=VILLAGE,
            name="王伟",
            id_number=pid(7),
            sex="1",
            birth_date=date(1960, 1, 8),
            marital_status="20",
            provenance=prov,
        )
    )
    await session.flush()
    content = sheet(
        [
            [1, "王伟", pid(7), "男", "13800000007", ADDR_A, "离婚", None],
            [2, "王伟", pid(7), "男", None, ADDR_A, None, "低保边缘户"],
        ]
    )
    out = await run(client, world, content)
    c = out["counts"]
    assert (c["created"], c["updated"], c["duplicates"]) == (0, 1, 1)
    rows = (
        await session.execute(
            select(func.count()).select_from(t).where(t.c.id_number == pid(7), t.c.deleted_at.is_(None))
        )
    ).scalar()
    assert rows == 1
    p = await person(session, pid(7))
    assert p["marital_status"] == "20"  # department:mzj owns it; the sheet's 离婚 is not applied
    assert p["phone"] == "13800000007" and p["remark"] == "低保边缘户"  # township items, from both rows
    warned = await rows_of(client, world, out["id"], "update")
    assert any(i["code"] == "import.kept_owner_value" for i in warned[0]["issues"])


async def test_scope_rows_and_columns(client, session, area):
    """C1-5: a row in another township is refused (不在本辖区); a column the township may not write is
    refused whole, while the others go in. Two-sided: the same column is imported once granted."""
    world = area
    session.add(
        Grant(
            grantee_type="role",
            role="township_admin",
            ledger="person",
            field="low_income_status",
            level="read",
            row_scope="own",
            created_by="test",
        )
    )
    await session.flush()
    headers = [*HEADERS, "低收入状况"]
    content = sheet(
        [
            [1, "王伟", pid(11), "男", None, ADDR_A, None, None, "低保"],
            [2, "李娜", pid(12, "2"), "女", None, ADDR_B, None, None, None],
        ],
        headers,
    )
    out = await run(client, world, content)
    refused = [i for i in out["column_issues"] if i["code"] == "import.column_forbidden"]
    assert [i["column"] for i in refused] == ["低收入状况"]
    assert out["counts"]["created"] == 1 and out["counts"]["errors"] == 1
    err = (await rows_of(client, world, out["id"], "error"))[0]
    assert err["row"] == 3 and any(i["message"] == "不在本辖区" for i in err["issues"])
    assert await person(session, pid(12, "2")) is None
    p = await person(session, pid(11))
    assert p is not None and p["low_income_status"] is None
    # the other side: with write on the field the column goes in
    await session.execute(text("DELETE FROM access_grant WHERE field = 'low_income_status'"))
    session.expire_all()
    session.info.clear()
    content = sheet([[1, "周杰", pid(13), "男", None, ADDR_A, None, None, "城乡低保"]], headers)
    out = await run(client, world, content, name="另一表.csv")
    assert not [i for i in out["column_issues"] if i["code"] == "import.column_forbidden"]
    assert (await person(session, pid(13)))["low_income_status"] == "1"


async def test_same_file_twice_changes_nothing(client, session, area):
    """C1-7 (idempotent): the second import of the same file creates and updates nothing."""
    world = area
    content = sheet(
        [[i, f"王{i}", pid(20 + i), "男", f"1380000{i:04d}", ADDR_A, "已婚", None] for i in range(1, 6)]
    )
    first = await run(client, world, content)
    assert first["counts"]["created"] == 5
    h = tables().history
    before = (await session.execute(select(func.count()).select_from(h))).scalar()
    second = await run(client, world, content)
    c = second["counts"]
    assert (c["created"], c["updated"], c["unchanged"]) == (0, 0, 5)
    assert (await session.execute(select(func.count()).select_from(h))).scalar() == before


async def test_undo_restores_and_reports_conflicts(client, session, area):
    """C1-8: undo restores pre-import values; a field edited after the import is a conflict, kept."""
    world = area
    t = tables().ledgers["person"]
    await session.execute(
        insert(t).values(
            region_code=VILLAGE,
            name="老张",
            id_number=pid(40),
            sex="1",
            birth_date=date(1960, 1, 14),
            phone="13900000000",
        )
    )
    await session.flush()
    content = sheet(
        [
            [1, "老张", pid(40), "男", "13800000040", ADDR_A, None, "导入备注"],
            [2, "新人甲", pid(41), "男", None, ADDR_A, None, None],
            [3, "新人乙", pid(42, "2"), "女", None, ADDR_A, None, None],
        ]
    )
    out = await run(client, world, content)
    assert out["counts"]["created"] == 2 and out["counts"]["updated"] == 1
    old = await person(session, pid(40))
    assert old["phone"] == "13800000040" and old["remark"] == "导入备注"
    # edited since: the remark of the updated record and the name of one created record
    await session.execute(update(t).where(t.c.id == old["id"]).values(remark="后来改的"))
    kept = await person(session, pid(42, "2"))
    await session.execute(update(t).where(t.c.id == kept["id"]).values(name="新人乙改"))
    r = await client.post(f"/api/v1/imports/{out['id']}/undo", headers=world.a)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "undone" and body["deleted"] == 1 and body["restored"] == 1
    assert sorted((c["row"], c["field"]) for c in body["conflicts"]) == [(2, "remark"), (4, "name")]
    old = await person(session, pid(40))
    assert old["phone"] == "13900000000"  # restored
    assert old["remark"] == "后来改的"  # the conflict is not overwritten
    assert await person(session, pid(41)) is None  # created and untouched: removed
    assert (await person(session, pid(42, "2")))["name"] == "新人乙改"
    again = await client.post(f"/api/v1/imports/{out['id']}/undo", headers=world.a)
    assert again.status_code == 409


async def test_saved_mapping_next_month(client, session, area):
    """C1-9: a column the clerk mapped by hand maps itself in next month's file of the same form."""
    world = area
    headers = ["姓名", "公民身份号码", "现居住标准地址", "村级登记号码"]
    content = sheet([["王伟", pid(50), ADDR_A, "13800000050"]], headers)
    b = await upload(client, world.a, content, name="2026年10月临江镇人口台账.csv")
    col = next(m for m in b["mapping"] if m["header"] == "村级登记号码")
    assert col["field"] is None and col["how"] == "unknown"
    r = await client.put(
        f"/api/v1/imports/{b['id']}/mapping", headers=world.a, json={"columns": {str(col["index"]): "phone"}}
    )
    assert r.status_code == 200, r.text
    bid = b["id"]
    await client.post(f"/api/v1/imports/{bid}/dry-run", headers=world.a)
    await client.post(f"/api/v1/imports/{bid}/submit", headers=world.a)
    await client.post(f"/api/v1/imports/{bid}/approve", headers=world.admin)
    assert (await client.post(f"/api/v1/imports/{bid}/commit", headers=world.a)).json()[
        "status"
    ] == "committed"
    assert (await person(session, pid(50)))["phone"] == "13800000050"
    nxt = await upload(
        client,
        world.a,
        sheet([["李娜", pid(51, "2"), ADDR_A, "13800000051"]], headers),
        name="2026年11月临江镇人口台账.csv",
    )
    col = next(m for m in nxt["mapping"] if m["header"] == "村级登记号码")
    assert (col["field"], col["how"]) == ("phone", "saved")
    other = await upload(
        client,
        world.a,
        sheet([["李娜", pid(51, "2"), ADDR_A, "13800000051"]], headers),
        name="残疾人走访表.csv",
    )
    assert next(m for m in other["mapping"] if m["header"] == "村级登记号码")["field"] is None


async def test_households_from_the_sheet(client, session, area):
    """户号 + 与户主关系: one household per number in the village, members linked with their relation,
    the head's address as the house; a household without a head is a row error."""
    world = area
    headers = [*HEADERS[:6], "户号", "与户主关系"]
    content = sheet(
        [
            [1, "王伟", pid(60), "男", None, ADDR_A, "23", "户主"],
            [2, "李娜", pid(61, "2"), "女", None, ADDR_A, "23", "配偶"],
            [3, "王小", pid(62), "男", None, ADDR_A, "0023", "儿子"],
            [4, "赵六", pid(63), "男", None, ADDR_A, "24", "子"],
        ],
        headers,
    )
    out = await run(client, world, content)
    c = out["counts"]
    assert c["created"] == 3 and c["errors"] == 1 and c["households_created"] == 1 and c["member_links"] == 3
    assert c["houses_created"] == 1
    hh = tables().ledgers["household"]
    row = (
        await session.execute(select(hh.c.id, hh.c.region_code).where(hh.c.household_no == VILLAGE + "0023"))
    ).one()
    assert row.region_code == VILLAGE
    m = tables().relations["household_member"]
    rels = dict(
        (
            await session.execute(
                select(m.c.from_id, m.c.relation_to_head).where(m.c.to_id == row.id, m.c.deleted_at.is_(None))
            )
        ).all()
    )
    ids = {(await person(session, p))["id"]: p for p in (pid(60), pid(61, "2"), pid(62))}
    assert sorted(rels.values()) == ["01", "02", "10"] and set(rels) == set(ids)
    hh_house = tables().relations["household_house"]
    house_id = (
        await session.execute(select(hh_house.c.to_id).where(hh_house.c.from_id == row.id))
    ).scalar_one()
    house = tables().ledgers["house"]
    assert (
        await session.execute(select(house.c.standard_address).where(house.c.id == house_id))
    ).scalar() == ADDR_A
    err = (await rows_of(client, world, out["id"], "error"))[0]
    assert err["row"] == 5 and any(i["code"] == "household.head" for i in err["issues"])
    # undo removes the links, the household and the house made for it
    r = await client.post(f"/api/v1/imports/{out['id']}/undo", headers=world.a)
    assert r.json()["undo_households_removed"] == 1 and r.json()["undo_houses_removed"] == 1
    assert (
        await session.execute(
            select(func.count()).select_from(m).where(m.c.to_id == row.id, m.c.deleted_at.is_(None))
        )
    ).scalar() == 0


async def test_rejects_download(client, session, area):
    """The rejects come back as an XLSX with the sheet's header, the row as typed and the reason."""
    world = area
    content = sheet(
        [
            [1, "王伟", pid(70), "男", None, ADDR_A, None, None],
            [2, "赵敏", "500118196001019990", "女", None, ADDR_A, None, None],
        ]
    )
    out = await run(client, world, content, commit=False)
    r = await client.get(f"/api/v1/imports/{out['id']}/rejects.xlsx", headers=world.a)
    assert r.status_code == 200
    grid = CalamineWorkbook.from_filelike(io.BytesIO(r.content)).get_sheet_by_index(0).to_python()
    assert grid[0][: len(HEADERS)] == HEADERS and grid[0][-2:] == ["原行号", "问题说明"]
    assert len(grid) == 2 and grid[1][2] == "500118196001019990" and int(grid[1][-2]) == 3
    assert "公民身份号码" in grid[1][-1]
    assert (await client.get(f"/api/v1/imports/{out['id']}/rejects.xlsx", headers=world.b)).status_code == 404


async def test_upload_size_cap_before_reading(settings, sessionmaker, area):
    """The body is refused by the input guard (413) before the endpoint reads it; below the cap it is read."""
    import httpx

    from app.main import create_app

    world = area
    small = create_app(settings.model_copy(update={"max_import_bytes": 2000}), manage_engine=False)
    small.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=small, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        big = sheet([[i, "王伟", pid(80 + i), "男", None, ADDR_A, None, "x" * 40] for i in range(60)])
        r = await c.post(
            "/api/v1/imports",
            headers=world.a,
            files={"file": ("big.csv", big, "text/csv")},
            data={"ledger": "person", "township": A},
        )
        assert r.status_code == 413 and r.json()["code"] == "request.too_large"
        ok = sheet([[1, "王伟", pid(80), "男", None, ADDR_A, None, None]])
        r = await c.post(
            "/api/v1/imports",
            headers=world.a,
            files={"file": ("ok.csv", ok, "text/csv")},
            data={"ledger": "person", "township": A},
        )
        assert r.status_code == 201, r.text


async def test_upload_refusals(client, area):
    """Another township's code, a file that is not a sheet, an unknown ledger: problem+json with codes."""
    world = area
    ok = sheet([[1, "王伟", pid(90), "男", None, ADDR_A, None, None]])
    r = await client.post(
        "/api/v1/imports",
        headers=world.a,
        files={"file": ("a.csv", ok, "text/csv")},
        data={"ledger": "person", "township": B},
    )
    assert r.status_code == 403 and r.json()["code"] == "import.township_forbidden"
    r = await client.post(
        "/api/v1/imports",
        headers=world.a,
        files={"file": ("a.txt", ok, "text/plain")},
        data={"ledger": "person", "township": A},
    )
    assert r.status_code == 422 and r.json()["code"] == "import.file_type"
    r = await client.post(
        "/api/v1/imports",
        headers=world.a,
        files={"file": ("a.csv", ok, "text/csv")},
        data={"ledger": "nope", "township": A},
    )
    assert r.status_code == 404 and r.json()["code"] == "ledger.not_found"


async def test_progress_of_a_running_job(client, session, area):
    """While a dry run runs, GET /imports/{id} shows its phase, rows done of total, rows/s; after it, none."""
    from app.imports import jobs
    from app.imports.cli import user_principal

    world = area
    b = await upload(
        client,
        world.a,
        sheet([[i, f"王{i}", pid(100 + i), "男", None, ADDR_A, None, None] for i in range(1, 31)]),
    )
    seen: list[dict[str, Any]] = []

    def watch(phase: str, done: int, total: int) -> None:
        got = jobs.summary_progress(b["id"])
        assert got is not None
        seen.append(got)

    ta = await user_principal(session, "ta")
    await jobs.dry_run(session, ta, b["id"], watch)
    convert = [p for p in seen if p["phase"] == "convert"]
    assert convert and convert[-1]["done"] == convert[-1]["total"] == 30
    assert all("rows_per_second" in p and "eta_seconds" in p for p in seen)
    after = (await client.get(f"/api/v1/imports/{b['id']}", headers=world.a)).json()
    assert after["progress"] is None and after["status"] == "dry_run"
