"""The service serves the web UI: history-mode fallback to index.html, hashed assets, and never in the
way of the API, GraphQL or the docs (their unknown paths stay 404 problems)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><div id="app"></div><script src="/assets/app-1.js"></script>',
                                         encoding="utf-8")
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)", encoding="utf-8")
    (tmp_path / "favicon.ico").write_bytes(b"ico")
    return tmp_path


def client_for(settings, sessionmaker, web_dir: Path) -> httpx.AsyncClient:
    app = create_app(settings.model_copy(update={"web_dir": web_dir}), manage_engine=False)
    app.state.sessionmaker = sessionmaker
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_history_fallback_and_assets(settings, sessionmaker, dist):
    async with client_for(settings, sessionmaker, dist) as c:
        for path in ("/", "/tasks/12", "/ledgers?q=x", "/login"):
            r = await c.get(path)
            assert r.status_code == 200, path
            assert '<div id="app">' in r.text and r.headers["cache-control"] == "no-cache"
        r = await c.get("/assets/app-1.js")
        assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        assert (await c.get("/favicon.ico")).content == b"ico"
        assert (await c.get("/assets/missing.js")).status_code == 404
        # The service's own paths are never the UI's.
        for path in ("/api/v1/nothing-here", "/api/v1/report-tasks/1/nothing", "/graphql/x", "/static/x.js"):
            r = await c.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"].startswith("application/problem+json"), path
        assert (await c.get("/api/v1/report-tasks")).status_code == 401  # the API answers as before
        assert (await c.post("/api/v1/nothing-here", json={})).status_code == 404
        assert (await c.delete("/api/v1/auth/me")).status_code == 405  # GET-only path: still 405
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        assert (await c.get("/docs")).status_code == 200
        assert "openapi" in (await c.get("/openapi.json")).json()
        # No file outside the build is reachable through the fallback.
        r = await c.get("/..%2Fpyproject.toml")
        assert "[project]" not in r.text


async def test_without_a_build_the_root_says_how_to_make_one(settings, sessionmaker, tmp_path):
    async with client_for(settings, sessionmaker, tmp_path / "none") as c:
        r = await c.get("/")
        assert r.status_code == 200 and "make run" in r.text
        assert (await c.get("/tasks/1")).status_code == 404
        assert (await c.get("/api/v1/report-tasks")).status_code == 401


def test_built_ui_loads_nothing_from_elsewhere():
    """Offline networks: the built HTML and CSS reference only this service (fonts included)."""
    dist = ROOT / "web" / "dist"
    if not (dist / "index.html").is_file():
        pytest.skip("web/dist is not built (make web)")
    html = (dist / "index.html").read_text(encoding="utf-8")
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html), html
    for css in (dist / "assets").glob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), css.name
        assert "@import" not in text, css.name
        assert "@font-face" not in text or "url(http" not in text, css.name
    scripts = " ".join(p.read_text(encoding="utf-8") for p in (dist / "assets").glob("*.js"))
    assert not re.search(r"""import\s*\(?\s*["']https?://""", scripts)
