"""similarity-refresh: pull changed jobs → embed → all-pairs top-k → write back → report."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ContextManager, Literal, TypeVar

from prefect import flow
from prefect.concurrency.sync import concurrency
from prefect.context import SyncClientContext
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from flows.steps import embed_changed, neighbour_lists
from jobsim.allocation import numpy_huge_pages
from jobsim.errors import EmbeddingError
from jobsim.report import run_failures
from jobsim.settings import Settings
from jobsim.stages.runs import summarize
from tasks.admin import clear_recompute_requests, pending_recompute_requests
from tasks.neighbours import load_vectors, save_local_caches, write_neighbours
from tasks.pull import add_requested_jobs, prepare_jobs, pull_changed_jobs, record_rejections_task
from tasks.report import publish_run_report
from tasks.run_state import finish_run, start_run, writer_lease
from tasks.embed import prepare_embedder
from tasks.runner import make_task_runner

Mode = Literal["incremental", "full"]
R = TypeVar("R")


@contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started


def writer_slot(settings: Settings) -> ContextManager[Any]:
    """The one slot of the Prefect global concurrency limit, where it exists (the local stack
    creates it): runs queue for it visibly in the UI. The exclusion itself is the writer
    lease in MongoDB (:func:`tasks.run_state.writer_lease`), which every writer sees."""
    name = settings.ops.writer_limit
    if not name or not _limit_exists(name):
        return nullcontext()
    return concurrency(name, occupy=1, timeout_seconds=settings.ops.writer_wait_s)


def _limit_exists(name: str) -> bool:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_global_concurrency_limit_by_name(name)
        return True
    except ObjectNotFound:
        return False


def steps(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a flow's (synchronous) steps inside its flow function, every task on one Prefect client.

    The flows are ``async def`` for Prefect's sake, not ours: Prefect 3.9's sync engine ends
    every run by joining its heartbeat thread, which sleeps in whole seconds (≥ 1 s per run,
    up to 3 s, whatever the run did); the async engine lets it stop on its own. Sync tasks
    called from an async flow would each open a new client (≈ 16 ms, loading the CA bundle)
    unless one is in context. The steps block the flow's event loop: nothing else runs there."""
    with SyncClientContext.get_or_create():
        return fn(*args, **kwargs)


def refresh(
    settings: Settings,
    mode: Mode,
    job_ids: list[str] | None = None,
    context: dict[str, Any] | None = None,
    serve_requests: bool = True,
) -> dict:
    """The pipeline's steps, in order (called inside a flow).

    ``job_ids`` (keys) are re-checked whatever the watermark. Every run recomputes every
    active list, so it also serves the read side's recompute requests (``serve_requests``):
    their jobs are re-checked too, and the requests made before the run started are cleared.
    """
    timings: dict[str, float] = {}
    run_id = str(flow_run.id or uuid.uuid4())
    numpy_huge_pages(settings.execution.numpy_huge_pages)
    with writer_slot(settings), writer_lease(settings, run_id) as lease, \
            make_task_runner(settings.execution) as runner:
        run = start_run(settings, run_id, mode)
        with _stage("pull", timings):
            docs = pull_changed_jobs(settings, run)
            requested = [*(job_ids or []), *(pending_recompute_requests(settings) if serve_requests else [])]
            if requested:
                docs = add_requested_jobs(settings, quote(docs), requested)
        with _stage("prepare", timings):
            prepared = prepare_jobs(settings, quote(docs), run)
            recorded = record_rejections_task(settings, quote(prepared), run)
        with _stage("embed", timings):
            settings, fitted, prepared = prepare_embedder(settings, quote(prepared), run)
            embedded = embed_changed(runner, settings, prepared, run, fitted)
        with _stage("load_vectors", timings):
            loaded = load_vectors(settings, run, quote([d["_id"] for d in docs]))
        with _stage("neighbours", timings):
            lists = loaded.kept or neighbour_lists(runner, settings, loaded.corpus)
        with _stage("write_back", timings):
            lease.check()
            written, snapshot = write_neighbours(settings, quote(lists), quote(loaded), run)
            save_local_caches(settings, quote(lists), quote(snapshot))
        active = lists.stats.jobs - lists.stats.closed_jobs
        summary = summarize(run, len(docs), prepared, embedded, active, written,
                            settings.embedding.price_per_million_tokens, timings, lists.stats.as_dict(),
                            lists.checks, recorded.refused)
        finish_run(settings, run, summary)
        if serve_requests:
            clear_recompute_requests(settings, run.started_at)
    result = summary.as_dict()
    failures = run_failures({d["_id"]: d.get("title") for d in docs}, prepared.rejected, embedded.failed,
                            {**recorded.refused, **embedded.refused, **written.refused}, embedded.deferred,
                            settings.ops.report_failed_jobs)
    publish_run_report(result, lists.histogram, lists.stats.as_dict(), quote(failures), context)
    if summary.status == "failed":  # red in the UI, non-zero for the CLI; the report says why
        raise EmbeddingError(summary.headline)
    return result


@flow(name="similarity-refresh")
async def similarity_refresh(mode: Mode = "incremental") -> dict:
    """Refresh every active job's similar-jobs list.

    ``incremental`` re-checks jobs changed since the last successful run; ``full``
    re-checks every job. Either way only changed texts are embedded and only changed
    lists are written (every active job's list is recomputed).
    """
    return steps(refresh, Settings(), mode)
