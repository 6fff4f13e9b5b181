"""The refresh's stages in the flow's order on in-memory repositories (no Prefect, no MongoDB).

Fast stage tests and hypothesis sequences use it; the real flow (``flows/refresh.py``) is
tested end to end against the real server elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from jobsim.embedders import Embedder, is_fitted, make_embedder
from jobsim.memory import memory_repositories
from jobsim.repositories import Repositories
from jobsim.settings import FITTED_FAMILY, Settings
from jobsim.similarity import compute_neighbours
from jobsim.stages.embed import embed_batch, plan_embeddings, store_batch
from jobsim.snapshot import lists_fingerprint
from jobsim.stages.neighbours import corpus_at, full_snapshot, kept_lists, refreshed_snapshot, write_changed_lists
from jobsim.stages.embedder import fitted_model
from jobsim.stages.prepare import Prepared, prepare, record_rejections, rehashed
from jobsim.stages.pull import pull_changed
from jobsim.stages.runs import finish_run, start_run, summarize
from jobsim.summary import combine_embed_stats


class MemoryPipeline:
    """One database's worth of in-memory state, and runs over it."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings(neighbours={"state_dir": ""})
        self.embedder = embedder  # None: the settings' (the fitted one is fitted or loaded per run)
        self.repos: Repositories = memory_repositories()
        self.state = None  # the incremental candidate state between runs
        self.snapshot = None  # the local snapshot between runs
        self.vector_reads: list[int] = []  # vectors read by each run (-1: a full read)
        self.kept: list[bool] = []  # whether each run kept the stored lists (nothing deciding one changed)
        self.runs = 0

    def _embedder(self, prepared: Prepared, mode: str, now: datetime, refit: bool | None) -> tuple[Embedder, Prepared]:
        """As the flow's prepare-embedder step: the fitted model is loaded, or fitted on every listed job."""
        s, repos = self.settings, self.repos
        if self.embedder is not None or not is_fitted(s.embedding):
            return self.embedder or make_embedder(s.embedding), prepared
        dims, days = s.embedding.dimensions, s.neighbours.closed_list_days
        every = lambda: prepare(repos.jobs.changed_since(None, 3, now), now, FITTED_FAMILY, dims, days)  # noqa: E731
        refit = mode == "full" and s.embedding.refit_on_full_rebuild if refit is None else refit
        model, _ = fitted_model(repos.state, FITTED_FAMILY, dims, refit, every, now)
        return make_embedder(s.embedding, model), rehashed(prepared, model.version, dims)

    def run(self, mode: str = "incremental", now: datetime | None = None, refit: bool | None = None) -> dict[str, Any]:
        s, repos = self.settings, self.repos
        now = now or datetime.now(timezone.utc)
        self.runs += 1
        run = start_run(repos.state, f"run-{self.runs}", mode, now)
        docs = pull_changed(repos.jobs, run, s.embedding.max_attempts)
        prepared = prepare(docs, now, s.embedding.model, s.embedding.dimensions, s.neighbours.closed_list_days)
        record_rejections(repos.jobs, prepared, now)
        embedder, prepared = self._embedder(prepared, mode, now, refit)
        model, dims, days = embedder.model, s.embedding.dimensions, s.neighbours.closed_list_days
        plan = plan_embeddings(repos.jobs, repos.embeddings, prepared, model, now, s.execution.embed_batch_jobs)
        parts = [store_batch(repos.jobs, repos.embeddings, embed_batch(embedder, b), model, now)
                 for b in plan.batches]
        embedded = combine_embed_stats(plan.reused, parts, 0.0)
        fingerprint, result = lists_fingerprint(s.neighbours), None
        if mode == "incremental" and self.snapshot is not None and self.snapshot.token == repos.state.written_by():
            snapshot, read, changed = refreshed_snapshot(repos.jobs, repos.embeddings, self.snapshot,
                                                         [d["_id"] for d in docs], model, dims)
            result = None if changed else kept_lists(snapshot, now, days, fingerprint)[0]
        else:
            snapshot, read = full_snapshot(repos.jobs, repos.embeddings, model, dims, now, days), -1
        self.vector_reads.append(read)
        self.kept.append(result is not None)
        if result is None:
            result = compute_neighbours(corpus_at(snapshot, now, days), s.neighbours, self.state)
            self.state = result.state if s.neighbours.incremental else None
        written, self.snapshot = write_changed_lists(repos.jobs, repos.state, result, snapshot, run.run_id, now,
                                                     s.neighbours.recompute_days, fingerprint)
        summary = summarize(run, len(docs), prepared, embedded, result.stats.jobs - result.stats.closed_jobs, written,
                            0.0, {}, result.stats.as_dict(), result.checks)
        finish_run(repos.state, run, summary, now, s.watermark_overlap_s)
        return summary.as_dict()

    def lists(self) -> dict[str, list[tuple]]:
        """Every stored list, entries as (neighbour, score, cosine, match), with the job's group."""
        return {k: ([(i["jobId"], i["score"], i["cosine"], tuple(i["match"])) for i in d["similarJobs"]],
                    d.get("duplicateGroup"))
                for k, d in self.repos.jobs.docs.items() if d.get("similarJobs") or d.get("duplicateGroup")}
