#!/usr/bin/env bash
# The local operations stack in one command:
#   scripts/stack.sh up      MongoDB (local, unless JOBSIM_MONGO__URI is set), Prefect server,
#                            work pool `jobsim` (process), writer limit, all deployments, a worker
#   scripts/stack.sh down    stop what `up` started, by the PIDs kept in .jobsim/stack/
#   scripts/stack.sh status  what runs, where (the address `up` recorded in $STACK_DIR/stack.json)
# Knobs (environment): JOBSIM_STACK_DIR (default .jobsim/stack), PREFECT_SERVER_PORT (4200),
# PREFECT_SERVER_HOST (127.0.0.1); every JOBSIM_* setting reaches the flows through the worker.
# MongoDB: JOBSIM_MONGO__URI if set, else the local server recorded in .jobsim/local.json (the
# demo's, with its database), started by `jobsim db start` when none runs; the flows find it
# through that record (their working directory is this folder).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
STACK_DIR="${JOBSIM_STACK_DIR:-$ROOT/.jobsim/stack}"
RECORD="$STACK_DIR/stack.json"
HOST="${PREFECT_SERVER_HOST:-127.0.0.1}"
PORT="${PREFECT_SERVER_PORT:-4200}"
server_pid_alive() { [ -f "$STACK_DIR/server.pid" ] && kill -0 "$(cat "$STACK_DIR/server.pid")" 2>/dev/null; }
# where `up` started the server (status, down, and an `up` that finds it still running)
if [ -f "$RECORD" ] && [ -x .venv/bin/python ] && { [ "${1:-}" != up ] || server_pid_alive; }; then
  read -r HOST PORT < <(.venv/bin/python -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["host"], d["port"])' "$RECORD")
fi
POOL=jobsim  # = work_pool.name in prefect.yaml
PY="$ROOT/.venv/bin/python"
PREFECT="$ROOT/.venv/bin/prefect"

export PREFECT_HOME="$STACK_DIR/prefect"
export PREFECT_API_URL="http://$HOST:$PORT/api" PREFECT_UI_API_URL="http://$HOST:$PORT/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 PREFECT_LOGGING_EXTRA_LOGGERS=jobsim

alive() {  # name: its recorded process runs (an exited, unreaped zombie does not count)
  local pid
  [ -f "$STACK_DIR/$1.pid" ] || return 1
  pid="$(cat "$STACK_DIR/$1.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}

start_bg() {  # name, command...: own session (so `down` can stop its children), pid kept
  local name="$1"; shift
  setsid "$@" >"$STACK_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$STACK_DIR/$name.pid"
}

signal() {  # name, signal: to the process group started by start_bg (the process if no group)
  local pid
  [ -f "$STACK_DIR/$1.pid" ] || return 0
  pid="$(cat "$STACK_DIR/$1.pid")"
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$2" -- "-$pid" 2>/dev/null || kill "-$2" "$pid" 2>/dev/null || true
}

wait_gone() {  # seconds, names...: wait until none of them runs; false if some still do
  local tries=$(( $1 * 2 )) name left; shift
  for _ in $(seq 1 "$tries"); do
    left=0
    for name in "$@"; do alive "$name" && left=1; done
    [ "$left" = 0 ] && return 0
    sleep 0.5
  done
  return 1
}

stop_all() {  # names...: TERM all at once; a second interrupt after 5 s (a Prefect worker that
  # ran flows can hang on its first one; its second one ends it); KILL what is left after 15 s
  local name
  for name in "$@"; do signal "$name" TERM; done
  if ! wait_gone 5 "$@"; then
    for name in "$@"; do alive "$name" && signal "$name" INT; done
    wait_gone 10 "$@" || true
  fi
  for name in "$@"; do
    if alive "$name"; then signal "$name" KILL; echo "killed $name (pid $(cat "$STACK_DIR/$name.pid"))";
    elif [ -f "$STACK_DIR/$name.pid" ]; then echo "stopped $name (pid $(cat "$STACK_DIR/$name.pid"))"; fi
    rm -f "$STACK_DIR/$name.pid"
  done
}

