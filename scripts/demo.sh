#!/usr/bin/env bash
# One command: install, start a local MongoDB-compatible server, load sample data,
# run the similarity-refresh flow end to end with the offline embedder, print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p .jobsim/prefect
export PREFECT_HOME="$PWD/.jobsim/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90 PREFECT_LOGGING_EXTRA_LOGGERS=jobsim
exec .venv/bin/jobsim demo "$@"
