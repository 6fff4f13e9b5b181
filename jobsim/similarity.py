"""The neighbour stage's computation: candidate lists of the corpus rows (full exact,
sharded, ANN or incremental), duplicate groups, then every listed job's final list.

Pure: arrays in, lists out (I/O stays in ``storage/``). Rows and groups: :mod:`jobsim.corpus`,
:mod:`jobsim.groups`; from candidates to lists: :mod:`jobsim.lists`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from jobsim.candidates import CandidateState
from jobsim.corpus import Corpus
from jobsim.fullpass import full_topk, plan_for
from jobsim.groups import Groups, duplicate_groups
from jobsim.incremental import available, churn_of, full_state, search_rows, update_state
from jobsim.lists import pool_ends, pools, rerank_jobs, rows_needing_more
from jobsim.listset import ListSet
from jobsim.report import Histogram, histogram_of
from jobsim.settings import NeighbourSettings

log = logging.getLogger(__name__)

TopK = tuple[np.ndarray, np.ndarray]  # (scores, row indices), each (n, depth)
RERANK_CHUNK = 8192  # jobs reranked at a time


@dataclass
class NeighbourStats:
    """What the neighbour pass did (the run summary records these fields)."""

    mode: str  # "exact" | "ann" | "incremental"
    jobs: int  # jobs that got a list (active and recently closed)
    dims: int
    seconds: float
    search_seconds: float
    rerank_seconds: float
    rows: int = 0  # distinct vectors searched
    query_rows: int = 0  # rows of closed jobs only (searched, never listed)
    closed_jobs: int = 0  # closed/expired jobs that got a list of open jobs
    full_pass_reason: str = ""  # why a full pass ran instead of the incremental one
    plan: str = ""  # why the full pass was exact or ANN (the planner's predictions)
    ann_index: str | None = None
    ann_param: str | None = None
    ann_value: int | None = None  # nprobe: the most lists a row probes
    ann_mean_probes: float | None = None  # lists a row probes on average (fewer than nprobe under a margin)
    ann_probe_margin: float | None = None  # > 0: each row probed the lists within this score of its best
    recall_at_10: float | None = None  # ANN only: measured this run on a sample vs exact
    recall_sample: int = 0
    added: int = 0
    removed: int = 0
    recomputed: int = 0
    churn: float | None = None
    shards: int = 0  # > 0: the exact pass ran as shard-pair tasks
    duplicate_groups: int = 0  # groups of two or more postings
    grouped_jobs: int = 0  # postings in those groups
    near_duplicate_links: int = 0  # links between distinct texts (cosine + company)
    deeper_rows: int = 0  # rows searched deeper to refill lists emptied by duplicates

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class NeighbourResult:
    """Lists to diff against MongoDB, stats for the summary, state for the next run."""

    lists: ListSet | None  # None: the stored lists hold (jobsim.stages.neighbours.kept_lists)
    stats: NeighbourStats
    state: CandidateState | None = None
    checks: dict = field(default_factory=dict)  # ListSet.checks of ``lists``
    histogram: Histogram | None = None  # of the lists' scores (the run report's plot)


@dataclass
class PassChoice:
    """Which pass a run's neighbour step takes, and why (decided before any search)."""

    mode: str  # "incremental" | "exact" | "ann"
    reason: str = ""  # why not incremental
    old_to_new: np.ndarray | None = None
    added: np.ndarray | None = None
    churn: float | None = None
    fingerprints: np.ndarray | None = None  # of the corpus rows, when computed
    plan: str = ""  # the planner's reason for the full pass's path


def _depth(settings: NeighbourSettings) -> int:
    return settings.candidates + settings.candidate_margin


