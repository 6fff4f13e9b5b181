#!/usr/bin/env bash
# One command: install everything, then run the whole test suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== install (scripts/setup.sh)"
bash scripts/setup.sh
# the browser check (tests/test_browser.py) needs Debian's headless-capable chromium
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log=$(mktemp)
    echo "== installing Debian's chromium through apt-get for the browser check (tests/test_browser.py);"
    echo "   a few hundred MB, a minute or two (log: $log)"
    echo "  ... apt-get update"
    apt-get update >"$log" 2>&1 || { tail -20 "$log"; echo "apt-get update failed" >&2; exit 1; }
    echo "  ... apt-get install chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >>"$log" 2>&1 &
    pid=$!
    started=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
      sleep 10
      kill -0 "$pid" 2>/dev/null && echo "  ... $(grep -E '^(Get|Unpacking|Setting up)' "$log" | tail -1 | cut -c1-80) ($(( SECONDS - started )) s)"
    done
    wait "$pid" || { tail -20 "$log"; echo "apt-get install chromium failed" >&2; exit 1; }
    echo "  chromium installed: $(chromium --version 2>/dev/null || echo '?')"
  else
    echo "note: chromium is not installed; the browser check will be skipped (apt-get install chromium)" >&2
  fi
fi
echo "== tests (pytest $*)"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
exec .venv/bin/python -m pytest "$@"
