"""Neighbour tasks: load the active vectors, plan the pass, search, write back changed lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from prefect import get_run_logger, task

from jobsim.candidates import CandidateState
from jobsim.neighbours import square_block_for
from jobsim.settings import Settings
from jobsim.shards import Bounds, PairTopK, min_shards_for, search_pair, shard_bounds
from jobsim.corpus import Corpus
from jobsim.similarity import NeighbourResult, PassChoice, TopK, choose_pass, compute_neighbours
from jobsim.snapshot import Snapshot, lists_fingerprint
from jobsim.stages.neighbours import corpus_at, full_snapshot, kept_lists, refreshed_snapshot, write_changed_lists
from jobsim.summary import RunInfo, WriteStats
from storage import repositories
from storage.local_cache import NeighbourStateStore, SnapshotStore
from tasks.common import IO_TASK, PURE_TASK


def _cache_key(settings: Settings) -> tuple[str, ...]:
    return (settings.mongo.uri.get_secret_value(), settings.mongo.database, settings.mongo.embeddings_collection,
            settings.embedding.model, str(settings.embedding.dimensions))


def state_store(settings: Settings) -> NeighbourStateStore | None:
    """The incremental state file of this database + model (None when disabled)."""
    cfg = settings.neighbours
    if not cfg.incremental or not cfg.state_dir:
        return None
    return NeighbourStateStore(cfg.state_dir, *_cache_key(settings))


def snapshot_store(settings: Settings) -> SnapshotStore | None:
    """The local snapshot of this database + model (None when disabled)."""
    cfg = settings.neighbours
    return SnapshotStore(cfg.state_dir, *_cache_key(settings)) if cfg.incremental and cfg.state_dir else None


@dataclass
class Loaded:
    corpus: Corpus | None  # None when the stored lists are kept
    snapshot: Snapshot
    kept: NeighbourResult | None = None  # nothing that decides a list changed: the stored lists hold


@task(name="load-vectors", **IO_TASK)
def load_vectors(settings: Settings, run: RunInfo, pulled: list[str]) -> Loaded:
    """The jobs that get a list and their vectors, one row per distinct text: an incremental
    run re-reads only the jobs it pulled when the local snapshot matches the database, and
    keeps the stored lists when nothing it re-read changed and nothing else decides a list."""
    repos, cfg, log = repositories(settings), settings.embedding, get_run_logger()
    store = snapshot_store(settings) if run.mode == "incremental" else None
    snapshot = store.load(cfg.dimensions) if store else None
    days = settings.neighbours.closed_list_days
    if snapshot is not None and snapshot.token == repos.state.written_by():
        snapshot, read, changed = refreshed_snapshot(repos.jobs, repos.embeddings, snapshot, pulled, cfg.model,
                                                     cfg.dimensions)
        log.info("from the local snapshot: %d changed jobs and %d vectors read", len(pulled), read)
        kept, why = (None, "jobs changed") if changed else kept_lists(snapshot, run.started_at, days,
                                                                       lists_fingerprint(settings.neighbours))
        if kept is not None:
            log.info("nothing that decides a list changed: the %d stored lists are kept", kept.stats.jobs)
            return Loaded(None, snapshot, kept)
        log.info("lists recomputed: %s", why)
    else:
        snapshot = full_snapshot(repos.jobs, repos.embeddings, cfg.model, cfg.dimensions, run.started_at,
                                 settings.neighbours.closed_list_days)
        log.info("full read (%s)", "full run" if run.mode == "full" else "no valid local snapshot")
    corpus = corpus_at(snapshot, run.started_at, days)
    log.info("%d jobs with a current vector (%d closed), %d distinct texts", len(corpus.job_ids),
             int((~corpus.active).sum()), corpus.rows)
    return Loaded(corpus, snapshot)


@task(name="load-neighbour-state", **IO_TASK)
def load_neighbour_state(settings: Settings) -> CandidateState | None:
    """The previous run's candidate lists (a local cache; None = a full pass)."""
    store = state_store(settings)
    return store.load(settings.embedding.dimensions) if store else None


@dataclass
class NeighbourPlan:
    """The pass this run takes; ``shards`` set = a full exact pass as shard-pair tasks."""

    choice: PassChoice
    shards: list[Bounds]


@task(name="plan-neighbours", **PURE_TASK)
def plan_neighbours(settings: Settings, corpus: Corpus, previous: CandidateState | None) -> NeighbourPlan:
    choice = choose_pass(corpus, settings.neighbours, previous)
    shards: list[Bounds] = []
    execution, n = settings.execution, corpus.base
    if choice.mode == "exact" and execution.task_runner == "dask":
        block = square_block_for(n, settings.neighbours.memory_budget_mb << 20)
        shards = shard_bounds(n, int(corpus.vectors.shape[1]), execution.shard_memory_mb << 20, block,
                              min_shards=min_shards_for(execution.workers))
        shards = shards if len(shards) > 1 else []
    get_run_logger().info("neighbour pass: %s%s%s", choice.mode, f" ({choice.reason})" if choice.reason else "",
                          f" in {len(shards)} shards" if shards else "")
    return NeighbourPlan(choice, shards)


@task(name="search-shard-pair", **PURE_TASK)
def search_shard_pair(xa: np.ndarray, a: Bounds, xb: np.ndarray | None, b: Bounds | None, k: int,
                      memory_budget_bytes: int, block: int) -> PairTopK:
    return search_pair(xa, a, xb, b, k, memory_budget_bytes, block)


@task(name="compute-neighbours", **PURE_TASK)
def compute_neighbour_lists(settings: Settings, corpus: Corpus, previous: CandidateState | None,
                            plan: NeighbourPlan, exact: TopK | None = None) -> NeighbourResult:
    result = compute_neighbours(corpus, settings.neighbours, previous, plan.choice, exact, len(plan.shards))
    s = result.stats
    get_run_logger().info(
        "neighbours: %s over %d jobs in %.2f s%s%s", s.mode, s.jobs, s.seconds,
        f", recall@10 {s.recall_at_10} (sample {s.recall_sample})" if s.recall_at_10 is not None else "",
        f", {s.added} added / {s.removed} removed / {s.recomputed} recomputed" if s.mode == "incremental"
        else f" ({s.full_pass_reason})" if s.full_pass_reason else "",
    )
    return result


@task(name="write-neighbours", **IO_TASK)
def write_neighbours(settings: Settings, result: NeighbourResult, loaded: Loaded, run: RunInfo) -> tuple[WriteStats, Snapshot]:
    repos = repositories(settings)
    stats, snapshot = write_changed_lists(repos.jobs, repos.state, result, loaded.snapshot, run.run_id,
                                          run.started_at, settings.neighbours.recompute_days,
                                          lists_fingerprint(settings.neighbours))
    get_run_logger().info("wrote %d lists (%d cleared), %d unchanged%s", stats.written, stats.cleared, stats.unchanged,
                          f", {len(stats.refused)} refused by the server" if stats.refused else "")
    return stats, snapshot


@task(name="save-local-caches", **IO_TASK)
def save_local_caches(settings: Settings, result: NeighbourResult, snapshot: Snapshot) -> None:
    """After the write-back: the next run starts from this state and snapshot (kept lists:
    both are as they were)."""
    if result.lists is None:
        return
    store, snapshots = state_store(settings), snapshot_store(settings)
    if store is not None and result.state is not None:
        store.save(result.state)
    if snapshots is not None:
        snapshots.save(snapshot)
