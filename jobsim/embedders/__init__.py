"""Embedders behind one small interface: texts in, one float32 matrix out.

``make_embedder(settings)`` picks the provider named in the settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from jobsim.settings import EmbeddingSettings


@dataclass
class EmbeddingResult:
    """Vectors for a list of texts. Rows listed in ``errors`` hold no valid vector."""

    vectors: np.ndarray  # (n, d) float32, C-contiguous; rows in ``errors`` are zero
    errors: dict[int, str] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: list[str]) -> EmbeddingResult: ...


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.provider == "openai":
        from jobsim.embedders.openai_api import OpenAIEmbedder

        return OpenAIEmbedder(settings)
    from jobsim.embedders.local import LocalEmbedder

    return LocalEmbedder(settings.model, settings.dimensions)
