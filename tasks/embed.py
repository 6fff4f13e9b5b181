"""Embedding tasks: plan (I/O), the paid call per batch (no Prefect retries: the embedder
retries its own requests), storing a batch (I/O, retried, idempotent)."""

from __future__ import annotations

from dataclasses import replace

from prefect import get_run_logger, task

from jobsim.embedders import is_fitted, make_embedder
from jobsim.embedders.fitted_model import FittedModel
from jobsim.settings import FITTED_FAMILY, Settings
from jobsim.stages.embed import BatchVectors, EmbedBatch, EmbedPlan, embed_batch, plan_embeddings, store_batch
from jobsim.stages.embedder import fitted_model
from jobsim.stages.prepare import Prepared, prepare, rehashed
from jobsim.stages.pull import pull_changed
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


@task(name="prepare-embedder", **IO_TASK)
def prepare_embedder(settings: Settings, prepared: Prepared, run: RunInfo) -> tuple[Settings, FittedModel | None,
                                                                                    Prepared]:
    """For the corpus-fitted embedder: its model (the stored one, or fitted now on every
    listed job's text), the settings naming its version, and the texts hashed for it."""
    cfg = settings.embedding
    if not is_fitted(cfg):
        return settings, None, prepared
    repos = repositories(settings)

    def corpus() -> Prepared:  # every listed job: what this run pulled when it pulled them all
        if run.since is None:
            return prepared
        docs = pull_changed(repos.jobs, replace(run, since=None), cfg.max_attempts)
        return prepare(docs, run.started_at, cfg.model, cfg.dimensions, settings.neighbours.closed_list_days)

    refit = run.mode == "full" and cfg.refit_on_full_rebuild
    model, fitted_now = fitted_model(repos.state, FITTED_FAMILY, cfg.dimensions, refit, corpus, run.started_at)
    get_run_logger().info("embedder %s (%s)", model.version, "fitted now" if fitted_now else "stored")
    settings = settings.model_copy(update={"embedding": cfg.model_copy(update={"model": model.version})})
    return settings, model, rehashed(prepared, model.version, cfg.dimensions)


@task(name="embed-batch", **PURE_TASK)
def embed_jobs_batch(settings: Settings, batch: EmbedBatch, fitted: FittedModel | None = None) -> BatchVectors:
    done = embed_batch(make_embedder(settings.embedding, fitted), batch)
    get_run_logger().info("embedded %d, failed %d, deferred %d: %d requests, %d tokens in %.1f s", len(done.ok),
                          len(done.failed), len(done.deferred), done.requests, done.tokens, done.seconds)
    return done


@task(name="store-vectors", **IO_TASK)
def store_vectors(settings: Settings, done: BatchVectors, run: RunInfo) -> EmbedStats:
    """Store a batch's vectors, then mark its jobs (a retry re-stores, never re-embeds)."""
    repos = repositories(settings)
    return store_batch(repos.jobs, repos.embeddings, done, settings.embedding.model, run.started_at)
