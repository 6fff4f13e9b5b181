"""Load every active vector, compute all top-k lists, write back the ones that changed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger, task
from prefect.task_runners import TaskRunner

from jobsim.incremental import CandidateState
from jobsim.neighbours import square_block_for
from jobsim.pipeline import RunInfo, WriteStats
from jobsim.settings import Settings
from jobsim.shards import Bounds, PairTopK, TopKMerger, min_shards_for, search_pair, shard_bounds, shard_pairs
from jobsim.similarity import (
    ActiveSet, NeighbourResult, PassChoice, TopK, active_set, choose_pass, compute_neighbours as compute,
    diff_lists,
)
from storage import repositories
from storage.neighbour_state import NeighbourStateStore
from tasks.common import IO_TASK, PURE_TASK
from tasks.runner import fan_out


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


@dataclass
class NeighbourPlan:
    """The pass this run takes; ``shards`` set = a full exact pass as shard-pair tasks."""

    previous: CandidateState | None
    choice: PassChoice
    shards: list[Bounds]
    block: int = 0


@task(name="plan-neighbours", **PURE_TASK)
def plan_neighbours(settings: Settings, active: ActiveSet) -> NeighbourPlan:
    store = state_store(settings)
    previous = store.load(settings.embedding.dimensions) if store else None
    choice = choose_pass(active, settings.neighbours, previous)
    shards: list[Bounds] = []
    block = square_block_for(len(active.ids), settings.neighbours.memory_budget_mb << 20)
    if choice.mode == "exact" and settings.execution.task_runner == "dask":
        shards = shard_bounds(len(active.ids), int(active.vectors.shape[1]), settings.execution.shard_memory_mb << 20,
                              block, min_shards=min_shards_for(settings.execution.workers))
        shards = shards if len(shards) > 1 else []
    get_run_logger().info("neighbour pass: %s%s%s", choice.mode, f" ({choice.reason})" if choice.reason else "",
                          f" in {len(shards)} shards, {len(shard_pairs(shards))} pair tasks" if shards else "")
    return NeighbourPlan(previous, choice, shards, block)


@task(name="search-shard-pair", **PURE_TASK)
def search_shard_pair(xa: np.ndarray, a: Bounds, xb: np.ndarray | None, b: Bounds | None, k: int,
                      memory_budget_bytes: int, block: int) -> PairTopK:
    return search_pair(xa, a, xb, b, k, memory_budget_bytes, block)


def search_shards(runner: TaskRunner, settings: Settings, active: ActiveSet, plan: NeighbourPlan) -> TopK:
    """Every shard pair as its own task on ``runner``, merged exactly as results arrive."""
    x, cfg = active.vectors, settings.neighbours
    depth = cfg.candidates + cfg.candidate_margin
    calls = []
    for a, b in shard_pairs(plan.shards):
        (a0, a1), (b0, b1) = plan.shards[a], plan.shards[b]
        cross = a != b
        calls.append(dict(xa=x[a0:a1], a=plan.shards[a], xb=x[b0:b1] if cross else None,
                          b=plan.shards[b] if cross else None, k=depth,
                          memory_budget_bytes=cfg.memory_budget_mb << 20, block=plan.block))
    merger = TopKMerger(len(active.ids), depth)
    fan_out(runner, search_shard_pair, calls, merger.add)
    return merger.result()


@task(name="compute-neighbours", **PURE_TASK)
def compute_neighbours(settings: Settings, active: ActiveSet, plan: NeighbourPlan,
                       exact: TopK | None = None) -> NeighbourResult:
    result = compute(active, settings.neighbours, plan.previous, plan.choice, exact, len(plan.shards))
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
