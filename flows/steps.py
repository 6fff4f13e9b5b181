"""The fan-out steps of a refresh: embedding batches, and the neighbour pass (the shard
pairs of an exact pass).

They only order tasks: plan, submit one task per batch or pair on the run's task runner,
and hand each result to the next task (store) or to the tested merge (``sharded_topk``).
"""

from __future__ import annotations

import time

from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import quote

from flows.fanout import fan_out, task_hook
from jobsim.embedders.fitted_model import FittedModel
from jobsim.settings import Settings
from jobsim.shards import min_shards_for, search_pair, sharded_topk
from jobsim.corpus import Corpus
from jobsim.similarity import NeighbourResult, TopK
from jobsim.stages.embed import not_sent
from jobsim.stages.prepare import Prepared
from jobsim.summary import EmbedStats, RunInfo, combine_embed_stats
from tasks.embed import embed_jobs_batch, plan_embedding, store_vectors
from tasks.neighbours import compute_neighbour_lists, load_neighbour_state, plan_neighbours, search_shard_pair


def embed_changed(runner: TaskRunner, settings: Settings, prepared: Prepared, run: RunInfo,
                  fitted: FittedModel | None = None) -> EmbedStats:
    """Plan, then each batch's paid call as its own task (rate limits split between the
    batches in flight), each result stored as it arrives, then one summary."""
    started = time.perf_counter()
    plan = plan_embedding(settings, quote(prepared), run)
    workers = settings.execution.workers
    each = settings.model_copy(update={"embedding": settings.embedding.shared_by(min(len(plan.batches), workers))})
    parts: list[EmbedStats] = []
    batches = iter(plan.batches)
    calls = (dict(settings=each, batch=b, fitted=fitted) for b in batches)
    for done in fan_out(runner, embed_jobs_batch, calls, workers, keep_going=lambda: not any(p.unavailable for p in parts)):
        parts.append(store_vectors(settings, quote(done), run))
    for batch in batches:  # not sent: a batch found the service unavailable (circuit breaker)
        parts.append(store_vectors(settings, quote(not_sent(batch, "not sent: embedding service unavailable")), run))
    return combine_embed_stats(plan.reused, parts, time.perf_counter() - started)


def exact_in_shards(runner: TaskRunner, settings: Settings, corpus: Corpus) -> TopK:
    """The exact full pass over the base rows as shard-pair tasks, merged exactly by
    :func:`sharded_topk`."""
    cfg, execution = settings.neighbours, settings.execution
    hook = task_hook(runner, search_shard_pair, search_pair, in_flight=2 * execution.workers)
    return sharded_topk(corpus.vectors[:corpus.base], cfg.candidates + cfg.candidate_margin, execution.shard_memory_mb << 20,
                        cfg.memory_budget_mb << 20, min_shards_for(execution.workers), run=hook)


def neighbour_lists(runner: TaskRunner, settings: Settings, corpus: Corpus) -> NeighbourResult:
    """Every listed job's list: the previous run's candidate state, the pass planned from it,
    the exact pass's shard pairs when it is split, then candidates to lists."""
    previous = load_neighbour_state(settings)
    plan = plan_neighbours(settings, quote(corpus), quote(previous))
    exact = exact_in_shards(runner, settings, corpus) if plan.shards else None
    return compute_neighbour_lists(settings, quote(corpus), quote(previous), quote(plan), quote(exact))
