#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install jobsim with its dev/test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.jobsim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  log=$(mktemp)
  echo "installing jobsim and its dependencies into .venv (about a minute)..."
  if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[dev]"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -40
    echo "setup failed (full log: $log)" >&2
    exit 1
  fi
  .venv/bin/python -c "import jobsim, prefect, faiss, pymongo, polars, openai" 
  touch "$stamp"
fi
