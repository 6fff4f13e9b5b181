"""Embedding settings (``JOBSIM_EMBEDDING__*``), a branch of :class:`jobsim.settings.Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

FITTED_FAMILY = "jobsim-fitted-v1"  # the local embedder fitted on the corpus (jobsim.embedders.fitted)


class EmbeddingSettings(BaseModel):
    provider: Literal["local", "openai"] = Field(
        "local", description="'local' = offline embedder (see model); 'openai' = OpenAI API or a compatible server."
    )
    model: str = Field(
        "",
        description="Model name; default 'text-embedding-3-small' for openai, "
        "'jobsim-fitted-v1' for local (fitted on the corpus, a new version on every full rebuild; "
        "the corpus-blind hashing embedders jobsim-hash-ngram-v1/v2/v3 stay available).",
    )
    dimensions: int = Field(
        512, ge=8, le=4096, description="Vector dimension; default 512 for local, 1536 for openai "
        "(text-embedding-3 models are sent it as `dimensions`, e.g. 512 for shorter vectors)."
    )
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
    max_retries: int = Field(
        6, ge=0, le=20, description="Retries of one request after a transient failure (429, 5xx, "
        "timeout, connection) while other requests succeed; then its jobs stay pending. While "
        "none succeeds the circuit breaker below decides. jobsim's own retry loop, the openai "
        "client's is off."
    )
    concurrency: int = Field(4, ge=1, le=64, description="Embedding requests in flight at once.")
    requests_per_minute: int = Field(
        3000, ge=1, description="Client-side limit on requests sent per minute (the API tier's RPM)."
    )
    tokens_per_minute: int = Field(
        1_000_000, ge=1000, description="Client-side limit on input tokens sent per minute (TPM); "
        "requests are also packed to at most this many tokens."
    )
    retry_base_delay_s: float = Field(
        0.5, gt=0, description="First backoff delay; doubles per retry, with jitter."
    )
    retry_max_delay_s: float = Field(
        30.0, gt=0, description="Longest wait before one retry (backoff, Retry-After and "
        "x-ratelimit-reset-* headers are capped here)."
    )
    breaker_failures: int = Field(
        8, ge=1, le=1000, description="Circuit breaker: after this many consecutive requests "
        "failed for a transient cause (429, 5xx, timeout, connection, unreadable response), one "
        "embedding call stops sending; the rows it has not embedded stay pending (no attempt "
        "spent) and the run reports the service unavailable. While requests fail, one at a time "
        "probes the service."
    )
    outage_max_s: float = Field(
        120.0, gt=0, description="Circuit breaker: stop as well when no request has succeeded for "
        "this long since the failures began; a sustained outage ends within this plus one "
        "request timeout."
    )
    encoding: str = Field(
        "cl100k_base", description="Tokenizer used to count and truncate inputs (the model's BPE)."
    )
    max_attempts: int = Field(3, ge=1, description="Runs in which a failing job is retried.")
    refit_on_full_rebuild: bool = Field(
        True, description="jobsim-fitted-v1: fit a new model on every full rebuild (its version changes, so the "
        "same run re-embeds every listed job); off = keep the stored model until it is deleted."
    )
    price_per_million_tokens: float = Field(0.02, ge=0, description="USD, for the cost estimate.")

    def shared_by(self, parts: int) -> EmbeddingSettings:
        """These settings for one of ``parts`` embedding tasks running at once: the rate
        limits and the request concurrency split evenly between them."""
        if parts <= 1:
            return self
        return self.model_copy(update={
            "requests_per_minute": max(1, self.requests_per_minute // parts),
            "tokens_per_minute": max(1000, self.tokens_per_minute // parts),
            "concurrency": max(1, self.concurrency // parts),
        })

    @model_validator(mode="after")
    def _default_model(self) -> "EmbeddingSettings":
        if not self.model:
            self.model = (
                "text-embedding-3-small" if self.provider == "openai" else FITTED_FAMILY
            )
        if self.provider == "openai" and "dimensions" not in self.model_fields_set:
            self.dimensions = 1536  # text-embedding-3-small's native size
        return self
