"""Generated contracts in schemas/: openapi.json (and schema.graphql once app.graphql.schema exists).

`onetable schemas export` writes them; tests/test_schemas.py fails when the committed files drift
from what the code generates. Rendering is deterministic: sorted keys, indent 2, UTF-8 kept as is,
a trailing newline, and default settings (environment variables do not leak into the contract).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = ROOT / "schemas"
OPENAPI_FILE = "openapi.json"
GRAPHQL_FILE = "schema.graphql"
GRAPHQL_MODULE = "app.graphql.schema"


def render_openapi() -> str:
    """The OpenAPI document of create_app() with default settings, as committed."""
    from app.config import Settings
    from app.main import create_app

    # model_construct: the declared defaults only, no ONETABLE_* variables or .env file. demo=True
    # only lets create_app start without a secret key; it does not change the document.
    app = create_app(Settings.model_construct(demo=True), manage_engine=False)
    return json.dumps(app.openapi(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def graphql_available() -> bool:
    try:
        return importlib.util.find_spec(GRAPHQL_MODULE) is not None
    except ModuleNotFoundError:
        return False


def render_graphql() -> str | None:
    """The GraphQL SDL of app.graphql.schema.schema, or None while there is no GraphQL schema."""
    if not graphql_available():
        return None
    module = importlib.import_module(GRAPHQL_MODULE)
    schema = getattr(module, "schema", None)
    if schema is None:
        return None
    sdl = schema.as_str() if hasattr(schema, "as_str") else str(schema)
    return sdl.rstrip("\n") + "\n"


def rendered() -> dict[str, str]:
    """File name -> content of every contract the code currently generates."""
    out = {OPENAPI_FILE: render_openapi()}
    sdl = render_graphql()
    if sdl is not None:
        out[GRAPHQL_FILE] = sdl
    return out


def export_schemas(out_dir: Path | str = SCHEMAS_DIR) -> dict[Path, bool]:
    """Write the contracts into out_dir; returns path -> whether its content changed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[Path, bool] = {}
    for name, text in rendered().items():
        path = out_dir / name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != text:
            path.write_text(text, encoding="utf-8", newline="\n")
        result[path] = old != text
    return result
