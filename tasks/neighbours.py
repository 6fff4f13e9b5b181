"""Load every active vector, compute all top-k lists, write back the ones that changed."""

from __future__ import annotations

from prefect import get_run_logger, task

from jobsim.pipeline import RunInfo, WriteStats
from jobsim.settings import Settings
from jobsim.similarity import ActiveSet, NeighbourResult, active_set, compute_neighbours as compute, diff_lists
from storage import repositories
from storage.neighbour_state import NeighbourStateStore
from tasks.common import IO_TASK, PURE_TASK


def state_store(settings: Settings) -> NeighbourStateStore | None:
    """The incremental state file of this database + model (None when disabled)."""
    cfg = settings.neighbours
    if not cfg.incremental or not cfg.state_dir:
        return None
    return NeighbourStateStore(
        cfg.state_dir, settings.mongo.uri.get_secret_value(), settings.mongo.database,
        settings.mongo.embeddings_collection, settings.embedding.model, str(settings.embedding.dimensions),
    )


@task(name="load-active-vectors", **IO_TASK)
def load_active_vectors(settings: Settings, run: RunInfo) -> ActiveSet:
    repos = repositories(settings.mongo)
    context = repos.jobs.active_context(run.started_at)
    vectors = repos.embeddings.load(settings.embedding.model, settings.embedding.dimensions)
    active = active_set(vectors, context)
    get_run_logger().info("%d active jobs with a current vector (of %d stored)", len(active.ids), len(vectors))
    return active


@task(name="compute-neighbours", **PURE_TASK)
def compute_neighbours(settings: Settings, active: ActiveSet) -> NeighbourResult:
    store = state_store(settings)
    previous = store.load(settings.embedding.dimensions) if store else None
    result = compute(active, settings.neighbours, previous)
    s = result.stats
    get_run_logger().info(
        "neighbours: %s over %d jobs in %.2f s%s%s", s.mode, s.jobs, s.seconds,
        f", recall@10 {s.recall_at_10} (sample {s.recall_sample})" if s.recall_at_10 is not None else "",
        f", {s.added} added / {s.removed} removed / {s.recomputed} recomputed" if s.mode == "incremental"
        else f" ({s.full_pass_reason})" if s.full_pass_reason else "",
    )
    return result


@task(name="write-neighbours", **IO_TASK)
def write_neighbours(settings: Settings, result: NeighbourResult, run: RunInfo) -> WriteStats:
    jobs = repositories(settings.mongo).jobs
    lists = result.lists
    changes, unchanged = diff_lists(lists, jobs.stored_lists())
    written = jobs.write_lists(changes, run.started_at, len(lists), settings.neighbours.recompute_days)
    cleared = sum(1 for items in changes.values() if not items)
    store = state_store(settings)
    if store is not None and result.state is not None:
        store.save(result.state)  # after the write-back: the next run starts from this
    get_run_logger().info("wrote %d lists (%d cleared), %d unchanged", written, cleared, unchanged)
    return WriteStats(written=written, cleared=cleared, unchanged=unchanged)
