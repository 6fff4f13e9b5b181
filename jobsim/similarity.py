"""The neighbour stage as plain functions: active set, all-pairs top-k lists, diff.

Pure: arrays and frames in, arrays and dicts out (I/O stays in ``storage/``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from jobsim.fullpass import full_topk, plan_for
from jobsim.incremental import CandidateState, churn_of, fingerprints, full_state, update_state
from jobsim.scoring import Context, encode, rerank
from jobsim.settings import NeighbourSettings

if TYPE_CHECKING:
    from storage.embeddings import VectorSet

log = logging.getLogger(__name__)

Neighbours = tuple[tuple[str, float], ...]


@dataclass
class ActiveSet:
    """Active vectors with their context, rows aligned."""

    ids: np.ndarray
    vectors: np.ndarray
    context: Context


def active_set(vectors: VectorSet, context: pl.DataFrame) -> ActiveSet:
    """Join stored vectors with active jobs on (id, contentHash): stale vectors never count."""
    stored = pl.DataFrame({"id": vectors.ids.tolist(), "contentHash": vectors.hashes.tolist(),
                           "row": np.arange(len(vectors), dtype=np.int64)},
                          schema={"id": pl.String, "contentHash": pl.String, "row": pl.Int64})
    joined = context.join(stored, on=["id", "contentHash"], how="inner").sort("id")
    rows = joined["row"].to_numpy()
    return ActiveSet(
        ids=np.array(joined["id"].to_list(), dtype=object),
        vectors=np.ascontiguousarray(vectors.vectors[rows]),
        context=Context(
            category=encode(joined["category"].to_list()),
            level=joined["level"].to_numpy().astype(np.int8),
            city=encode(joined["city"].to_list()),
            remote=joined["remote"].to_numpy(),
        ),
    )


@dataclass
class NeighbourStats:
    """What the neighbour pass did (the run summary records these fields)."""

    mode: str  # "exact" | "ann" | "incremental"
    jobs: int
    dims: int
    seconds: float
    search_seconds: float
    rerank_seconds: float
    full_pass_reason: str = ""  # why a full pass ran instead of the incremental one
    ann_index: str | None = None
    ann_param: str | None = None
    ann_value: int | None = None
    recall_at_10: float | None = None  # ANN only: measured this run on a sample vs exact
    recall_sample: int = 0
    added: int = 0
    removed: int = 0
    recomputed: int = 0
    churn: float | None = None
    shards: int = 0  # > 0: the exact pass ran as shard-pair tasks

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class NeighbourResult:
    """Lists to diff against MongoDB, stats for the summary, state for the next run."""

    lists: dict[str, Neighbours]
    stats: NeighbourStats
    state: CandidateState | None = None


def _depth(settings: NeighbourSettings) -> int:
    return settings.candidates + settings.candidate_margin


TopK = tuple[np.ndarray, np.ndarray]  # (scores, row indices), each (n, depth)


def full_pass(
    active: ActiveSet, settings: NeighbourSettings, fps: np.ndarray, exact: TopK | None = None
) -> tuple[CandidateState, dict]:
    """Exact or ANN as the planner chooses (:mod:`jobsim.fullpass`): candidate lists of
    every row. ``exact`` = the exact lists already computed elsewhere (the sharded search)."""
    n, depth = len(active.ids), _depth(settings)
    if exact is None:
        result = full_topk(active.vectors, depth, settings)
        if result.ann is None:
            exact = (result.scores, result.indices)
        else:
            r = result.ann
            state = CandidateState(
                ids=active.ids, fingerprints=fps, scores=result.scores, cand=result.indices,
                depth=np.full(n, min(depth, max(n - 1, 0)), dtype=np.int32),
                dims=int(active.vectors.shape[1]), exact=False,
            )
            return state, {"mode": "ann", "ann_index": r.index, "ann_param": r.param, "ann_value": r.value,
                           "recall_at_10": r.recall_at_10, "recall_sample": r.recall_sample}
    state = full_state(active.ids, active.vectors, fps, depth, settings.memory_budget_mb << 20, exact)
    return state, {"mode": "exact"}


def lists_from(active: ActiveSet, state: CandidateState, settings: NeighbourSettings) -> dict[str, Neighbours]:
    """Rerank each row's first ``candidates`` cosine candidates into its final list."""
    c = min(settings.candidates, state.cand.shape[1])
    scores, idx = rerank(state.scores[:, :c], state.cand[:, :c], active.context, settings.k,
                         settings.cosine_weight, settings.min_score)
    ids = active.ids
    lists: dict[str, Neighbours] = {}
    counts = (idx >= 0).sum(axis=1).tolist()
    score_rows = scores.astype(np.float64).round(2).tolist()
    for row, (count, srow) in enumerate(zip(counts, score_rows)):
        lists[ids[row]] = tuple(zip(ids[idx[row, :count]].tolist(), srow[:count]))
    return lists


