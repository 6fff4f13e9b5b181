"""The OpenAI embedder: fit, pack, send with bounded concurrency, store what came back.

How a call to :meth:`OpenAIEmbedder.embed` runs:

1. **Fit**: empty texts are never sent (they fail with a reason); the rest are counted with
   the model's tokenizer (:mod:`jobsim.tokens`) and cut at ``max_input_tokens`` at a
   sentence or word boundary.
2. **Pack**: rows go into requests of ≤ ``batch_max_inputs`` inputs and
   ≤ ``batch_max_tokens`` tokens (and never more than the tokens-per-minute limit).
3. **Send**: ``concurrency`` workers on one ``AsyncOpenAI`` client; each request passes the
   :mod:`~jobsim.embedders.openai.gate` (rate limits, shared backoff, one probe at a time
   while failing, circuit breaker). ``embed`` stays synchronous for its caller: it runs its
   own event loop (in a helper thread when the caller already has one).
4. **Settle** each batch by what :mod:`~jobsim.embedders.openai.policy` makes of it:
   vectors are decoded (:mod:`~jobsim.embedders.openai.transport`) straight into the
   result matrix, rows missing from a response are asked for again; an *input* failure
   (400 …) splits the batch in halves down to the offending input; a *fatal* one
   (401/403/404) stops everything and ``embed`` raises ``EmbeddingError``; a *transient*
   one is retried, never split. A batch gives up after ``max_retries`` retries only while
   other requests succeed: then a server error (5xx) is about its inputs and the batch is
   split down to the input that breaks the server, while a rate limit, timeout or lost
   connection leaves its rows transient. When no request succeeds, the failures are the
   service's and the circuit breaker ends them, also for a lone batch. Once it
   opens, every row not yet embedded comes back transient and
   ``EmbeddingResult.unavailable`` says why.

Every row ends embedded or in ``EmbeddingResult.errors`` with a reason; none twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import openai

from jobsim.batching import pack_requests
from jobsim.embedders import EmbeddingResult
from jobsim.embedders.openai.breaker import CircuitBreaker
from jobsim.embedders.openai.gate import Gate
from jobsim.embedders.openai.limiter import RateLimiter
from jobsim.embedders.openai.policy import RATE_LIMITED, Failure, Kind, classify
from jobsim.embedders.openai.transport import (
    Response, decode_items, make_client, post_embeddings, usage_tokens,
)
from jobsim.errors import EmbeddingError
from jobsim.settings import EmbeddingSettings
from jobsim.tokens import fit_texts

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    rows: list[int]  # indices into _Run.texts
    tokens: int
    missing_rounds: int = 0  # times rows of this batch came back without a vector


@dataclass
class _Run:
    """State of one ``embed`` call; batch rows index ``texts``, ``positions`` maps to the caller's."""

    texts: list[str]
    tokens: np.ndarray
    positions: np.ndarray  # caller's row of each sent text
    result: EmbeddingResult
    gate: Gate
    queue: deque[_Batch] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)  # caller rows embedded
    fatal: str | None = None
    active: int = 0  # batches being sent
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class OpenAIEmbedder:
    """Token-budget batching, bounded concurrency, rate limits, retries, breaker, validation."""

    def __init__(self, settings: EmbeddingSettings, seed: int | None = None) -> None:
        self.settings = settings
        self.model = settings.model
        self.dimensions = settings.dimensions
        self.send_dimensions = settings.model.startswith("text-embedding-3")
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self._rng = random.Random(seed)

    def embed(self, texts: list[str]) -> EmbeddingResult:
        """Embed ``texts``; rows that could not be embedded are listed in ``errors``."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._embed(texts))
        # called from inside a running loop: run ours in a helper thread
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="embed") as pool:
            return pool.submit(asyncio.run, self._embed(texts)).result()

    async def _embed(self, texts: list[str]) -> EmbeddingResult:
        started = time.perf_counter()
        run = self._plan(texts)
        result = run.result
        if run.queue:
            async with make_client(self.settings) as client:
                workers = [self._worker(client, run) for _ in range(self.settings.concurrency)]
                await asyncio.gather(*workers)
            if run.fatal:  # a wrong key or model is the operator's to fix: fail the run, not the jobs
                raise EmbeddingError(f"{run.fatal}; nothing more was sent (check "
                                     "JOBSIM_EMBEDDING__API_KEY / MODEL / BASE_URL)")
            result.unavailable = run.gate.breaker.reason
        log.info("embedded %d inputs in %d requests (%d tokens, %d retries, %d rate-limited, "
                 "%d failed, %d transient) in %.2f s", len(texts) - len(result.errors),
                 result.requests, result.tokens, result.retries, result.rate_limited,
                 len(result.errors), len(result.transient), time.perf_counter() - started)
        if result.unavailable:
            log.error("stopped sending: %s", result.unavailable)
        return result

    def _plan(self, texts: list[str]) -> _Run:
        """Fit the sendable texts to the token limits and pack them into batches."""
        cfg = self.settings
        result = EmbeddingResult(vectors=np.zeros((len(texts), self.dimensions), np.float32))
        sendable = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        for i in set(range(len(texts))) - set(sendable):
            result.errors[i] = "empty text: nothing to embed"
        per_input = min(cfg.max_input_tokens, cfg.batch_max_tokens, cfg.tokens_per_minute)
        fitted = fit_texts([texts[i] for i in sendable], per_input, cfg.encoding)
        if fitted.truncated:
            log.info("%d inputs truncated to %d tokens", len(fitted.truncated), per_input)
        breaker = CircuitBreaker(cfg.breaker_failures, cfg.outage_max_s)
        gate = Gate(self.limiter, breaker, cfg.retry_base_delay_s, cfg.retry_max_delay_s, self._rng)
        run = _Run(fitted.texts, fitted.tokens, np.asarray(sendable, dtype=np.int64), result, gate)
        budget = min(cfg.batch_max_tokens, cfg.tokens_per_minute)
        for rows in pack_requests(fitted.tokens, cfg.batch_max_inputs, budget):
            run.queue.append(_Batch(rows, int(fitted.tokens[rows].sum())))
        return run

    async def _worker(self, client: openai.AsyncOpenAI, run: _Run) -> None:
        """Take batches until the queue is empty and no other worker can add more."""
        while True:
            if run.gate.breaker.is_open or run.fatal:
                while run.queue:  # never sent: transient, with the breaker's reason
                    self._settle(run, run.queue.popleft().rows, run.gate.breaker.reason, True)
            if not run.queue:
                if run.active == 0:
                    run.wakeup.set()
                    return
                run.wakeup.clear()
                await run.wakeup.wait()
                continue
            batch = run.queue.popleft()
            run.active += 1
            try:
                await self._send(client, run, batch)
            finally:
                run.active -= 1
                run.wakeup.set()

    async def _send(self, client: openai.AsyncOpenAI, run: _Run, batch: _Batch) -> None:
        """One batch: request it (with retries), then store the vectors that came back."""
        response = await self._request(client, run, batch)
        if response is None:
            return  # settled: split, failed, or left transient
        missing = self._store(run, batch, response.data)
        if not missing:
            return
        if batch.missing_rounds < self.settings.max_retries:
            run.result.retries += 1
            run.queue.append(_Batch(missing, int(run.tokens[missing].sum()), batch.missing_rounds + 1))
        else:
            reason = f"response had no vector for this input ({batch.missing_rounds + 1} requests)"
            self._settle(run, missing, reason, False)

    async def _request(self, client: openai.AsyncOpenAI, run: _Run, batch: _Batch) -> Response | None:
        """The batch's response, or None once its rows are settled otherwise.

        A transient failure is retried; the batch gives up (its rows transient) after
        ``max_retries`` retries only if the service answered other requests meanwhile.
        While nothing succeeds the failures are the service's, and the breaker ends them.
        """
        cfg, out = self.settings, run.result
        inputs = [run.texts[r] for r in batch.rows]
        dims = self.dimensions if self.send_dimensions else None
        successes_before, failures = run.gate.breaker.successes, 0
        while True:
            ticket = await run.gate.enter(batch.tokens)
            if ticket is None:  # breaker open (or fatal): every row still here is transient
                self._settle(run, batch.rows, run.gate.breaker.reason or run.fatal, True)
                return None
            out.retries += failures > 0
            out.requests += 1
            try:
                response = await post_embeddings(client, inputs, self.model, dims)
            except Exception as exc:
                failure = classify(exc, cfg.request_timeout_s)
                if failure is None:  # not a request failure: a bug, not the service
                    run.gate.release(ticket)
                    raise
                failures += 1
                delay = run.gate.report(ticket, failure)
                if self._settled_by(run, batch, failure):
                    return None
                if failures > cfg.max_retries and run.gate.breaker.successes > successes_before:
                    self._give_up(run, batch, failure, failures)
                    return None
                if not run.gate.breaker.is_open:
                    log.warning("embedding request of %d inputs failed (%s); retry %d in ≥ %.2f s",
                                len(batch.rows), failure.cause, failures, delay)
                continue
            run.gate.report(ticket, None)
            out.tokens += usage_tokens(response.usage, batch.tokens)
            return response

    def _settled_by(self, run: _Run, batch: _Batch, failure: Failure) -> bool:
        """Act on a failure about the batch's inputs or fatal to the call; True when the
        batch is settled by it (split or failed), False when it may be retried as is."""
        if failure.kind is Kind.FATAL:
            run.fatal = failure.reason()
            run.gate.close()
            log.error("embedding provider refused all requests: %s", failure.cause)
            return True
        if failure.kind is Kind.INPUT:
            if len(batch.rows) > 1:
                half = len(batch.rows) // 2
                for part in (batch.rows[:half], batch.rows[half:]):
                    run.queue.append(_Batch(part, int(run.tokens[part].sum())))
                log.info("split a rejected batch of %d inputs (%s)", len(batch.rows), failure.cause)
            else:
                self._settle(run, batch.rows, failure.reason(), False)
            return True
        run.result.rate_limited += failure.cause == RATE_LIMITED
        return False

    def _give_up(self, run: _Run, batch: _Batch, failure: Failure, failures: int) -> None:
        """A batch that kept failing while the service answered other requests: a server
        error is then about its inputs (split it down to the one that breaks the server, which
        fails with an attempt spent); a rate limit, timeout or lost connection is not (its
        rows come back transient)."""
        if not failure.cause.startswith("HTTP 5"):
            self._settle(run, batch.rows, failure.reason(failures), True)
        elif len(batch.rows) > 1:
            half = len(batch.rows) // 2
            for part in (batch.rows[:half], batch.rows[half:]):
                run.queue.append(_Batch(part, int(run.tokens[part].sum())))
            log.info("split a batch of %d inputs failing with %s while other requests succeed",
                     len(batch.rows), failure.cause)
        else:
            self._settle(run, batch.rows, f"server error on this input ({failure.reason(failures)}) while other "
                                          "requests succeeded", False)

    def _store(self, run: _Run, batch: _Batch, data: list) -> list[int]:
        """Decode ``data`` into the rows of ``batch``; returns the rows still without a vector."""
        out = run.result
        decoded = decode_items(data, len(batch.rows), self.dimensions)
        for index, vector in decoded.vectors.items():
            row = int(run.positions[batch.rows[index]])
            if row in run.done:
                decoded.bad[index] = "response had two vectors for this input"
                continue
            out.vectors[row] = vector  # straight into the caller's matrix
            run.done.add(row)
        for index, reason in decoded.bad.items():
            row = int(run.positions[batch.rows[index]])
            run.done.discard(row)
            out.vectors[row] = 0
            out.errors[row] = reason
        seen = decoded.seen
        return [r for i, r in enumerate(batch.rows) if i not in seen]

    def _settle(self, run: _Run, rows: list[int], reason: str | None, transient: bool) -> None:
        """Rows of ``run.texts`` end failed with ``reason`` (transient: not their text's fault)."""
        for r in rows:
            row = int(run.positions[r])
            run.result.errors[row] = reason or "not embedded"
            if transient:
                run.result.transient.add(row)