healthy() { "$PY" - "$PREFECT_API_URL/health" <<'EOF'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

up() {
  bash scripts/setup.sh
  mkdir -p "$STACK_DIR" "$PREFECT_HOME"
  if [ -z "${JOBSIM_MONGO__URI:-}" ]; then
    # the local server of .jobsim/local.json (the demo's, say) is used and left running; else one
    # starts (and `down` stops it). Not exported: the flows read the record, as every command does.
    local out
    out="$(.venv/bin/jobsim db start)" || exit 1
    echo "$out" | head -1
    case "$out" in "local MongoDB started"*) echo started >"$STACK_DIR/mongo.started" ;; esac
  fi
  "$PY" -m jobsim_app.stackinfo mongo
  if alive server; then
    echo "Prefect server already running (pid $(cat "$STACK_DIR/server.pid"))"
  else
    start_bg server "$PREFECT" server start --host "$HOST" --port "$PORT"
    echo -n "starting Prefect server on $HOST:$PORT "
    for _ in $(seq 1 360); do healthy && break; alive server || break; echo -n .; sleep 0.5; done
    echo
    healthy || { echo "Prefect server did not start; see $STACK_DIR/server.log" >&2; tail -20 "$STACK_DIR/server.log" >&2; exit 1; }
  fi
  "$PY" -c 'import json, sys; json.dump(dict(host=sys.argv[1], port=int(sys.argv[2]), api=sys.argv[3], prefect_home=sys.argv[4]), open(sys.argv[5], "w"))' \
    "$HOST" "$PORT" "$PREFECT_API_URL" "$PREFECT_HOME" "$RECORD"
  "$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1 || "$PREFECT" work-pool create "$POOL" --type process >/dev/null
  # jobsim's settings decide the schedules and the shared writer limit; prefect.yaml reads them here.
  eval "$("$PY" - <<'EOF'
import shlex
from jobsim.settings import Settings
o = Settings().ops
for k, v in {"JOBSIM_DEPLOY_INCREMENTAL_RRULE": f"FREQ=MINUTELY;INTERVAL={o.incremental_interval_minutes}",
             "JOBSIM_OPS__FULL_REBUILD_CRON": o.full_rebuild_cron,
             "JOBSIM_OPS__FULL_REBUILD_TIMEZONE": o.full_rebuild_timezone,
             "JOBSIM_OPS__WRITER_LIMIT": o.writer_limit}.items():
    print(f"export {k}={shlex.quote(str(v))}")
EOF
)"
  if [ -n "$JOBSIM_OPS__WRITER_LIMIT" ]; then
    "$PREFECT" gcl inspect "$JOBSIM_OPS__WRITER_LIMIT" >/dev/null 2>&1 ||
      "$PREFECT" gcl create "$JOBSIM_OPS__WRITER_LIMIT" --limit 1 >/dev/null
  fi
  echo "deploying prefect.yaml ..."
  PWD="$ROOT" "$PREFECT" --no-prompt deploy --all >"$STACK_DIR/deploy.log" 2>&1 ||
    { tail -30 "$STACK_DIR/deploy.log" >&2; exit 1; }
  echo "deployed: $(grep -c '^  - name:' prefect.yaml) deployments (log: $STACK_DIR/deploy.log)"
  if alive worker; then
    echo "worker already running (pid $(cat "$STACK_DIR/worker.pid"))"
  else
    start_bg worker "$PREFECT" worker start --pool "$POOL" --type process
    echo "worker started (pid $(cat "$STACK_DIR/worker.pid"), log $STACK_DIR/worker.log)"
  fi
  echo "Prefect UI: http://$HOST:$PORT  (runs: /runs, deployments: /deployments, artifacts: /artifacts)"
  echo "CLI env:    export PREFECT_HOME=$PREFECT_HOME PREFECT_API_URL=$PREFECT_API_URL"
  local mongo_env
  mongo_env="$(env | grep -o '^JOBSIM_MONGO__[A-Z_]*' | sort | tr '\n' ' ' || true)"
  if [ -n "$mongo_env" ]; then
    echo "            and keep ${mongo_env% } as set here (the worker's flows use them)"
  else
    echo "            (MongoDB: jobsim commands run in $ROOT find it in .jobsim/local.json)"
  fi
  echo "stop with:  scripts/stack.sh down"
}

down() {
  stop_all worker server
  rm -f "$RECORD"
  if [ -f "$STACK_DIR/mongo.started" ]; then
    .venv/bin/jobsim db stop
    rm -f "$STACK_DIR/mongo.started"
  fi
}

status() {
  for name in server worker; do
    if alive "$name"; then echo "$name: running (pid $(cat "$STACK_DIR/$name.pid"))"; else echo "$name: stopped"; fi
  done
  if healthy; then echo "Prefect API: $PREFECT_API_URL (healthy)"; else echo "Prefect API: $PREFECT_API_URL (not answering)"; fi
  if [ -x "$PY" ]; then "$PY" -m jobsim_app.stackinfo mongo; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
