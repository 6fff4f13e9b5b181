"""Load every active vector, compute all top-k lists, write back the ones that changed."""

from __future__ import annotations

from prefect import get_run_logger, task

from jobsim.pipeline import RunInfo, WriteStats
from jobsim.similarity import ActiveSet, active_set, compute_lists, diff_lists
from jobsim.settings import Settings
from storage import Neighbours, repositories
from tasks.common import IO_TASK, PURE_TASK


@task(name="load-active-vectors", **IO_TASK)
def load_active_vectors(settings: Settings, run: RunInfo) -> ActiveSet:
    repos = repositories(settings.mongo)
    context = repos.jobs.active_context(run.started_at)
    vectors = repos.embeddings.load(settings.embedding.model, settings.embedding.dimensions)
    active = active_set(vectors, context)
    get_run_logger().info("%d active jobs with a current vector (of %d stored)", len(active.ids), len(vectors))
    return active


@task(name="compute-neighbours", **PURE_TASK)
def compute_neighbours(settings: Settings, active: ActiveSet) -> dict[str, Neighbours]:
    return compute_lists(active, settings.neighbours)


@task(name="write-neighbours", **IO_TASK)
def write_neighbours(settings: Settings, lists: dict[str, Neighbours], run: RunInfo) -> WriteStats:
    jobs = repositories(settings.mongo).jobs
    changes, unchanged = diff_lists(lists, jobs.stored_lists())
    written = jobs.write_lists(changes, run.started_at, len(lists), settings.neighbours.recompute_days)
    cleared = sum(1 for items in changes.values() if not items)
    get_run_logger().info("wrote %d lists (%d cleared), %d unchanged", written, cleared, unchanged)
    return WriteStats(written=written, cleared=cleared, unchanged=unchanged)
