#!/usr/bin/env bash
# The static gates (docs/development.md): ruff lint, ruff format check, mypy on app/.
#   scripts/lint.sh          check only; runs every gate, exits non-zero when any failed
#   scripts/lint.sh --fix    apply the formatter and ruff's safe fixes first, then check
# Uses the project's .venv (VENV=... to point elsewhere); no network.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN="${VENV:-.venv}/bin"
PATHS=(app tests scripts migrations)

fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "usage: scripts/lint.sh [--fix]" >&2; exit 2 ;;
esac

for tool in ruff mypy; do
  [ -x "$BIN/$tool" ] || { echo "error: $BIN/$tool missing: make venv (the lock carries the dev tools)" >&2; exit 2; }
done

if [ "$fix" = 1 ]; then
  "$BIN/ruff" format "${PATHS[@]}"
  "$BIN/ruff" check --fix --quiet "${PATHS[@]}" || true
fi

failed=()
gate() {
  local name="$1"; shift
  printf -- '--- %s\n' "$name"
  if "$@"; then echo "ok: $name"; else failed+=("$name"); fi
}

gate "ruff check" "$BIN/ruff" check "${PATHS[@]}"
gate "ruff format --check" "$BIN/ruff" format --check "${PATHS[@]}"
gate "mypy app" "$BIN/mypy"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "lint failed: ${failed[*]}  (scripts/lint.sh --fix applies the formatter and safe fixes)" >&2
  exit 1
fi
echo "lint passed"
