"""Publish each run's report as Prefect artifacts (the dashboard of the Prefect UI)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from jobsim.report import Histogram, counts_rows, report_markdown
from tasks.common import PURE_TASK

REPORT_KEY = "jobsim-run-report"
COUNTS_KEY = "jobsim-run-counts"


@task(name="publish-run-report", **PURE_TASK)
def publish_run_report(
    summary: dict[str, Any],
    hist: Histogram | None,
    search: dict[str, Any] | None,
    failed_jobs: list[dict[str, Any]],
    context: dict[str, Any] | None = None,
) -> None:
    """A table artifact of the counts and a markdown report with the score-distribution plot."""
    mode = summary.get("mode", "?")
    create_table_artifact(counts_rows(summary), key=COUNTS_KEY,
                          description=f"similarity refresh ({mode}): counts")
    create_markdown_artifact(report_markdown(summary, hist, failed_jobs, search, context), key=REPORT_KEY,
                             description=f"similarity refresh ({mode}): counts, cost, timings, scores, failures")
    get_run_logger().info("published run report artifacts (%s, %s)", REPORT_KEY, COUNTS_KEY)
