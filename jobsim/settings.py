"""All jobsim settings: one class tree, env prefix ``JOBSIM_``, nested with ``__``.

Loaded once (``Settings()``) at the entry point (flow, CLI, API) and passed down.
Nothing else in jobsim reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class EmbeddingSettings(BaseModel):
    provider: Literal["local", "openai"] = Field(
        "local", description="'local' = offline hashed n-gram embedder; 'openai' = OpenAI API."
    )
    model: str = Field(
        "",
        description="Model name; default 'text-embedding-3-small' for openai, "
        "'jobsim-hash-ngram-v1' for local.",
    )
    dimensions: int = Field(512, ge=8, le=4096, description="Vector dimension.")
    api_key: SecretStr | None = Field(
        None, description="OpenAI API key; unset = the openai client's OPENAI_API_KEY."
    )
    base_url: str | None = Field(
        None, description="OpenAI-compatible server URL; unset = OPENAI_BASE_URL or api.openai.com."
    )
    batch_max_inputs: int = Field(2048, ge=1, le=2048, description="Inputs per request.")
    batch_max_tokens: int = Field(300_000, ge=1000, description="Tokens summed per request.")
    max_input_tokens: int = Field(8192, ge=16, description="Per-input token limit of the model.")
    request_timeout_s: float = Field(60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(6, ge=0, le=20, description="Retries of a transient failure.")
    max_attempts: int = Field(3, ge=1, description="Runs in which a failing job is retried.")
    price_per_million_tokens: float = Field(0.02, ge=0, description="USD, for the cost estimate.")

    @model_validator(mode="after")
    def _default_model(self) -> "EmbeddingSettings":
        if not self.model:
            self.model = (
                "text-embedding-3-small" if self.provider == "openai" else "jobsim-hash-ngram-v1"
            )
        return self


class NeighbourSettings(BaseModel):
    k: int = Field(10, ge=1, le=100, description="Neighbours kept per job.")
    candidates: int = Field(50, ge=1, le=1000, description="Cosine candidates reranked per job.")
    min_score: float = Field(0.3, ge=0, le=1, description="Blended scores below this are dropped.")
    cosine_weight: float = Field(0.9, ge=0, le=1, description="Blend: w·cosine + (1-w)·bonus.")
    memory_budget_mb: int = Field(512, ge=16, description="Memory for one score block.")
    recompute_days: int = Field(7, ge=1, description="similarityMetadata.nextComputeAt offset.")


class Settings(BaseSettings):
    """Root of the settings tree (env prefix ``JOBSIM_``, nested delimiter ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix="JOBSIM_", env_nested_delimiter="__", extra="ignore"
    )

    mongo: MongoSettings = MongoSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    neighbours: NeighbourSettings = NeighbourSettings()
    watermark_overlap_s: int = Field(
        60, ge=0, description="Incremental pulls re-read this many seconds before the last "
        "run's start (clock skew between the app and the pipeline); re-reads are free."
    )
