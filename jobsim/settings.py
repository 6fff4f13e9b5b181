"""All jobsim settings: one class tree, env prefix ``JOBSIM_``, nested with ``__``.

Loaded once (``Settings()``) at the entry point (flow, CLI, API) and passed down.
Nothing else in jobsim reads the environment. Sources, highest priority first: arguments,
the environment, then the local stack record (``.jobsim/local.json``, see
:mod:`jobsim.localstack`), then the defaults below.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from jobsim import localstack
from jobsim.settings_embedding import FITTED_FAMILY, EmbeddingSettings

__all__ = [
    "FITTED_FAMILY", "ApiSettings", "EmbeddingSettings", "ExecutionSettings", "MongoSettings",
    "NeighbourSettings", "OpsSettings", "Settings",
]


class MongoSettings(BaseModel):
    uri: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017"),
        description="MongoDB connection URI (secret: may hold a password).",
    )
    database: str = Field("jobsim", description="Database holding the collections below.")
    jobs_collection: str = Field("jobs", description="Job postings (the web app's collection).")
    embeddings_collection: str = Field("job_embeddings", description="One vector per job.")
    state_collection: str = Field("pipeline_state", description="Watermark and run records.")
    timeout_ms: int = Field(10_000, ge=100, description="Server selection / socket timeout.")
    write_batch_size: int = Field(500, ge=1, le=10_000, description="Documents per bulk write.")


class NeighbourSettings(BaseModel):
    k: int = Field(10, ge=1, le=100, description="Neighbours kept per job.")
    candidates: int = Field(50, ge=1, le=1000, description="Cosine candidates reranked per job.")
    min_score: float = Field(
        0.1, ge=0, le=1, description="Blended scores below this are dropped (a floor against unrelated "
        "postings, not a quality bar: the corpus-fitted embedder's cosines are lower on small corpora; at "
        "0.3 its median list at 500 postings held 5 entries, at 0.1 it holds 10; BENCHMARKS.md)."
    )
    cosine_weight: float = Field(0.9, ge=0, le=1, description="Blend: w·cosine + (1-w)·bonus.")
    memory_budget_mb: int = Field(
        512, ge=16, description="Memory for the score blocks of one search step (block sizes "
        "follow from it; the candidate lists themselves, ~0.8 KB per job, come on top)."
    )
    recompute_days: int = Field(7, ge=1, description="similarityMetadata.nextComputeAt offset.")
    near_duplicate_cosine: float = Field(
        0.97, gt=0, le=1.01, description="Two postings with different texts are duplicates (reposts) when their "
        "cosine is at least this and their companies agree (same texts always are); a list never holds its "
        "own job's duplicates nor two of one group. Above 1 = only identical texts."
    )
    closed_list_days: int = Field(
        90, ge=0, le=3650, description="Closed or expired jobs keep a list of similar open jobs for this many "
        "days after they closed (their page is still visited); 0 = lists only for active jobs."
    )
    exact_max_jobs: int = Field(
        0, ge=0, description="0: a planner chooses each full pass (exact unless an ANN pass is "
        "predicted twice as fast by its cost model, with the GEMM rate measured at run time; "
        "docs/scaling.md). > 0: full passes over at most this many active jobs are exact, "
        "larger ones ANN."
    )
    ann_recall_target: float = Field(
        0.95, gt=0, le=1, description="The ANN pass (an IVF searched as GEMM blocks) probes, of "
        "the settings whose recall@10 on a sample, against exact search, reaches this with 95% "
        "confidence, the cheapest: one number of lists for every row, or each row the lists "
        "within a score margin of its best one; measured each run."
    )
    ann_recall_sample: int = Field(
        500, ge=10, description="Rows whose exact top-10 is computed each ANN run to tune and "
        "measure recall."
    )
    ann_nlist: int = Field(
        0, ge=0, description="IVF lists of the ANN pass; 0 = √N rounded to a power of two (16–4096)."
    )
    candidate_margin: int = Field(
        16, ge=0, le=1000, description="Extra cosine candidates kept per job in the incremental "
        "state, so a list survives that many removed neighbours before it is recomputed."
    )
    incremental: bool = Field(
        True, description="Update only the candidate lists touched by changed vectors when a "
        "valid state from an earlier run exists (result equals a full pass)."
    )
    incremental_max_churn: float = Field(
        0.1, ge=0, le=1, description="Run a full pass instead when (added + removed vectors) / "
        "active jobs exceeds this."
    )
    state_dir: str = Field(
        "~/.cache/jobsim/neighbours", description="Directory of the incremental state (candidate "
        "lists keyed by job id + vector fingerprint; a cache checked against MongoDB each run, "
        "safe to delete). Empty = no state, every run is a full pass."
    )


class ApiSettings(BaseModel):
    host: str = Field("127.0.0.1", description="Address the read-side HTTP API listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port of the read-side HTTP API.")
    mongo_uri: SecretStr | None = Field(
        None, description="MongoDB URI of the API's (read-only) user; unset = JOBSIM_MONGO__URI."
    )
    max_limit: int = Field(50, ge=1, le=200, description="Largest `limit` a similar-jobs request may ask for.")
    min_semantic: int = Field(
        3, ge=0, le=100, description="Fewer live semantic neighbours than this: request a recompute "
        "and top up with fallback results."
    )
    fallback_limit: int = Field(6, ge=1, le=100, description="Results of the category/city fallback.")
    string_ids: bool = Field(
        False, description="Also accept non-ObjectId job ids (letters, digits, _ - . :, at most 64); "
        "off = only 24-hex ObjectIds."
    )
    recompute_collection: str = Field(
        "recompute_requests", description="Collection where the API records recompute requests "
        "(the API's only write)."
    )


class OpsSettings(BaseModel):
    """Operations with Prefect: schedules, the shared writer limit, admin flows, dashboard."""

    incremental_interval_minutes: int = Field(
        15, ge=1, le=1440, description="Interval of the scheduled incremental deployment (read "
        "when scripts/stack.sh deploys prefect.yaml)."
    )
    full_rebuild_cron: str = Field(
        "0 3 * * *", description="Cron of the nightly full-rebuild deployment (read at deploy time)."
    )
    full_rebuild_timezone: str = Field("UTC", description="Time zone of the full-rebuild cron.")
    writer_limit: str = Field(
        "jobsim-writer", description="Prefect global concurrency limit (1 slot) every writing "
        "flow holds while it runs, across deployments and manual runs; empty = none."
    )
    writer_wait_s: float = Field(
        3600.0, ge=0, description="Longest wait for the writer lease (and slot) before a run gives up "
        "with a clear error."
    )
    writer_lease_s: float = Field(
        300.0, ge=5, description="The writer lease in MongoDB (`pipeline_state`, `lease:writer`): every writing "
        "run holds it, renewed every third of this; a holder silent this long is taken over (a crashed run)."
    )
    emit_import_events: bool = Field(
        True, description="`jobsim import` emits `jobsim.import.completed` when a Prefect API "
        "URL is configured (the import-triggered deployment listens for it)."
    )
    stale_processing_minutes: int = Field(
        60, ge=1, description="Housekeeping: `processing` states older than this go back to pending."
    )
    keep_runs_days: int = Field(30, ge=1, description="Housekeeping: run records older than this are deleted.")
    report_failed_jobs: int = Field(
        50, ge=0, le=1000, description="This run's failed, rejected, refused and deferred jobs listed (with "
        "reasons) in its report artifact."
    )


class ExecutionSettings(BaseModel):
    """Where the parallel steps run: embedding batches and shard-pair searches."""

    task_runner: Literal["thread", "dask"] = Field(
        "thread", description="`thread`: a thread pool in the flow's process. `dask`: prefect-dask's "
        "`DaskTaskRunner` on a temporary local cluster, or on `dask_address`."
    )
    workers: int = Field(
        2, ge=1, le=1024, description="Parallel tasks: threads of the pool, or workers of the local Dask "
        "cluster (with `dask_address`: the cluster's worker count, used to size the work)."
    )
    dask_address: str | None = Field(
        None, description="Scheduler of an existing Dask cluster (`tcp://host:8786`); unset = a "
        "temporary local cluster per run, started only when a step fans out."
    )
    dask_threads_per_worker: int = Field(1, ge=1, le=64, description="Threads per local Dask worker.")
    dask_worker_memory_mb: int = Field(
        0, ge=0, description="Memory limit per local Dask worker; 0 = Dask's default (RAM / workers)."
    )
    dask_temporary_directory: str = Field(
        "", description="Local Dask workers' scratch/spill directory (what `DASK_TEMPORARY_DIRECTORY` "
        "sets); empty = `jobsim-dask` under the system temp directory."
    )
    shard_memory_mb: int = Field(
        256, ge=1, description="Vectors per shard of the sharded exact search (float32 rows × dims); a "
        "shard-pair task holds two shards plus its score blocks, never the whole matrix."
    )
    numpy_huge_pages: bool = Field(
        False, description="Let numpy ask for transparent huge pages for its large arrays (numpy's own "
        "default). Off: small pages, whose first touch cost a sixth as much on a VM whose host backs memory "
        "with small pages (`bench/pages.py`), the searches' GEMMs as fast."
    )
    embed_batch_jobs: int = Field(
        16_384, ge=100, description="Jobs per embedding task; with more than one task in flight the "
        "rate limits are split evenly between them."
    )


class LocalStackSource(PydanticBaseSettingsSource):
    """Lowest-priority source: the local MongoDB recorded in ``.jobsim/local.json``.

    Gives ``mongo.uri`` and ``mongo.database`` unless a higher source (the environment,
    arguments) sets ``mongo.uri``: a URI of one's own replaces the record as a whole. A
    database set alone picks another database on the recorded server.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole contribution

    def __call__(self) -> dict[str, Any]:
        above = self.current_state.get("mongo")
        if isinstance(above, BaseModel) or (isinstance(above, dict) and "uri" in above):
            return {}
        entry = localstack.mongo()
        if entry is None:
            return {}
        found = {"uri": entry["uri"]}
        if isinstance(entry.get("database"), str) and entry["database"]:
            found["database"] = entry["database"]
        return {"mongo": found}


class Settings(BaseSettings):
    """Root of the settings tree (env prefix ``JOBSIM_``, nested delimiter ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix="JOBSIM_", env_nested_delimiter="__", extra="ignore"
    )

    mongo: MongoSettings = MongoSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    neighbours: NeighbourSettings = NeighbourSettings()
    api: ApiSettings = ApiSettings()
    ops: OpsSettings = OpsSettings()
    execution: ExecutionSettings = ExecutionSettings()
    watermark_overlap_s: int = Field(
        60, ge=0, description="Incremental pulls re-read this many seconds before the last "
        "run's start (clock skew between the app and the pipeline); re-reads are free."
    )
    debug: bool = Field(
        False, description="Command line: print the full traceback of an error (as `--debug` "
        "does) instead of one line."
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, then the local stack record (lowest priority)."""
        return (init_settings, env_settings, dotenv_settings, file_secret_settings,
                LocalStackSource(settings_cls))
