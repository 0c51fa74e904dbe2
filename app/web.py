"""The web UI (web/, Vue) served by the service itself: every asset from here, no CDN.

/assets/* are Vite's content-hashed files (cached for a year); any other GET that no API route
answered gets index.html, so the UI's history-mode routes (/tasks/12) survive a reload. Paths under
the API, GraphQL, docs and static prefixes never fall back: an unknown API path stays a 404 problem.
Without a build (web/dist missing) / says how to make one instead of a bare 404.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.convertors import Convertor, register_url_convertor

# Prefixes that belong to the service, never to the UI's router.
SERVICE_PREFIXES = ("api/", "graphql", "docs", "static/", "openapi.json", "healthz", "assets/")
_NOT_BUILT = """<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>一表通</title>
<body style="font-family:sans-serif;padding:2em"><h1>一表通</h1>
<p>网页界面尚未构建。请运行 <code>make run</code>（会自动构建），
或在 web/ 下执行 <code>npm ci &amp;&amp; npm run build</code>。</p>
<p>API 文档：<a href="/docs">/docs</a></p></body></html>"""


class _UiPath(Convertor):
    """Any path except the service's own: those never reach the fallback route, so their 404s and
    405s (a POST to a GET-only API path) stay exactly what the API answers."""

    regex = r"(?!(?:" + "|".join(p.replace(".", r"\.") for p in SERVICE_PREFIXES) + r")).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("uipath", _UiPath())


class _Assets(StaticFiles):
    """Hashed file names: a changed file is a new name, so browsers may keep these for good."""

    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install_web(app: FastAPI, dist: Path) -> None:
    """Call after every other route: the fallback only sees paths nothing else answered."""
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount("/assets", _Assets(directory=dist / "assets"), name="web-assets")

    @app.api_route("/{path:uipath}", methods=["GET", "HEAD"], include_in_schema=False)
    def web_ui(request: Request, path: str) -> Response:  # file checks: run in the thread pool
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=200 if path == "" else 404)
        # A top-level file of the build (favicon and the like), else the app shell.
        candidate = (dist / path).resolve()
        if path and "/" not in path and candidate.parent == dist.resolve() and candidate.is_file():
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
