"""OpenAI (or any OpenAI-compatible server) embedder on the real ``openai`` client.

How a call to :meth:`OpenAIEmbedder.embed` runs:

1. **Fit**: empty texts are never sent (they fail with a reason); the rest are counted with
   the model's tokenizer (:mod:`jobsim.tokens`) and cut at ``max_input_tokens`` at a
   sentence or word boundary.
2. **Pack**: rows go into requests of ≤ ``batch_max_inputs`` inputs and
   ≤ ``batch_max_tokens`` tokens (and never more than the tokens-per-minute limit).
3. **Send**: ``concurrency`` workers on one ``AsyncOpenAI`` client share a client-side
   limiter on requests/minute and tokens/minute. ``embed`` stays synchronous for its
   caller: it runs its own event loop (in a helper thread when the caller already has one).
4. **Decode and validate**: ``encoding_format="base64"`` is asked for explicitly and each
   vector is decoded with ``np.frombuffer`` straight into the float32 result matrix. The
   ``index`` field places vectors (a shuffled response is fine); a vector of the wrong
   dimension, undecodable or not finite fails only its own row; rows missing from a
   response are asked for again.

**One retry layer: ours.** The ``openai`` client is built with ``max_retries=0``; this
module retries, because it has to see every failure: to share one pause among all workers
when the server says ``Retry-After``, to count retries and 429s, and to split a batch
instead of retrying it. What is retried (at most ``max_retries`` times per request, with
exponential backoff ``retry_base_delay_s·2^n`` and jitter, capped at ``retry_max_delay_s``):
429 (waiting at least ``Retry-After`` / ``retry-after-ms`` / the relevant
``x-ratelimit-reset-*``, for every worker), 408/409, 5xx (a ``Retry-After`` on them is
honoured too), timeouts, connection errors and unparseable responses. Never retried:
401/403/404 (credentials, permission or model: no input can succeed, so nothing more is
sent and ``embed`` raises ``EmbeddingError`` instead of failing every job) and other 4xx.

**Failure isolation.** A request rejected with another 4xx (e.g. 400 for one bad input), or
one whose 5xx/timeout retries ran out, is split in halves that are sent on their own, down
to single inputs: only the offending input(s) fail. A batch whose 429s or connection errors
outlast the retries is not split (that is not about its inputs): its rows fail with the
reason and are listed in ``EmbeddingResult.transient``. Every row ends embedded or in
``EmbeddingResult.errors`` with a reason; none is embedded twice. The JSON is decoded from
the raw response (the client still raises on HTTP errors), which skips building one
pydantic object per vector.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import email.utils
import json
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import openai

from jobsim.batching import pack_requests
from jobsim.embedders import EmbeddingResult
from jobsim.errors import ConfigError, EmbeddingError
from jobsim.settings import EmbeddingSettings
from jobsim.tokens import fit_texts

log = logging.getLogger(__name__)

FATAL_STATUSES = frozenset({401, 403, 404})  # credentials or model: no input can succeed
RETRY_STATUSES = frozenset({408, 409})  # request timeout, conflict: transient 4xx (as openai's own)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


# -- pure helpers ------------------------------------------------------------------
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


def parse_duration(value: str) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value such as ``1s``, ``6m0s``, ``20ms``, ``0.5``."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long a 429 asks us to wait, from its headers; None when they don't say.

    Order: ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date), then the
    ``x-ratelimit-reset-*`` of the exhausted limit (both when neither says it is exhausted).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(0.0, float(lower["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" in lower:
        value = lower["retry-after"].strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value).timestamp()
                return max(0.0, when - (time.time() if now is None else now))
            except (TypeError, ValueError):
                pass
    resets = []
    for kind in ("requests", "tokens"):
        reset = lower.get(f"x-ratelimit-reset-{kind}")
        remaining = lower.get(f"x-ratelimit-remaining-{kind}")
        seconds = parse_duration(reset) if reset else None
        if seconds is not None:
            resets.append((remaining is not None and remaining.strip() == "0", seconds))
    exhausted = [s for flag, s in resets if flag]
    if exhausted:
        return max(exhausted)
    return max((s for _, s in resets), default=None)


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: uniform in [d/2, d], d = min(cap, base·2^retry)."""
    delay = min(cap, base * (2**retry))
    return delay / 2 + rng.uniform(0, delay / 2)


