"""Embed the jobs whose text changed and store their vectors, batch by batch."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import quote

from jobsim.embedders import make_embedder
from jobsim.pipeline import (
    EmbedBatch, EmbedStats, Prepared, RunInfo, combine_embed_stats, embed_batch, embed_batches, plan_embeddings,
    start_embedding,
)
from jobsim.settings import Settings
from storage import repositories
from tasks.common import IO_TASK
from tasks.runner import fan_out


@task(name="plan-embeddings", **IO_TASK)
def plan_embedding(settings: Settings, prepared: Prepared, run: RunInfo) -> tuple[list[EmbedBatch], int]:
    """Batches of the jobs needing a new vector, and how many reuse a stored one."""
    repos = repositories(settings.mongo)
    to_embed, to_mark = plan_embeddings(prepared, repos.embeddings.hashes([job.id for job in prepared.jobs]))
    start_embedding(repos.jobs, prepared, to_embed, to_mark, settings.embedding.model, run.started_at)
    size = settings.execution.embed_batch_jobs
    if settings.execution.task_runner == "dask":  # a batch for every worker (not tiny ones)
        size = max(256, min(size, -(-len(to_embed) // settings.execution.workers)))
    get_run_logger().info("%d jobs need a new vector, %d reuse a stored one", len(to_embed), len(to_mark))
    return embed_batches(prepared, to_embed, size), len(to_mark)


@task(name="embed-batch", **IO_TASK)
def embed_jobs_batch(settings: Settings, batch: EmbedBatch, run: RunInfo) -> EmbedStats:
    repos = repositories(settings.mongo)
    stats = embed_batch(make_embedder(settings.embedding), repos.jobs, repos.embeddings, batch, run.started_at)
    get_run_logger().info("embedded %d, failed %d, deferred %d: %d requests, %d tokens in %.1f s", stats.embedded,
                          len(stats.failed), len(stats.deferred), stats.requests, stats.tokens, stats.seconds)
    return stats


def embed_jobs(runner: TaskRunner, settings: Settings, prepared: Prepared, run: RunInfo) -> EmbedStats:
    """Plan, then every batch as its own task on ``runner`` (rate limits split between the
    batches in flight), then one summary."""
    started = time.perf_counter()
    batches, reused = plan_embedding(settings, quote(prepared), run)
    share = settings.embedding.shared_by(min(len(batches), settings.execution.workers))
    each = settings.model_copy(update={"embedding": share})
    parts: list[EmbedStats] = []
    fan_out(runner, embed_jobs_batch, [dict(settings=each, batch=b, run=run) for b in batches], parts.append)
    return combine_embed_stats(reused, parts, time.perf_counter() - started)
