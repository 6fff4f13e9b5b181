"""similarity-refresh: pull changed jobs → embed → all-pairs top-k → write back."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator, Literal

from prefect import flow
from prefect.runtime import flow_run

from jobsim.pipeline import summarize
from jobsim.settings import Settings
from tasks.embed import embed_jobs
from tasks.neighbours import compute_neighbours, load_active_vectors, write_neighbours
from tasks.pull import prepare_jobs, pull_changed_jobs, record_rejections
from tasks.run_state import finish_run, start_run


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started


@flow(name="similarity-refresh")
def similarity_refresh(mode: Literal["incremental", "full"] = "incremental") -> dict:
    """Refresh every active job's similar-jobs list.

    ``incremental`` re-checks jobs changed since the last successful run; ``full``
    re-checks every job. Either way only changed texts are embedded and only changed
    lists are written.
    """
    settings = Settings()
    timings: dict[str, float] = {}
    run = start_run(settings, str(flow_run.id or "local"), mode)
    with _stage("pull", timings):
        docs = pull_changed_jobs(settings, run)
    with _stage("prepare", timings):
        prepared = prepare_jobs(settings, docs, run)
        record_rejections(settings, prepared, run)
    with _stage("embed", timings):
        embedded = embed_jobs(settings, prepared, run)
    with _stage("load_vectors", timings):
        active = load_active_vectors(settings, run)
    with _stage("neighbours", timings):
        lists = compute_neighbours(settings, active)
    with _stage("write_back", timings):
        written = write_neighbours(settings, lists, run)
    summary = summarize(run, len(docs), prepared, embedded, len(active.ids), written,
                        settings.embedding.price_per_million_tokens, timings)
    finish_run(settings, run, summary)
    return summary.as_dict()
