"""Embedders behind one small interface: texts in, one float32 matrix out.

``make_embedder(settings)`` picks the provider named in the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from jobsim.errors import ConfigError
from jobsim.settings import FITTED_FAMILY, EmbeddingSettings

if TYPE_CHECKING:
    from jobsim.embedders.fitted_model import FittedModel


@dataclass
class EmbeddingResult:
    """Vectors for a list of texts. Rows listed in ``errors`` hold no valid vector.

    Every row is either embedded or in ``errors`` with a reason an operator can read.
    The counters are zero for offline embedders.
    """

    vectors: np.ndarray  # (n, d) float32, C-contiguous; rows in ``errors`` are zero
    errors: dict[int, str] = field(default_factory=dict)  # row -> reason
    requests: int = 0  # HTTP requests sent, retries included
    tokens: int = 0  # input tokens billed (the responses' ``usage``)
    retries: int = 0  # requests that repeated an earlier one (after a failure or a gap)
    rate_limited: int = 0  # 429 responses
    # rows of ``errors`` that failed through no fault of their text (rate limit, server error,
    # timeout or unreachable server after every retry, or never sent because the service was
    # declared unavailable): a caller may leave them pending instead of counting an attempt
    transient: set[int] = field(default_factory=set)
    # set when the call stopped sending because the service looks down (circuit breaker):
    # one line, e.g. "embedding service unavailable: HTTP 500 on 8 consecutive requests";
    # the rows it had not embedded by then are in ``transient``. A caller should send no more.
    unavailable: str | None = None


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: list[str]) -> EmbeddingResult: ...


def make_embedder(settings: EmbeddingSettings, fitted: FittedModel | None = None) -> Embedder:
    """The embedder the settings ask for; ``fitted`` = the corpus-fitted model the run uses
    (the local provider's default, :mod:`jobsim.embedders.fitted`)."""
    if settings.provider == "openai":
        from jobsim.embedders.openai import OpenAIEmbedder

        return OpenAIEmbedder(settings)
    if fitted is not None:
        from jobsim.embedders.fitted import FittedEmbedder

        return FittedEmbedder(fitted)
    if is_fitted(settings):
        raise ConfigError(f"{settings.model} needs its fitted model (the run fits or loads it first)")
    from jobsim.embedders.local import LocalEmbedder

    return LocalEmbedder(settings.model, settings.dimensions)


def is_fitted(settings: EmbeddingSettings) -> bool:
    """Whether the settings name the corpus-fitted local embedder (fitted per corpus)."""
    return settings.provider == "local" and settings.model.startswith(FITTED_FAMILY)
