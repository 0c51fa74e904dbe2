"""The seed's disability case (B9 / C1-1): 11 legacy forms sent to townships, overlapping headers
(name and ID in every one, with synonyms), 28 distinct items between them."""

from __future__ import annotations

ID = ["身份证号", "身份证号码", "公民身份号码"]
NAME = ["姓名", "名字"]

DISABILITY_FORMS: list[tuple[str, str, str, list[str]]] = [
    (
        "残疾人基本情况统计表",
        "cl",
        "quarterly",
        ["序号", NAME[0], ID[0], "性别", "出生年月", "民族", "残疾类别", "残疾等级", "残疾人证号"],
    ),
    (
        "残疾人证办理情况月报",
        "cl",
        "monthly",
        [NAME[1], ID[1], "残疾证号", "发证日期", "证件有效期至", "残疾类型"],
    ),
    (
        "困难残疾人生活补贴发放表",
        "mzj",
        "monthly",
        [NAME[0], ID[2], "困难残疾人生活补贴", "月补贴金额（元）", "户别"],
    ),
    (
        "重度残疾人护理补贴发放表",
        "mzj",
        "monthly",
        [NAME[0], ID[0], "重度残疾人护理补贴", "月补贴金额（元）", "残疾级别"],
    ),
    (
        "残疾人康复服务台账",
        "cl",
        "quarterly",
        [NAME[0], ID[1], "康复需求", "是否已获康复服务", "辅助器具适配"],
    ),
    (
        "残疾人就业情况统计表",
        "rsj",
        "quarterly",
        [NAME[0], ID[0], "是否就业", "就业状态", "受教育程度"],
    ),
    (
        "残疾人户籍信息核对表",
        "gaj",
        "yearly",
        [NAME[1], ID[2], "户口类型", "户籍所在地", "户口簿户号", "婚姻状况"],
    ),
    ("残疾人居住情况调查表", "zjw", "yearly", [NAME[0], ID[0], "标准地址", "房屋编码", "户籍地址"]),
    (
        "残疾人死亡注销情况表",
        "gaj",
        "monthly",
        [NAME[0], ID[1], "死亡日期", "残疾人证号", "出生日期"],
    ),
    (
        "低收入残疾人家庭情况表",
        "mzj",
        "quarterly",
        [NAME[0], ID[0], "低收入状况", "月补贴金额（元）", "性别"],
    ),
    (
        "残疾人辅具适配与教育情况表",
        "cl",
        "yearly",
        [NAME[0], ID[2], "辅助器具适配", "受教育程度", "民族"],
    ),
]


async def register_forms(client, headers, forms) -> list[int]:
    ids = []
    for name, dept, freq, headers_ in forms:
        r = await client.post(
            "/api/v1/legacy-forms",
            headers=headers,
            json={
                "name": name,
                "department": dept,
                "frequency": freq,
                "level": "district",
                "headers": headers_,
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def go_live_disability(client, world) -> dict:
    """The 11 forms registered, proposed, replaced by the drafted pull-only template and retired."""
    ids = await register_forms(client, world.admin, DISABILITY_FORMS)
    p = (
        await client.post("/api/v1/legacy-forms/proposals", headers=world.admin, json={"form_ids": ids})
    ).json()["items"][0]
    r = await client.post("/api/v1/report-templates", headers=world.dept, json=p["template"])
    assert r.status_code == 201, r.text
    r = await client.post(
        "/api/v1/legacy-forms/go-live",
        headers=world.dept,
        json={"form_ids": ids, "template_id": r.json()["id"], "ledger": "disability"},
    )
    assert r.status_code == 200, r.text
    return p
