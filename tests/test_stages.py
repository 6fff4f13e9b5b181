"""Every stage on the in-memory repositories: fast, no server (the flow itself is tested
end to end against the real MongoDB and Prefect in test_flow_e2e and others)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import numpy as np

from jobsim.embedders import EmbeddingResult
from jobsim.memory import memory_repositories
from jobsim.settings import Settings
from jobsim.stages.embed import embed_batch, plan_embeddings, store_batch
from jobsim.stages.prepare import prepare, record_rejections
from jobsim.stages.pull import add_requested, pull_changed
from jobsim.stages.runs import start_run
from jobsim.synthetic import generate_jobs
from tests.memory_pipeline import MemoryPipeline

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def load(pipeline: MemoryPipeline, n: int, seed: int = 3) -> list[str]:
    keys = []
    for i, doc in enumerate(generate_jobs(n, seed=seed, now=NOW)):
        key = f"s:job-{i:04d}"
        pipeline.repos.jobs.docs[key] = {**doc, "createdAt": NOW - timedelta(days=1),
                                         "updatedAt": NOW - timedelta(hours=1),
                                         "embedding": {"status": "pending", "attempts": 0}}
        keys.append(key)
    return keys


def test_pull_takes_changed_and_unsettled_jobs_only():
    repos = memory_repositories({
        "s:new": {"updatedAt": NOW, "embedding": {"status": "completed"}},
        "s:old": {"updatedAt": NOW - timedelta(days=2), "embedding": {"status": "completed"}},
        "s:pending": {"updatedAt": NOW - timedelta(days=2), "status": "active", "embedding": {"status": "pending"}},
        "s:failed": {"updatedAt": NOW - timedelta(days=2), "embedding": {"status": "failed", "attempts": 1}},
        "s:spent": {"updatedAt": NOW - timedelta(days=2), "embedding": {"status": "failed", "attempts": 3}},
        "s:garbage": {"updatedAt": NOW - timedelta(days=2), "embedding": "garbage"},
    })
    run = start_run(repos.state, "r", "incremental", NOW)
    assert run.since is None and len(pull_changed(repos.jobs, run, 3)) == 6  # first run: all
    repos.state.set_watermark(NOW - timedelta(hours=1), "r")
    run = start_run(repos.state, "r2", "incremental", NOW)
    keys = {d["_id"] for d in pull_changed(repos.jobs, run, 3)}
    assert keys == {"s:new", "s:pending", "s:failed", "s:garbage"}
    docs, missing = add_requested(repos.jobs, [], ["s:old", "s:nope"])
    assert [d["_id"] for d in docs] == ["s:old"] and missing == 1


def test_prepare_and_record_rejections_once():
    pipeline = MemoryPipeline()
    keys = load(pipeline, 60)
    docs = pipeline.repos.jobs.changed_since(None, 3, NOW)
    prepared = prepare(docs, NOW, "m", 64)
    assert len(prepared.jobs) + len(prepared.rejected) + sum(prepared.inactive.values()) == len(keys)
    assert record_rejections(pipeline.repos.jobs, prepared, NOW).written == len(prepared.rejected) > 0
    again = prepare(pipeline.repos.jobs.changed_since(None, 3, NOW), NOW, "m", 64)
    assert record_rejections(pipeline.repos.jobs, again, NOW).written == 0  # same reasons already recorded


class FailingEmbedder:
    """Fails the inputs containing a word, transiently or for good; embeds the rest."""

    model, dimensions = "fake-model", 8

    def __init__(self, word: str, transient: bool) -> None:
        self.word, self.transient = word, transient

    def embed(self, texts):
        vectors = np.eye(len(texts), self.dimensions, dtype=np.float32)
        bad = {i for i, t in enumerate(texts) if self.word in t}
        return EmbeddingResult(vectors=vectors, errors={i: "HTTP 400 (bad input)" for i in bad},
                               transient=bad if self.transient else set())


def test_embed_then_store_marks_each_outcome():
    pipeline = MemoryPipeline()
    load(pipeline, 40)
    jobs = pipeline.repos.jobs
    prepared = prepare(jobs.changed_since(None, 3, NOW), NOW, "fake-model", 8)
    word = prepared.jobs[0].title.split()[0]
    plan = plan_embeddings(jobs, pipeline.repos.embeddings, prepared, "fake-model", NOW, batch_jobs=7)
    assert sum(len(b.ids) for b in plan.batches) == len(prepared.jobs) and max(len(b.ids) for b in plan.batches) == 7
    for transient in (False, True):
        batch = plan.batches[0]
        before = {k: jobs.docs[k]["embedding"].get("attempts", 0) for k in batch.ids}
        snapshot = copy.deepcopy(jobs.docs), dict(pipeline.repos.embeddings.rows)
        done = embed_batch(FailingEmbedder(word, transient), batch)
        assert (jobs.docs, pipeline.repos.embeddings.rows) == snapshot  # the paid call writes nothing
        stats = store_batch(jobs, pipeline.repos.embeddings, done, "fake-model", NOW)
        failed = stats.deferred if transient else list(stats.failed)
        assert failed and stats.embedded == len(batch.ids) - len(failed)
        for key in failed:
            state = jobs.docs[key]["embedding"]
            assert state["status"] == ("pending" if transient else "failed")
            # a failure spends one attempt (counted from the pulled document: a retried store
            # writes the same number); a transient one spends none
            assert state["attempts"] == before[key] + (0 if transient else 1)


def test_runs_on_memory_repositories_converge_and_follow_edits_and_expiry():
    pipeline = MemoryPipeline()
    keys = load(pipeline, 150)
    first = pipeline.run(now=NOW)
    assert first["embedded"] == first["valid"] > 100 and first["lists_written"] > 100
    assert pipeline.run(now=NOW + timedelta(minutes=5))["lists_written"] == 0  # nothing changed
    lists = pipeline.lists()
    victim = next(k for k in keys if k in lists)
    docs = pipeline.repos.jobs.docs
    docs[victim].update(expiresAt=NOW + timedelta(minutes=9), updatedAt=NOW + timedelta(minutes=5))  # an edit
    assert pipeline.run(now=NOW + timedelta(minutes=5, seconds=30))["lists_written"] == 0  # expires later
    assert pipeline.run(now=NOW + timedelta(minutes=8))["seen"] == 1  # re-read once more (watermark overlap)
    later = pipeline.run(now=NOW + timedelta(minutes=10))  # time passed: no edit, nothing pulled
    assert later["seen"] == 0 and pipeline.vector_reads[-1] == 0  # from the snapshot, nothing re-read
    assert later["embedded"] == 0 and later["lists_written"] >= 1
    lists = pipeline.lists()
    assert lists[victim][0]  # expired: it keeps a list of open jobs for its visitors ...
    assert all(victim not in {e[0] for e in items} for items, _ in lists.values())  # ... but left every list
    gone = pipeline.run(now=NOW + timedelta(days=91))  # past the closed-list window: its list is cleared
    assert victim not in pipeline.lists() and gone["lists_cleared"] >= 1
    full = copy.deepcopy(pipeline)
    full.state = None
    assert full.run("full", now=NOW + timedelta(days=91), refit=False)["lists_written"] == 0  # snapshot path exact
    edited = next(k for k in keys if k in pipeline.lists() and k != victim)
    pipeline.repos.jobs.docs[edited].update(title="Inxhinier Ndërtimi i Urave", updatedAt=NOW + timedelta(days=92),
                                            expiresAt=None)
    assert pipeline.run(now=NOW + timedelta(days=92, minutes=5))["embedded"] == 1


def test_incremental_runs_equal_a_fresh_full_pass():
    settings = Settings(neighbours={"state_dir": "", "min_score": 0.0, "incremental_max_churn": 0.5})
    incremental = MemoryPipeline(settings)
    keys = load(incremental, 120, seed=9)
    incremental.run(now=NOW)
    for i, key in enumerate(keys[:30]):
        doc = incremental.repos.jobs.docs[key]
        doc["updatedAt"] = NOW + timedelta(minutes=1)
        if i % 3 == 0:
            doc["description"] = str(doc.get("description")) + " Extra duties in logistics and driving."
        elif i % 3 == 1:
            doc["status"] = "closed"
    incremental.run(now=NOW + timedelta(minutes=2))
    assert incremental.repos.state.recent_runs(1)[0]["summary"]["search"]["mode"] == "incremental"
    full = copy.deepcopy(incremental)
    full.state = None  # no previous candidate lists: a full pass from scratch
    rerun = full.run("full", now=NOW + timedelta(minutes=2), refit=False)
    assert rerun["search"]["mode"] == "exact" and rerun["embedded"] == 0
    assert rerun["lists_written"] == 0 and full.lists() == incremental.lists()


def vectors_of(pipeline: MemoryPipeline) -> dict[str, tuple[str, bytes]]:
    return {k: (r["model"], r["vector"].tobytes()) for k, r in pipeline.repos.embeddings.rows.items()}


def test_the_fitted_embedder_keeps_vectors_until_a_refit_re_embeds_every_listed_job():
    pipeline = MemoryPipeline()
    keys = load(pipeline, 120, seed=17)
    first = pipeline.run(now=NOW)
    before = vectors_of(pipeline)
    (version,) = {m for m, _ in before.values()}
    assert version.startswith("jobsim-fitted-v1-") and first["embedded"] == len(before) > 80

    docs = pipeline.repos.jobs.docs
    edited = next(k for k in keys if k in before)
    docs[edited].update(title="Inxhinier Ndërtimi i Urave", updatedAt=NOW + timedelta(minutes=4))
    closing = next(k for k in keys if k in before and k != edited)
    docs[closing].update(status="closed", updatedAt=NOW + timedelta(minutes=4))
    second = pipeline.run(now=NOW + timedelta(minutes=5))
    after = vectors_of(pipeline)
    assert second["embedded"] == 1 and {m for m, _ in after.values()} == {version}  # the stored model is used
    assert {k: v for k, v in after.items() if k != edited} == {k: v for k, v in before.items() if k != edited}

    rebuilt = pipeline.run("full", now=NOW + timedelta(minutes=10))  # a full rebuild fits a new model ...
    refitted = vectors_of(pipeline)
    (new_version,) = {m for m, _ in refitted.values() if m != version} or {version}
    listed = {k for k, d in docs.items() if d["embedding"].get("status") == "completed"}
    assert new_version != version and rebuilt["embedded"] == len(listed)  # ... and re-embeds every listed job
    assert all(refitted[k][0] == new_version for k in listed)  # the closed one too: it keeps its list
    assert pipeline.lists()[closing][0]
    full = copy.deepcopy(pipeline)
    full.state = None
    assert full.run("full", now=NOW + timedelta(minutes=10), refit=False)["lists_written"] == 0

    docs[edited].update(description="Completely different duties: driving a delivery van around Durrës.",
                        updatedAt=NOW + timedelta(minutes=14))
    assert pipeline.run(now=NOW + timedelta(minutes=15))["embedded"] == 1  # incremental after a refit ...
    full = copy.deepcopy(pipeline)
    full.state = None
    assert full.run("full", now=NOW + timedelta(minutes=15), refit=False)["lists_written"] == 0  # ... equals full
