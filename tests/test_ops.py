"""Ops: the run report (pure), the admin repository methods and the admin flows."""

from __future__ import annotations

import asyncio
import base64
import random
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from jobsim.report import counts_rows, histogram_of, histogram_svg, report_markdown, run_failures
from jobsim.repositories import JobList, Neighbour
from storage import repositories
from tests.helpers import seed_jobs

SUMMARY = {
    "run_id": "r1", "mode": "incremental", "seen": 12, "valid": 9, "inactive": {"expired": 1},
    "rejected": 2, "rejected_reasons": {"description too short": 2}, "embedded": 8, "reused": 0,
    "failed": 1, "failed_reasons": {"HTTP 400": 1}, "requests": 3, "tokens": 1234, "cost_usd": 0.0000247,
    "active_vectors": 8, "lists_written": 7, "lists_cleared": 1, "lists_unchanged": 0,
    "timings": {"pull": 0.5, "embed": 1.5},
}


def mark_processing(db, keys: list[str], at: datetime) -> None:
    """The state earlier versions left on jobs being embedded (housekeeping still resets it)."""
    from storage.ids import to_mongo_ids

    db.jobs.update_many({"_id": {"$in": to_mongo_ids(keys)}},
                        {"$set": {"embedding.status": "processing", "embedding.startedAt": at}})


# -- report (pure) ---------------------------------------------------------------
def test_histogram_counts_every_score_like_brute_force():
    rng = random.Random(5)
    lists = {f"j{i}": JobList(tuple(Neighbour(f"o{k}", round(rng.random(), 2)) for k in range(rng.randint(0, 10))))
             for i in range(300)}
    empty = sum(1 for v in lists.values() if not v.items)
    hist = histogram_of(np.array([n.score for v in lists.values() for n in v.items]), len(lists), empty, bins=10)
    expected = [0] * 10
    for job_list in lists.values():
        for n in job_list.items:
            expected[min(int(n.score * 10 + 1e-9), 9)] += 1
    assert hist.counts == expected
    assert hist.lists == 300 and hist.empty == empty
    assert hist.edges[0] == 0.0 and hist.edges[-1] == 1.0 and len(hist.edges) == 11


