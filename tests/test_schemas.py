"""Drift check: the committed contracts in schemas/ equal what the code generates now.

When this fails, run `onetable schemas export` (or `make schemas`) and commit the result.
"""

from __future__ import annotations

import json

import pytest

from app.schemas_export import GRAPHQL_FILE, OPENAPI_FILE, SCHEMAS_DIR, render_graphql, render_openapi

HINT = (
    "schemas/{name} is out of date with the code. It must be regenerated with "
    "`onetable schemas export` (or `make schemas`) and committed whenever endpoints or schemas change."
)


def _summary(committed: str, fresh: str) -> str:
    """Which paths/operations and component schemas differ, so the failure says what drifted."""
    try:
        old, new = json.loads(committed), json.loads(fresh)
    except ValueError:
        return "the committed file is not valid JSON"
    out = []
    for section, key in (("paths", ("paths",)), ("schemas", ("components", "schemas"))):
        a, b = old, new
        for k in key:
            a, b = (a or {}).get(k, {}), (b or {}).get(k, {})
        added = sorted(set(b) - set(a))
        removed = sorted(set(a) - set(b))
        changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        if added or removed or changed:
            out.append(f"{section}: added {added}, removed {removed}, changed {changed}")
    return "; ".join(out) or "other top-level fields differ (info, tags, formatting)"


def test_openapi_is_current():
    path = SCHEMAS_DIR / OPENAPI_FILE
    hint = HINT.format(name=OPENAPI_FILE)
    assert path.exists(), f"{hint} (the file is missing)"
    committed = path.read_text(encoding="utf-8")
    fresh = render_openapi()
    if committed != fresh:
        pytest.fail(f"{hint}\nDifferences: {_summary(committed, fresh)}", pytrace=False)


def test_graphql_schema_is_current():
    fresh = render_graphql()
    if fresh is None:
        pytest.skip("app.graphql.schema does not exist yet")
    path = SCHEMAS_DIR / GRAPHQL_FILE
    hint = HINT.format(name=GRAPHQL_FILE)
    assert path.exists(), f"{hint} (the file is missing)"
    assert path.read_text(encoding="utf-8") == fresh, hint