def choose_pass(corpus: Corpus, settings: NeighbourSettings, previous: CandidateState | None) -> PassChoice:
    """Incremental from ``previous`` when it applies, else a full pass (exact or ANN as the
    planner predicts faster, :mod:`jobsim.fullpass`; planned only when a full pass may run:
    the planner times a GEMM)."""
    dims = int(corpus.vectors.shape[1]) if corpus.vectors.ndim == 2 else 0

    def full(reason: str, **found: object) -> PassChoice:
        plan = plan_for(corpus.base, dims, settings) if dims and corpus.base > 1 else None
        return PassChoice(plan.mode if plan else "exact", reason, plan=plan.reason if plan else "", **found)

    if previous is None:
        return full("no previous state" if settings.incremental else "incremental off")
    if not settings.incremental:
        return full("incremental off")
    if previous.dims != corpus.vectors.shape[1] or previous.scores.shape[1] != _depth(settings):
        return full("state from other dimensions or candidate depth")
    if not previous.exact:
        exact = full("state is approximate and the set is small enough for exact")
        if exact.mode == "exact":
            return exact
    fps = corpus.row_fingerprints()
    old_to_new, added, churn = churn_of(previous, corpus.row_ids, fps)
    if churn > settings.incremental_max_churn:
        return full(f"churn {churn:.3f} > {settings.incremental_max_churn}", churn=churn, fingerprints=fps)
    return PassChoice("incremental", old_to_new=old_to_new, added=added, churn=churn, fingerprints=fps)


def full_pass(corpus: Corpus, settings: NeighbourSettings, fps: np.ndarray, mode: str,
              exact: TopK | None = None) -> tuple[CandidateState, dict]:
    """Candidate lists of every row by a full pass over the base rows, exact (``exact`` =
    the lists already computed by the sharded search) or as the planner decides
    (:func:`jobsim.fullpass.full_topk`: an ANN pass falls back to exact when its tuned
    cost no longer wins); closed jobs' query rows are searched exactly either way."""
    budget, depth, base = settings.memory_budget_mb << 20, _depth(settings), corpus.base
    if mode == "exact" or exact is not None:
        return full_state(corpus.row_ids, corpus.vectors, fps, base, depth, budget, exact), {"mode": "exact"}
    result = full_topk(corpus.vectors[:base], depth, settings)
    state = full_state(corpus.row_ids, corpus.vectors, fps, base, depth, budget, (result.scores, result.indices))
    if result.ann is None:
        return state, {"mode": "exact", "plan": result.plan.reason}
    state.exact = False
    r = result.ann
    return state, {"mode": "ann", "plan": result.plan.reason, "ann_index": r.index, "ann_param": r.param, "ann_value": r.value,
                   "ann_mean_probes": r.mean_probes, "ann_probe_margin": r.probe_margin,
                   "recall_at_10": r.recall_at_10, "recall_sample": r.recall_sample}


def candidate_state(corpus: Corpus, settings: NeighbourSettings, previous: CandidateState | None,
                    choice: PassChoice, exact: TopK | None = None) -> tuple[CandidateState, dict]:
    """Every row's candidate list by the chosen pass, and what the pass did."""
    fps = choice.fingerprints if choice.fingerprints is not None else corpus.row_fingerprints()
    if choice.mode == "incremental" and previous is not None:
        state, report = update_state(previous, corpus.row_ids, corpus.vectors, fps, corpus.base,
                                     settings.candidates, settings.memory_budget_mb << 20,
                                     choice.old_to_new, choice.added)
        return state, {"mode": "incremental", "added": report.added, "removed": report.removed,
                       "recomputed": report.recomputed, "churn": report.churn}
    state, extra = full_pass(corpus, settings, fps, choice.mode, exact)
    if choice.churn is not None:
        extra["churn"] = round(choice.churn, 6)
    return state, extra


def _deeper(corpus: Corpus, groups: Groups, rows: np.ndarray, start: int, settings: NeighbourSettings) -> tuple:
    """Pools of rows whose exact candidates held too few distinct groups, from searches
    twice as deep each round until the pool is complete or every candidate was seen."""
    cos = np.full((len(rows), start), -np.inf, dtype=np.float32)
    cand = np.full((len(rows), start), -1, dtype=np.int64)
    ends = np.full(len(rows), -1, dtype=np.int64)
    avail = available(corpus.rows, corpus.base)[rows]
    todo, k = np.arange(len(rows)), start
    while len(todo):
        k = min(2 * k, int(avail[todo].max()))
        s, c = search_rows(corpus.vectors, corpus.base, rows[todo], k, settings.memory_budget_mb << 20)
        depth = np.minimum(k, avail[todo]).astype(np.int32)
        e = pool_ends(c, depth, groups.row_group, groups.row_group[rows[todo]], settings.candidates)
        e = np.where((e < 0) & (depth >= avail[todo]), depth, e)
        if k > cos.shape[1]:
            cos = np.pad(cos, ((0, 0), (0, k - cos.shape[1])), constant_values=-np.inf)
            cand = np.pad(cand, ((0, 0), (0, k - cand.shape[1])), constant_values=-1)
        cos[todo, :k], cand[todo, :k], ends[todo] = s, c, e
        todo = todo[e < 0]
    return cos, cand, ends


