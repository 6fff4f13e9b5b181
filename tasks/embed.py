"""Embed the jobs whose text changed and store their vectors."""

from __future__ import annotations

from prefect import get_run_logger, task

from jobsim.embedders import make_embedder
from jobsim.pipeline import EmbedStats, Prepared, RunInfo, embed_and_store, plan_embeddings
from jobsim.settings import Settings
from storage import repositories
from tasks.common import IO_TASK


@task(name="embed-jobs", **IO_TASK)
def embed_jobs(settings: Settings, prepared: Prepared, run: RunInfo) -> EmbedStats:
    repos = repositories(settings.mongo)
    stored = repos.embeddings.hashes([job.id for job in prepared.jobs])
    to_embed, to_mark = plan_embeddings(prepared, stored)
    logger = get_run_logger()
    logger.info("%d jobs need a new vector, %d reuse a stored one", len(to_embed), len(to_mark))
    stats = embed_and_store(make_embedder(settings.embedding), repos.jobs, repos.embeddings,
                            prepared, to_embed, to_mark, run.started_at)
    logger.info("embedded %d, failed %d, %d requests, %d tokens in %.1f s", stats.embedded,
                len(stats.failed), stats.requests, stats.tokens, stats.seconds)
    return stats
