#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install jobsim with its dev/test extras. Idempotent.
# While pip works, a line every 10 s says what it is doing (its full log goes to a file).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$PYTHON" --version 2>&1) ..."
  "$PYTHON" -m venv .venv
fi

pip_phase() {  # log file, first line of this pip call: what pip is doing now, from its last lines
  local last count
  count=$(tail -n +"$2" "$1" | grep -c '^Collecting ' || true)
  last=$(tail -n +"$2" "$1" | grep -E '^(Collecting|Installing collected|Building|Successfully)' | tail -1 || true)
  case "$last" in
    "Installing collected"*) echo "installing $(echo "$last" | tr ',' '\n' | wc -l) packages into .venv (the longest step)" ;;
    Building*) echo "building ${last#Building }" ;;
    Successfully*) echo "finishing" ;;
    *) echo "resolving and downloading packages (${count:-0} so far)" ;;
  esac
}

run_pip() {  # log, args...: `pip install args` in the background, a progress line every 10 s
  local log="$1" started=$SECONDS pid from; shift
  from=$(( $(wc -l <"$log") + 1 ))
  .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off "$@" >>"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && echo "  ... $(pip_phase "$log" "$from") ($(( SECONDS - started )) s)"
  done
  wait "$pid"
}

stamp=.venv/.jobsim-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  log=$(mktemp)
  echo "installing jobsim and its dependencies into .venv (1–3 minutes; log: $log)"
  if ! { run_pip "$log" --upgrade pip &&
         run_pip "$log" -c constraints.txt -e ".[dev]"; }; then
    grep -v "^WARNING: Location" "$log" | tail -40
    echo "setup failed (full log: $log)" >&2
    exit 1
  fi
  echo "checking the install (prefect, faiss, pymongo, polars, openai import) ..."
  .venv/bin/python -c "import jobsim, prefect, faiss, pymongo, polars, openai"
  touch "$stamp"
  echo "installed: $(grep -c '' <(.venv/bin/python -m pip list --format=freeze 2>/dev/null)) packages in .venv"
fi