def test_plot_is_an_svg_data_uri_with_one_bar_per_bin():
    hist = histogram_of(np.array([0.91, 0.45, 0.91]), 3, 1, bins=20)
    markdown = report_markdown(SUMMARY, hist)
    uri = re.search(r"!\[score distribution\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert uri, markdown
    svg = base64.b64decode(uri.group(1)).decode()
    assert svg == histogram_svg(hist) and svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('fill="#2a6fdb"') == 20
    assert "3 scores over 3 lists, 1 empty" in svg


def test_report_lists_counts_cost_timings_and_failures():
    failed = run_failures({"x1": "Nurse | night", "s:x2": "T", "x3": None}, {"s:x2": ("description too short",)},
                          {"x1": "HTTP 400 bad input"}, {"x3": "MongoDB refused the write: document would exceed 16 MB"},
                          {}, limit=10)
    md = report_markdown(SUMMARY, None, failed, search={"mode": "ann", "recall_at_10": 0.973, "recall_sample": 500},
                         context={"import_id": "imp-1", "rows": 12})
    for text in ("| rejected: description too short | 2 |", "| failed: HTTP 400 | 1 |", "| tokens | 1,234 |",
                 "cost **$0.0000**", "| embed | 1.5 | 75% |", "| ANN recall@10 | 0.973 |", "| import_id | imp-1 |",
                 "| x1 | Nurse \\| night | failed | HTTP 400 bad input |",
                 "| x2 | T | rejected | invalid: description too short |", "| x3 |  | refused | MongoDB refused"):
        assert text in md, text
    assert "Score distribution" not in md  # no lists given: no plot section


def test_report_tolerates_a_minimal_summary():
    md = report_markdown({"run_id": "r", "mode": "full"})
    assert "similarity refresh `full`" in md
    assert "Neighbour search" not in md and "Timings" not in md
    rows = counts_rows({"mode": "full", "seen": 0})
    assert rows == [{"metric": "mode", "value": "full"}, {"metric": "jobs seen", "value": 0},
                    {"metric": "inactive (skipped)", "value": 0}]


# -- admin repository methods ---------------------------------------------------------
def test_reset_failed_attempts_spares_rejected_jobs(settings, db):
    seed_jobs(settings, 6)
    jobs = repositories(settings).jobs
    ids = [str(d["_id"]) for d in db.jobs.find({}, {"_id": 1}).sort("_id", 1)]
    now = datetime.now(timezone.utc)
    jobs.mark_failed({ids[0]: ("HTTP 500", 1), ids[1]: ("timeout", 1)}, now)
    jobs.mark_rejected({ids[2]: "invalid: no title"}, now)
    assert jobs.reset_failed_attempts([ids[1], ids[2]]) == 1
    state = {str(d["_id"]): d["embedding"] for d in db.jobs.find({})}
    assert state[ids[0]]["status"] == "failed" and state[ids[0]]["attempts"] == 1
    assert state[ids[1]]["status"] == "pending" and state[ids[1]]["attempts"] == 0
    assert state[ids[2]]["status"] == "failed" and state[ids[2]]["rejected"] is True
    assert jobs.reset_failed_attempts() == 1  # every remaining non-rejected failure


def test_reset_stale_processing_and_old_runs(settings, db):
    seed_jobs(settings, 4)
    repos = repositories(settings)
    ids = [str(d["_id"]) for d in db.jobs.find({}, {"_id": 1}).sort("_id", 1)]
    now = datetime.now(timezone.utc)
    mark_processing(db, ids[:2], now - timedelta(hours=3))
    mark_processing(db, ids[2:3], now)
    assert repos.jobs.reset_stale_processing(now - timedelta(minutes=60)) == 2
    status = {str(d["_id"]): d["embedding"]["status"] for d in db.jobs.find({})}
    assert [status[i] for i in ids] == ["pending", "pending", "processing", "pending"]
    repos.state.start_run("old", "incremental", now - timedelta(days=40), {})
    repos.state.start_run("new", "incremental", now - timedelta(days=1), {})
    repos.state.set_watermark(now - timedelta(days=50), "old")
    assert repos.state.delete_runs_before(now - timedelta(days=30)) == 1
    assert [r["runId"] for r in repos.state.recent_runs()] == ["new"]
    assert repos.state.watermark() is not None


# -- admin flows (real Prefect, real MongoDB) ---------------------------------------------
@pytest.fixture
def flows_env(settings, prefect_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("JOBSIM_NEIGHBOURS__STATE_DIR", str(tmp_path / "state"))
    return settings


def test_retry_failed_embeddings_gives_exhausted_jobs_new_attempts(flows_env, db):
    from flows.ops import retry_failed_embeddings
    from flows.refresh import similarity_refresh

    settings = flows_env
    seed_jobs(settings, 40)
    # edited long ago: the next incremental run's overlap window does not re-read them
    db.jobs.update_many({}, {"$set": {"updatedAt": datetime.now(timezone.utc) - timedelta(days=1)}})
    first = asyncio.run(similarity_refresh(mode="incremental"))
    keys = [d["_id"] for d in db.jobs.find({"embedding.status": "completed"}, {"_id": 1}).limit(3)]
    exhausted = {"embedding.status": "failed", "embedding.error": "HTTP 500", "embedding.attempts": 3}
    db.jobs.update_many({"_id": {"$in": keys}}, {"$set": exhausted})
    db.job_embeddings.delete_many({"_id": {"$in": keys}})
    second = asyncio.run(similarity_refresh(mode="incremental"))  # attempts used up: left alone
    assert second["embedded"] == 0
    assert db.jobs.count_documents({"embedding.status": "failed", "embedding.rejected": {"$ne": True}}) == 3
    result = asyncio.run(retry_failed_embeddings())
    assert result["reset_failed"] == 3 and result["embedded"] == 3
    assert db.jobs.count_documents({"embedding.status": "failed", "embedding.rejected": {"$ne": True}}) == 0
    assert first["valid"] > 30


def test_recompute_jobs_rechecks_requested_jobs_and_clears_requests(flows_env, db):
    from flows.ops import recompute_jobs
    from flows.refresh import similarity_refresh
    from storage.recompute_requests import RecomputeRequestsRepository

    settings = flows_env
    seed_jobs(settings, 40)
    db.jobs.update_many({}, {"$set": {"updatedAt": datetime.now(timezone.utc) - timedelta(days=1)}})
    asyncio.run(similarity_refresh(mode="incremental"))
    # two jobs lose their vectors behind the pipeline's back: no incremental run re-checks them
    victims = list(db.jobs.find({"embedding.status": "completed", "similarJobs.0": {"$exists": True}}).limit(2))
    db.job_embeddings.delete_many({"_id": {"$in": [v["_id"] for v in victims]}})
    assert asyncio.run(similarity_refresh(mode="incremental"))["embedded"] == 0  # an incremental run does not notice
    requests = RecomputeRequestsRepository(db, settings.api.recompute_collection)
    requests.request(victims[1]["_id"], "few live neighbours", 1, 10, datetime.now(timezone.utc))
    result = asyncio.run(recompute_jobs(job_ids=[str(victims[0]["_id"])]))
    assert result["embedded"] == 2
    assert db.job_embeddings.count_documents({"_id": {"$in": [v["_id"] for v in victims]}}) == 2
    assert all(db.jobs.find_one({"_id": v["_id"]})["similarJobs"] for v in victims)
    assert requests.pending() == {}


def test_admin_flows_validate_parameters(flows_env):
    from prefect.exceptions import ParameterTypeError

    from flows.ops import housekeeping, recompute_jobs

    with pytest.raises(ParameterTypeError):
        asyncio.run(recompute_jobs(job_ids=["not an id; drop"]))
    with pytest.raises(ParameterTypeError):
        asyncio.run(housekeeping(stale_processing_minutes=0))


def test_housekeeping_flow(flows_env, db):
    from flows.ops import housekeeping

    settings = flows_env
    seed_jobs(settings, 5)
    repos = repositories(settings)
    now = datetime.now(timezone.utc)
    ids = [str(d["_id"]) for d in db.jobs.find({}, {"_id": 1})]
    mark_processing(db, ids[:2], now - timedelta(minutes=90))
    repos.state.start_run("ancient", "full", now - timedelta(days=100), {})
    result = asyncio.run(housekeeping(stale_processing_minutes=30))
    assert result == {"stale_processing_reset": 2, "run_records_deleted": 1}
    assert db.jobs.count_documents({"embedding.status": "processing"}) == 0
