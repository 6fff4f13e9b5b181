#!/usr/bin/env bash
# One command: install, start a local MongoDB-compatible server, load sample data,
# run the similarity-refresh flow end to end with the offline embedder, print a summary.
# The server and its database (jobsim_demo) are recorded in .jobsim/local.json, where every
# jobsim command, scripts/stack.sh and the read side find them.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== 1/2 install (scripts/setup.sh)"
bash scripts/setup.sh
echo "== 2/2 demo (.venv/bin/jobsim demo $*)"
mkdir -p .jobsim/prefect
export PREFECT_HOME="$PWD/.jobsim/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PREFECT_LOGGING_EXTRA_LOGGERS=jobsim
exec .venv/bin/jobsim demo "$@"