# -- client-side limiter -------------------------------------------------------------
class RateLimiter:
    """Token buckets for requests/minute and tokens/minute, plus a shared pause.

    Holds only numbers (monotonic clock), so it outlives the event loop of one ``embed``
    call; it must be used from one loop at a time. Each bucket holds one minute's worth and
    refills continuously; a pause (a 429's Retry-After) stops every sender until it ends.
    """

    def __init__(self, requests_per_minute: int, tokens_per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = (float(requests_per_minute), float(tokens_per_minute))
        self.level = list(self.capacity)
        self.clock = clock
        self.stamp = clock()
        self.paused_until = 0.0

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        self.stamp = now
        for k in (0, 1):
            self.level[k] = min(self.capacity[k], self.level[k] + elapsed * self.capacity[k] / 60)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def wait_time(self, tokens: int) -> float:
        """Seconds until one request of ``tokens`` may go (0 = now, and it is then charged)."""
        now = self.clock()
        if now < self.paused_until:
            return self.paused_until - now
        self._refill(now)
        need = (1.0, min(float(tokens), self.capacity[1]))
        waits = [max(0.0, (need[k] - self.level[k]) * 60 / self.capacity[k]) for k in (0, 1)]
        if max(waits) > 0:
            return max(waits)
        self.level[0] -= need[0]
        self.level[1] -= need[1]
        return 0.0

    async def acquire(self, tokens: int) -> None:
        while (wait := self.wait_time(tokens)) > 0:
            await asyncio.sleep(wait)


# -- the embedder ------------------------------------------------------------------
@dataclass
class _Batch:
    rows: list[int]
    tokens: int
    missing_rounds: int = 0  # times rows of this batch came back without a vector


@dataclass
class _Run:
    """State of one ``embed`` call; batch rows index ``texts``, ``positions`` maps to the caller's."""

    texts: list[str]
    tokens: np.ndarray
    positions: np.ndarray  # caller's row of each sent text
    result: EmbeddingResult
    queue: deque[_Batch] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    fatal: str | None = None


class _Permanent(Exception):
    """A request failed for good; ``split`` says whether halves of it may still succeed."""

    def __init__(self, reason: str, split: bool, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.split = split
        self.transient = transient


class OpenAIEmbedder:
    """Token-budget batching, bounded concurrency, rate limits, retries and validation."""

    def __init__(self, settings: EmbeddingSettings, seed: int | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self.dimensions = settings.dimensions
        self.send_dimensions = settings.model.startswith("text-embedding-3")
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self._rng = random.Random(seed)

    # sync entry point ------------------------------------------------------------
    def embed(self, texts: list[str]) -> EmbeddingResult:
        """Embed ``texts``; rows that could not be embedded are listed in ``errors``."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._embed(texts))
        # called from inside a running loop: run ours in a helper thread
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="embed") as pool:
            return pool.submit(asyncio.run, self._embed(texts)).result()

    # async core --------------------------------------------------------------------
    async def _embed(self, texts: list[str]) -> EmbeddingResult:
        cfg = self.settings
        started = time.perf_counter()
        result = EmbeddingResult(vectors=np.zeros((len(texts), self.dimensions), np.float32))
        sendable = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        for i in set(range(len(texts))) - set(sendable):
            result.errors[i] = "empty text: nothing to embed"
        per_input = min(cfg.max_input_tokens, cfg.batch_max_tokens, cfg.tokens_per_minute)
        fitted = fit_texts([texts[i] for i in sendable], per_input, cfg.encoding)
        if fitted.truncated:
            log.info("%d inputs truncated to %d tokens", len(fitted.truncated), per_input)
        run = _Run(fitted.texts, fitted.tokens, np.asarray(sendable, dtype=np.int64), result)
        budget = min(cfg.batch_max_tokens, cfg.tokens_per_minute)
        for rows in pack_requests(fitted.tokens, cfg.batch_max_inputs, budget):
            run.queue.append(_Batch(rows, int(fitted.tokens[rows].sum())))
        if run.queue:
            try:
                client = openai.AsyncOpenAI(
                    api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
                    base_url=cfg.base_url, timeout=cfg.request_timeout_s, max_retries=0,
                )
            except openai.OpenAIError as exc:  # no key anywhere
                raise ConfigError("the openai provider needs an API key: set "
                                  "JOBSIM_EMBEDDING__API_KEY (or OPENAI_API_KEY)") from exc
            async with client:
                wakeup = asyncio.Event()
                active = [0]
                workers = [asyncio.create_task(self._worker(client, run, wakeup, active))
                           for _ in range(cfg.concurrency)]
                await asyncio.gather(*workers)
            if run.fatal:  # a wrong key or model is the operator's to fix: fail the run, not the jobs
                raise EmbeddingError(f"{run.fatal}; nothing more was sent (check "
                                     "JOBSIM_EMBEDDING__API_KEY / MODEL / BASE_URL)")
        log.info("embedded %d inputs in %d requests (%d tokens, %d retries, %d rate-limited, "
                 "%d failed) in %.2f s", len(texts) - len(result.errors), result.requests,
                 result.tokens, result.retries, result.rate_limited, len(result.errors),
                 time.perf_counter() - started)
        return result

    async def _worker(self, client: openai.AsyncOpenAI, run: _Run, wakeup: asyncio.Event,
                      active: list[int]) -> None:
        """Take batches until the queue is empty and no other worker can add more."""
        while True:
            if not run.queue:
                if active[0] == 0:
                    wakeup.set()
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            batch = run.queue.popleft()
            active[0] += 1
            try:
                await self._send(client, run, batch)
            finally:
                active[0] -= 1
                wakeup.set()

    async def _send(self, client: openai.AsyncOpenAI, run: _Run, batch: _Batch) -> None:
        """One batch: retry transient failures, split permanent ones, store what came back."""
        cfg, out = self.settings, run.result
        try:
            data = await self._request_with_retries(client, run, batch)
        except _Permanent as exc:
            if exc.split and len(batch.rows) > 1:
                half = len(batch.rows) // 2
                for part in (batch.rows[:half], batch.rows[half:]):
                    run.queue.append(_Batch(part, int(run.tokens[part].sum())))
                log.info("split a failed batch of %d inputs (%s)", len(batch.rows), exc.reason)
                return
            for r in batch.rows:
                out.errors[int(run.positions[r])] = exc.reason
                if exc.transient:
                    out.transient.add(int(run.positions[r]))
            return
        missing = self._store(run, batch, data)
        if missing:
            if batch.missing_rounds < cfg.max_retries:
                out.retries += 1
                run.queue.append(_Batch(missing, int(run.tokens[missing].sum()),
                                        batch.missing_rounds + 1))
            else:
                for r in missing:
                    out.errors[int(run.positions[r])] = (
                        f"response had no vector for this input ({batch.missing_rounds + 1} requests)")

    async def _request_with_retries(self, client: openai.AsyncOpenAI, run: _Run,
                                    batch: _Batch) -> list:
        cfg, out = self.settings, run.result
        extra = {"dimensions": self.dimensions} if self.send_dimensions else {}
        inputs = [run.texts[r] for r in batch.rows]
        last = ""
        for attempt in range(cfg.max_retries + 1):
            if run.fatal:
                raise _Permanent(run.fatal, split=False)
            if attempt:
                out.retries += 1
            await self.limiter.acquire(batch.tokens)
            out.requests += 1
            wait: float | None = None
            try:
                # raw response: the client still raises on HTTP errors, but we skip building
                # one pydantic object per vector (~90 µs/input) and decode the JSON ourselves
                raw = await client.embeddings.with_raw_response.create(
                    input=inputs, model=self.model, encoding_format="base64", **extra
                )
                payload = json.loads(raw.content)
                data = payload.get("data") if isinstance(payload, dict) else None
                if not isinstance(data, list):
                    raise ValueError("response has no data list")
            except openai.RateLimitError as exc:
                out.rate_limited += 1
                last = f"rate limited (429) {cfg.max_retries + 1} times"
                wait = retry_after_seconds(exc.response.headers)
                if wait is not None:
                    wait = min(wait, cfg.retry_max_delay_s)
                    self.limiter.pause(wait)
                    wait += self._rng.uniform(0, min(0.1 * wait, 1.0))
            except openai.APIStatusError as exc:  # every other HTTP status
                status = exc.status_code
                detail = _short(getattr(exc, "message", "") or str(exc))
                if status in FATAL_STATUSES:
                    run.fatal = f"embedding request refused: HTTP {status} ({detail})"
                    log.error("embedding provider refused all requests: HTTP %d", status)
                    raise _Permanent(run.fatal, split=False) from None
                if status < 500 and status not in RETRY_STATUSES:
                    raise _Permanent(f"embedding request rejected: HTTP {status} ({detail})",
                                     split=True) from None
                last = f"server error HTTP {status} after {cfg.max_retries + 1} requests"
                wait = retry_after_seconds(exc.response.headers)  # a 503 may say when
                if wait is not None:
                    wait = min(wait, cfg.retry_max_delay_s)
            except openai.APITimeoutError:
                last = f"request timed out after {cfg.request_timeout_s:g} s, {cfg.max_retries + 1} times"
            except openai.APIConnectionError as exc:
                last = f"cannot reach the embedding server ({type(exc.__cause__ or exc).__name__})"
            except (openai.APIResponseValidationError, ValueError) as exc:
                last = f"unreadable response ({_short(str(exc))})"
            else:
                out.tokens += _usage_tokens(payload.get("usage"), batch.tokens)
                return data
            if attempt < cfg.max_retries:
                if wait is None:
                    wait = backoff_delay(attempt, cfg.retry_base_delay_s, cfg.retry_max_delay_s,
                                         self._rng)
                log.warning("embedding request of %d inputs failed (%s); retry %d in %.2f s",
                            len(batch.rows), last.split(" after")[0], attempt + 1, wait)
                await asyncio.sleep(wait)
        # retries exhausted: a rate limit or an unreachable server is not about the inputs
        not_input = last.startswith(("rate limited", "cannot reach"))
        raise _Permanent(last, split=not not_input, transient=not_input)

    def _store(self, run: _Run, batch: _Batch, data: list) -> list[int]:
        """Decode ``data`` into the rows of ``batch``; returns the rows still without a vector."""
        out = run.result
        count = len(batch.rows)
        seen: dict[int, int] = {}
        bad: dict[int, str] = {}
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < count:
                log.warning("response vector with index %r outside the request's %d inputs",
                            index, count)
                continue
            seen[index] = seen.get(index, 0) + 1
            row = int(run.positions[batch.rows[index]])
            if seen[index] > 1 or row in run.done:
                bad[index] = "response had two vectors for this input"
                continue
            try:  # straight into the caller's matrix
                out.vectors[row] = decode_vector(item.get("embedding"), self.dimensions)
            except ValueError as exc:
                bad[index] = f"invalid vector in response: {exc}"
        for index, reason in bad.items():
            row = int(run.positions[batch.rows[index]])
            out.vectors[row] = 0
            out.errors[row] = reason
        for index in seen.keys() - bad.keys():
            run.done.add(int(run.positions[batch.rows[index]]))
        return [r for i, r in enumerate(batch.rows) if i not in seen]


def _usage_tokens(usage: object, fallback: int) -> int:
    """Billed tokens from a response's ``usage``; our own count when the server gives none."""
    if isinstance(usage, dict):
        for name in ("total_tokens", "prompt_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and value >= 0:
                return value
    return fallback


def _short(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
