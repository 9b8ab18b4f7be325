#!/usr/bin/env bash
# The whole test suite, gate by gate: ruff; mypy --strict ([tool.mypy] packages, then
# scripts/gen_protos.py); import contracts (lint-imports, [tool.importlinter]); pytest
# over tests/.
# Stops at the first failing gate. Extra arguments go to pytest, e.g.
#   ./scripts/test.sh -k wire -x
# Run ./scripts/install.sh first (it creates .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv/bin
if [ ! -x "$VENV/python" ]; then
  echo "test.sh: $VENV/python missing; run ./scripts/install.sh first" >&2
  exit 2
fi

gate() {
  local name=$1
  shift
  echo "==> $name"
  if ! "$@"; then
    echo "test.sh: FAILED at gate '$name' ($*)" >&2
    exit 1
  fi
}

gate "ruff check" "$VENV/ruff" check .
gate "mypy" "$VENV/mypy"
gate "mypy scripts" "$VENV/mypy" scripts/gen_protos.py
gate "lint-imports" "$VENV/lint-imports"
gate "pytest" "$VENV/pytest" -q -p no:cacheprovider "$@"
echo "test.sh: all gates passed"
