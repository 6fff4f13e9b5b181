"""OpenAI (or any OpenAI-compatible server) embedder using the real ``openai`` client."""

from __future__ import annotations

import base64
import binascii
import logging

import numpy as np
import openai

from jobsim.embedders import EmbeddingResult
from jobsim.settings import EmbeddingSettings

log = logging.getLogger(__name__)


def decode_vector(value: object, dimensions: int) -> np.ndarray:
    """One response vector (base64 float32 or a list of floats) → float32 array.

    Raises ValueError when it is malformed, of the wrong dimension or not finite.
    """
    if isinstance(value, str):
        try:
            vector = np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4")
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"undecodable vector ({exc})") from None
    else:
        vector = np.asarray(value, dtype=np.float32)
    if vector.shape != (dimensions,):
        raise ValueError(f"vector has dimension {vector.size}, expected {dimensions}")
    if not np.isfinite(vector).all():
        raise ValueError("vector has non-finite values")
    return vector


class OpenAIEmbedder:
    """Batches texts into requests and decodes base64 responses into one matrix."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self.model = settings.model
        self.dimensions = settings.dimensions
        self._client = openai.OpenAI(
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            base_url=settings.base_url,
            timeout=settings.request_timeout_s,
            max_retries=settings.max_retries,
        )

    def embed(self, texts: list[str]) -> EmbeddingResult:
        result = EmbeddingResult(vectors=np.zeros((len(texts), self.dimensions), np.float32))
        step = self.settings.batch_max_inputs
        for start in range(0, len(texts), step):
            self._embed_batch(texts, start, min(start + step, len(texts)), result)
        return result

    def _embed_batch(self, texts: list[str], lo: int, hi: int, out: EmbeddingResult) -> None:
        extra = {"dimensions": self.dimensions} if self.model.startswith("text-embedding-3") else {}
        try:
            response = self._client.embeddings.create(
                input=texts[lo:hi], model=self.model, encoding_format="base64", **extra
            )
        except openai.APIError as exc:
            reason = f"embedding request failed: {type(exc).__name__}"
            out.errors.update({i: reason for i in range(lo, hi)})
            out.requests += 1
            return
        out.requests += 1
        out.tokens += getattr(response.usage, "total_tokens", 0) or 0
        seen: set[int] = set()
        for item in response.data:
            index = lo + item.index
            if not lo <= index < hi or index in seen:
                continue
            try:
                out.vectors[index] = decode_vector(item.embedding, self.dimensions)
                seen.add(index)
            except ValueError as exc:
                out.errors[index] = str(exc)
        for index in range(lo, hi):
            if index not in seen and index not in out.errors:
                out.errors[index] = "response has no vector for this input"
