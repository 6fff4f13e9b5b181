"""Embedding tasks: plan (I/O), the paid call per batch (no Prefect retries: the embedder
retries its own requests), storing a batch (I/O, retried, idempotent)."""

from __future__ import annotations

from prefect import get_run_logger, task

from jobsim.embedders import make_embedder
from jobsim.settings import Settings
from jobsim.stages.embed import BatchVectors, EmbedBatch, EmbedPlan, embed_batch, plan_embeddings, store_batch
from jobsim.stages.prepare import Prepared
from jobsim.summary import EmbedStats, RunInfo
from storage import repositories
from tasks.common import IO_TASK, PURE_TASK


@task(name="plan-embeddings", **IO_TASK)
def plan_embedding(settings: Settings, prepared: Prepared, run: RunInfo) -> EmbedPlan:
    """Batches of the jobs needing a new vector (one per Dask worker at least); the others
    reuse their stored one."""
    repos, execution = repositories(settings), settings.execution
    spread = execution.workers if execution.task_runner == "dask" else 1
    plan = plan_embeddings(repos.jobs, repos.embeddings, prepared, settings.embedding.model, run.started_at,
                           execution.embed_batch_jobs, spread)
    get_run_logger().info("%d jobs need a new vector (%d batches), %d reuse a stored one",
                          sum(len(b.ids) for b in plan.batches), len(plan.batches), plan.reused)
    return plan


@task(name="embed-batch", **PURE_TASK)
def embed_jobs_batch(settings: Settings, batch: EmbedBatch) -> BatchVectors:
    done = embed_batch(make_embedder(settings.embedding), batch)
    get_run_logger().info("embedded %d, failed %d, deferred %d: %d requests, %d tokens in %.1f s", len(done.ok),
                          len(done.failed), len(done.deferred), done.requests, done.tokens, done.seconds)
    return done


@task(name="store-vectors", **IO_TASK)
def store_vectors(settings: Settings, done: BatchVectors, run: RunInfo) -> EmbedStats:
    """Store a batch's vectors, then mark its jobs (a retry re-stores, never re-embeds)."""
    repos = repositories(settings)
    return store_batch(repos.jobs, repos.embeddings, done, settings.embedding.model, run.started_at)