@dataclass
class PassChoice:
    """Which pass a run's neighbour step takes, and why (decided before any search)."""

    mode: str  # "incremental" | "exact" | "ann"
    reason: str = ""  # why not incremental
    old_to_new: np.ndarray | None = None
    added: np.ndarray | None = None
    churn: float | None = None
    fingerprints: np.ndarray | None = None  # of the active vectors, when computed


def choose_pass(active: ActiveSet, settings: NeighbourSettings, previous: CandidateState | None) -> PassChoice:
    """Incremental from ``previous`` when it applies, else a full pass (exact or ANN by size)."""
    n = len(active.ids)
    dims = int(active.vectors.shape[1]) if active.vectors.ndim == 2 else 0
    full = plan_for(n, dims, settings).mode if dims else "exact"
    if previous is None:
        return PassChoice(full, "no previous state" if settings.incremental else "incremental off")
    if not settings.incremental:
        return PassChoice(full, "incremental off")
    if previous.dims != dims or previous.scores.shape[1] != _depth(settings):
        return PassChoice(full, "state from other dimensions or candidate depth")
    if not previous.exact and full == "exact":
        return PassChoice(full, "state is approximate and the set is small enough for exact")
    fps = fingerprints(active.vectors)
    old_to_new, added, churn = churn_of(previous, active.ids, fps)
    if churn > settings.incremental_max_churn:
        return PassChoice(full, f"churn {churn:.3f} > {settings.incremental_max_churn}", churn=churn,
                          fingerprints=fps)
    return PassChoice("incremental", old_to_new=old_to_new, added=added, churn=churn, fingerprints=fps)


def compute_neighbours(
    active: ActiveSet, settings: NeighbourSettings, previous: CandidateState | None = None,
    choice: PassChoice | None = None, exact: TopK | None = None, shards: int = 0,
) -> NeighbourResult:
    """Every active job's top-k list by the pass ``choice`` (:func:`choose_pass` when not
    given), then the seed's rerank over the cosine candidates. ``exact`` = the exact
    candidate lists of a full exact pass computed elsewhere (by ``shards`` shards)."""
    started = time.perf_counter()
    n, dims = len(active.ids), int(active.vectors.shape[1]) if active.vectors.ndim == 2 else 0
    choice = choice or choose_pass(active, settings, previous)
    fps = choice.fingerprints if choice.fingerprints is not None else fingerprints(active.vectors)
    if choice.mode == "incremental" and previous is not None:
        state, report = update_state(previous, active.ids, active.vectors, fps, settings.candidates,
                                     settings.memory_budget_mb << 20, choice.old_to_new, choice.added)
        extra = {"mode": "incremental", "added": report.added, "removed": report.removed,
                 "recomputed": report.recomputed, "churn": report.churn}
    else:
        state, extra = full_pass(active, settings, fps, exact)
        if exact is not None:
            extra["shards"] = shards
        if choice.churn is not None:
            extra["churn"] = round(choice.churn, 6)
    searched = time.perf_counter()
    lists = lists_from(active, state, settings)
    done = time.perf_counter()
    stats = NeighbourStats(
        jobs=n, dims=dims, seconds=round(done - started, 3),
        search_seconds=round(searched - started, 3), rerank_seconds=round(done - searched, 3),
        full_pass_reason=choice.reason if extra.get("mode") != "incremental" else "", **extra,
    )
    log.info("neighbours: %s pass over %d jobs in %.2f s (search %.2f s)%s", stats.mode, n,
             stats.seconds, stats.search_seconds, f" — {choice.reason}" if stats.full_pass_reason else "")
    return NeighbourResult(lists=lists, stats=stats, state=state)


def compute_lists(active: ActiveSet, settings: NeighbourSettings) -> dict[str, Neighbours]:
    """Top-k similar jobs of every active job by a full pass (no incremental state)."""
    return compute_neighbours(active, settings.model_copy(update={"incremental": False})).lists


def diff_lists(
    new: dict[str, Neighbours], stored: dict[str, Neighbours]
) -> tuple[dict[str, Neighbours], int]:
    """Lists to write (changed ids or scores; stored non-empty lists of jobs no longer
    active become empty) and how many were unchanged."""
    changes: dict[str, Neighbours] = {}
    unchanged = 0
    for job_id, items in new.items():
        if stored.get(job_id, ()) == items:
            unchanged += 1
        else:
            changes[job_id] = items
    for job_id in stored.keys() - new.keys():
        changes[job_id] = ()
    return changes, unchanged


