"""Item 19: /docs and GraphiQL work on a network without internet; both are off unless asked for."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings

# Every URL a page makes the browser fetch: src=, href=, CSS url(), ES imports.
_REFERENCES = re.compile(
    r"""(?:\b(?:src|href)\s*=\s*["']([^"']+)["'])|(?:url\(\s*["']?([^"')]+))|(?:\bfrom\s+["']([^"']+)["'])"""
)


async def _client_for(settings: Settings, sessionmaker, **overrides) -> httpx.AsyncClient:
    from app.main import create_app

    app = create_app(Settings(**{**settings.model_dump(), **overrides}), manage_engine=False)
    app.state.sessionmaker = sessionmaker
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def docs_client(settings, sessionmaker) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client_for(settings, sessionmaker, expose_docs=True) as c:
        yield c


def _references(html: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _REFERENCES.finditer(html)]


@pytest.mark.parametrize("page", ["/docs", "/graphql"])
async def test_item19_docs_pages_load_every_asset_from_the_service(docs_client, page):
    resp = await docs_client.get(page, headers={"Accept": "text/html"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "http://" not in html and "https://" not in html and "//unpkg" not in html
    refs = [r for r in _references(html) if not r.startswith(("data:", "#"))]
    scripts = [r for r in refs if r.endswith(".js")]
    styles = [r for r in refs if r.endswith(".css")]
    assert scripts and styles, refs  # the page does load its UI, from here
    for ref in refs:
        assert ref.startswith("/"), ref  # same origin, never protocol-relative
        assert not ref.startswith("//"), ref
        asset = await docs_client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
        if ref.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], ref
        if ref.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css"), ref


async def test_item19_swagger_ui_bundle_references_no_remote_validator(docs_client):
    html = (await docs_client.get("/docs")).text
    assert "validatorUrl" in html and "null" in html.split("validatorUrl", 1)[1][:20]


async def test_item19_docs_graphiql_and_introspection_are_off_unless_demo(
    settings, sessionmaker, world, tmp_path, monkeypatch
):
    monkeypatch.delenv("ONETABLE_EXPOSE_DOCS", raising=False)
    monkeypatch.delenv("ONETABLE_DEMO", raising=False)
    introspect = {"query": "{ __schema { queryType { name } } }"}
    production = {k: v for k, v in settings.model_dump().items() if k != "expose_docs"}
    assert Settings(**production).expose_docs is False
    async with await _client_for(Settings(**production), sessionmaker) as c:
        assert (await c.get("/docs")).status_code == 404
        assert (await c.get("/graphql", headers={"Accept": "text/html"})).status_code == 404
        r = await c.post("/graphql", json=introspect, headers=world.a)
        assert r.json()["data"] is None and "introspection" in r.json()["errors"][0]["message"]
        # The API itself still answers.
        r = await c.post("/graphql", json={"query": "{ me { name } }"}, headers=world.a)
        assert r.json()["data"]["me"]["name"]
    demo = Settings(**{**production, "demo": True, "data_dir": tmp_path})
    assert demo.expose_docs is True
    async with await _client_for(demo, sessionmaker) as c:
        assert (await c.get("/docs")).status_code == 200
        assert (await c.get("/graphql", headers={"Accept": "text/html"})).status_code == 200
        r = await c.post("/graphql", json=introspect, headers=world.a)
        assert r.json()["data"]["__schema"]["queryType"]["name"] == "Query"
