"""Transport: one embeddings request on the real ``openai`` client, and its decoding.

The client is built with ``max_retries=0`` (the retry policy is ours) and asked for
``encoding_format="base64"``. The response JSON is decoded from the raw body (the client
still raises its typed errors on HTTP statuses), which skips building one pydantic object
per vector (~90 µs/input); each vector is decoded with ``np.frombuffer``. The ``index``
field places vectors (a shuffled response is fine); a vector that is undecodable, of the
wrong dimension or not finite fails only its own row.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import openai

from jobsim.errors import ConfigError
from jobsim.settings import EmbeddingSettings

log = logging.getLogger(__name__)


def make_client(settings: EmbeddingSettings) -> openai.AsyncOpenAI:
    """The async client for ``settings``; ConfigError when no API key is set anywhere."""
    try:
        return openai.AsyncOpenAI(
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            base_url=settings.base_url, timeout=settings.request_timeout_s, max_retries=0,
        )
    except openai.OpenAIError as exc:  # no key anywhere
        raise ConfigError("the openai provider needs an API key: set "
                          "JOBSIM_EMBEDDING__API_KEY (or OPENAI_API_KEY)") from exc


@dataclass(frozen=True)
class Response:
    """The parts of an embeddings response we use."""

    data: list  # the ``data`` items, undecoded
    usage: object  # the ``usage`` object, as sent


async def post_embeddings(client: openai.AsyncOpenAI, inputs: list[str], model: str,
                          dimensions: int | None) -> Response:
    """Send one request. Raises the client's errors, or ValueError for an unreadable body."""
    extra = {"dimensions": dimensions} if dimensions is not None else {}
    raw = await client.embeddings.with_raw_response.create(
        input=inputs, model=model, encoding_format="base64", **extra
    )
    payload = json.loads(raw.content)
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("response has no data list")
    return Response(data, payload.get("usage"))


def usage_tokens(usage: object, fallback: int) -> int:
    """Billed tokens from a response's ``usage``; our own count when the server gives none."""
    if isinstance(usage, dict):
        for name in ("total_tokens", "prompt_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and value >= 0:
                return value
    return fallback


def decode_vector(value: object, dimensions: int) -> np.ndarray:
    """One response vector (base64 little-endian float32, or a list of floats) → float32 array.

    Raises ValueError when it is malformed, of the wrong dimension or not finite.
    """
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
            vector = np.frombuffer(raw, dtype="<f4")
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"undecodable vector ({exc})") from None
    elif not isinstance(value, (list, tuple)):
        raise ValueError(f"undecodable vector (got {type(value).__name__})")
    else:
        try:
            vector = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"undecodable vector ({exc})") from None
    if vector.shape != (dimensions,):
        raise ValueError(f"vector has dimension {vector.size}, expected {dimensions}")
    if not np.isfinite(vector).all():
        raise ValueError("vector has non-finite values")
    return vector


@dataclass
class Decoded:
    """A response's vectors by request index; ``bad`` holds the indices that failed."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    bad: dict[int, str] = field(default_factory=dict)  # index -> reason

    @property
    def seen(self) -> set[int]:
        """Indices the response answered, well or badly."""
        return self.vectors.keys() | self.bad.keys()


def decode_items(data: list, count: int, dimensions: int) -> Decoded:
    """Decode the ``data`` items of a response to a request of ``count`` inputs."""
    out = Decoded()
    for item in data:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
            log.warning("response vector with index %r outside the request's %d inputs",
                        index, count)
            continue
        if index in out.vectors or index in out.bad:
            out.vectors.pop(index, None)
            out.bad[index] = "response had two vectors for this input"
            continue
        try:
            out.vectors[index] = decode_vector(item.get("embedding"), dimensions)
        except ValueError as exc:
            out.bad[index] = f"invalid vector in response: {exc}"
    return out