def _rerank(corpus: Corpus, groups: Groups, jobs: np.ndarray, cos: np.ndarray, cand: np.ndarray, ends: np.ndarray,
            rows: np.ndarray, settings: NeighbourSettings) -> ListSet:
    """The lists of ``jobs`` from the pools of their ``rows``, ``RERANK_CHUNK`` jobs at a time
    (the rerank's temporaries stay small and are reused instead of touching fresh memory)."""
    parts = [rerank_jobs(corpus, groups, jobs[a:a + RERANK_CHUNK], *pools(cos, cand, ends, rows[a:a + RERANK_CHUNK]),
                         settings) for a in range(0, max(len(jobs), 1), RERANK_CHUNK)]
    return parts[0].concat(*parts[1:])


def final_lists(corpus: Corpus, state: CandidateState, settings: NeighbourSettings) -> tuple[ListSet, Groups, int]:
    """Every listed job's final list (:mod:`jobsim.lists`), the duplicate groups, and how
    many rows were searched deeper."""
    groups = duplicate_groups(corpus, state.scores, state.cand, settings.candidates, settings.near_duplicate_cosine)
    ends = pool_ends(state.cand, state.depth, groups.row_group, groups.row_group, settings.candidates)
    avail = available(corpus.rows, corpus.base)
    more = rows_needing_more(ends, state.depth, avail)
    ends = np.where((ends < 0) & (state.depth >= avail), state.depth, ends)  # every candidate seen: all of them
    deep = np.zeros(corpus.rows, dtype=bool)
    deep[more] = True
    jobs = np.flatnonzero(~deep[corpus.job_row])
    lists = _rerank(corpus, groups, jobs, state.scores, state.cand, ends, corpus.job_row[jobs], settings)
    if len(more):
        cos, cand, deep_ends = _deeper(corpus, groups, more, state.scores.shape[1], settings)
        position = np.full(corpus.rows, -1, dtype=np.int64)
        position[more] = np.arange(len(more))
        jobs = np.flatnonzero(deep[corpus.job_row])
        lists = lists.concat(_rerank(corpus, groups, jobs, cos, cand, deep_ends, position[corpus.job_row[jobs]],
                                     settings))
    return lists, groups, len(more)


def compute_neighbours(
    corpus: Corpus, settings: NeighbourSettings, previous: CandidateState | None = None,
    choice: PassChoice | None = None, exact: TopK | None = None, shards: int = 0,
) -> NeighbourResult:
    """Every listed job's top-k list by the pass ``choice`` (:func:`choose_pass` when not
    given). ``exact`` = the base rows' exact candidate lists computed elsewhere (by
    ``shards`` shards)."""
    started = time.perf_counter()
    choice = choice or choose_pass(corpus, settings, previous)
    state, extra = candidate_state(corpus, settings, previous, choice, exact)
    if exact is not None:
        extra["shards"] = shards
    searched = time.perf_counter()
    lists, groups, deeper = final_lists(corpus, state, settings)
    done = time.perf_counter()
    stats = NeighbourStats(
        jobs=len(corpus.job_ids), dims=int(corpus.vectors.shape[1]), seconds=round(done - started, 3),
        search_seconds=round(searched - started, 3), rerank_seconds=round(done - searched, 3),
        rows=corpus.rows, query_rows=corpus.rows - corpus.base, closed_jobs=int((~corpus.active).sum()),
        full_pass_reason=choice.reason if extra.get("mode") != "incremental" else "",
        duplicate_groups=groups.groups, grouped_jobs=groups.grouped_jobs, near_duplicate_links=groups.near_links,
        deeper_rows=deeper, **({"plan": choice.plan} | extra),
    )
    log.info("neighbours: %s pass over %d rows (%d jobs) in %.2f s (search %.2f s)%s", stats.mode, corpus.rows,
             stats.jobs, stats.seconds, stats.search_seconds, f" — {choice.reason}" if stats.full_pass_reason else "")
    histogram = histogram_of(lists.score, len(lists), int((lists.counts == 0).sum()))
    return NeighbourResult(lists=lists, stats=stats, state=state, checks=lists.checks(corpus.active, settings.k),
                           histogram=histogram)
