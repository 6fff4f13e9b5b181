"""Circuit breaker of the OpenAI embedder: an outage ends, with a reason, after few requests.

Against the local embeddings server with the real ``openai`` client; the breaker's own state
machine on a fake clock.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time

import pytest

from jobsim.embedders import EmbeddingResult, make_embedder
from jobsim.embedders.openai.breaker import CircuitBreaker
from jobsim.embedders.openai.gate import Gate
from jobsim.embedders.openai.limiter import RateLimiter
from jobsim.embedders.openai.policy import RATE_LIMITED, Failure, Kind
from jobsim.settings import EmbeddingSettings
from tests.embedding_server import EmbeddingServer

DIMS = SERVER_DIMS = 32



def embed(url: str, texts: list[str], **overrides) -> EmbeddingResult:
    fields = dict(provider="openai", base_url=url, api_key="test-key", dimensions=DIMS,
                  retry_base_delay_s=0.02, retry_max_delay_s=1.0, request_timeout_s=10,
                  max_retries=6, batch_max_inputs=10)
    fields.update(overrides)
    return make_embedder(EmbeddingSettings(**fields)).embed(texts)


def texts_for(n: int, tag: str) -> list[str]:
    return [f"Backend developer {tag} #{i} in Tiranë, {i % 7 + 1} years of Python" for i in range(n)]


def assert_all_transient(result: EmbeddingResult, n: int) -> None:
    """Nothing embedded, every row pending-able with the breaker's reason."""
    assert set(result.errors) == result.transient == set(range(n))
    assert set(result.errors.values()) == {result.unavailable}
    assert not result.vectors.any()


def test_sustained_500_stops_after_n_consecutive_failures_without_splitting(srv):
    srv.add_fault("500", times=0)
    result = embed(srv.url, texts_for(100, "500"), breaker_failures=5, concurrency=3)
    assert result.unavailable == "embedding service unavailable: HTTP 500 on 5 consecutive requests"
    assert_all_transient(result, 100)
    # the breaker counts requests as they fail; at most the other workers' were in flight
    assert 5 <= result.requests == len(srv.requests) <= 5 + 3 - 1
    assert all(len(r.inputs) == 10 for r in srv.requests)  # never split


def test_a_lone_batch_in_an_outage_ends_with_the_breaker_not_its_retries(srv):
    # max_retries (2) < breaker_failures (5): nothing succeeds, so the batch keeps probing
    # until the breaker opens and the caller learns the service is down
    srv.add_fault("500", times=0)
    result = embed(srv.url, texts_for(5, "lone"), breaker_failures=5, max_retries=2)
    assert result.unavailable == "embedding service unavailable: HTTP 500 on 5 consecutive requests"
    assert_all_transient(result, 5)
    assert result.requests == len(srv.requests) == 5


@pytest.mark.parametrize("retry_after", [0.2, None])
def test_429_that_never_clears(srv, retry_after):
    srv.add_fault("429", times=0, retry_after=retry_after)
    result = embed(srv.url, texts_for(60, "429"), breaker_failures=4, concurrency=2)
    said = "Retry-After 0.2 s" if retry_after else "no Retry-After"
    assert result.unavailable == f"rate limited (429) on 4 consecutive requests ({said})"
    assert_all_transient(result, 60)
    assert 4 <= result.rate_limited == result.requests == len(srv.requests) <= 4 + 1


def test_hanging_server_ends_within_outage_limit_plus_one_timeout(srv):
    outage, timeout = 1.5, 0.5
    srv.add_fault("hang", times=0, hang_s=4)
    result = embed(srv.url, texts_for(60, "hang"), breaker_failures=1000, concurrency=3,
                   outage_max_s=outage, request_timeout_s=timeout)
    # from the outage's first request: the promise, plus scheduling slack
    assert time.monotonic() - srv.requests[0].received < outage + timeout + 1.0
    assert result.unavailable.startswith(
        "embedding service unavailable: request timeout on ")
    assert "none succeeded for" in result.unavailable
    assert_all_transient(result, 60)
    # 3 at once, then one probe at a time, each taking a whole timeout
    assert result.requests == len(srv.requests) <= 3 + math.ceil(outage / timeout) + 1


def test_a_wait_longer_than_the_outage_limit_is_cut_short(srv):
    # the server asks for 3 s; the operator allows 1 s of outage: stop at 1 s, say why
    outage = 1.0
    srv.add_fault("429", times=0, retry_after=3)
    result = embed(srv.url, texts_for(30, "long-wait"), breaker_failures=1000, concurrency=2,
                   outage_max_s=outage, retry_max_delay_s=5, request_timeout_s=2)
    # the outage began with the first request; no request hangs: the limit + slack
    assert time.monotonic() - srv.requests[0].received < outage + 1.0
    assert re.fullmatch(r"rate limited \(429\) on 2 consecutive requests, none succeeded for "
                        r"1(\.\d+)? s \(Retry-After 3 s\)", result.unavailable)
    assert_all_transient(result, 30)
    assert result.requests == 2


def test_server_down_for_good_opens_the_breaker(srv):
    port_owner = EmbeddingServer().start()
    url = port_owner.url
    port_owner.stop()  # a port nobody listens on
    result = embed(url, texts_for(50, "down"), breaker_failures=3, concurrency=2)
    assert result.unavailable == ("embedding service unavailable: connection error on 3 "
                                  "consecutive requests")
    assert_all_transient(result, 50)
    assert 3 <= result.requests <= 3 + 1


def test_flaky_server_that_recovers_keeps_the_breaker_closed(srv):
    # two requests in three fail, for longer than outage_max_s: successes keep coming, so
    # neither the count nor the clock of the breaker may run out
    srv.latency = 0.03
    srv.add_fault("500", times=0, pass_every=3)
    texts = texts_for(300, "flaky")
    outage = 0.5
    started = time.monotonic()
    result = embed(srv.url, texts, breaker_failures=4, outage_max_s=outage, concurrency=2,
                   max_retries=8)
    assert time.monotonic() - started > 2 * outage  # the test means something
    assert result.unavailable is None
    assert not result.errors and result.vectors.any(axis=1).all()
    failed = sum(r.status == 500 for r in srv.requests)
    assert failed >= 0.6 * len(srv.requests)
    assert len(srv.requests) <= 3 * 30 + 2  # ~3 requests per batch of 10, no more


def test_input_errors_neither_open_nor_reset_the_breaker(srv):
    srv.poison.add("POISON")
    texts = [t + (" POISON" if i % 2 else "") for i, t in enumerate(texts_for(40, "poison"))]
    result = embed(srv.url, texts, breaker_failures=2, concurrency=2)
    assert result.unavailable is None
    assert set(result.errors) == set(range(1, 40, 2)) and not result.transient
    assert all("HTTP 400" in r for r in result.errors.values())


def test_a_short_blip_is_ridden_out(srv):
    srv.add_fault("503", times=3)
    result = embed(srv.url, texts_for(40, "blip"), breaker_failures=5, concurrency=4)
    assert result.unavailable is None and not result.errors
    assert result.requests == len(srv.requests) == 4 + 3


# -- the state machine on a fake clock ---------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


HTTP_500 = Failure(Kind.TRANSIENT, "HTTP 500", "boom")
TIMEOUT = Failure(Kind.TRANSIENT, "request timeout", "no answer within 60 s")


def test_breaker_counts_consecutive_failures_and_success_resets():
    clock = Clock()
    breaker = CircuitBreaker(3, 100, clock)
    breaker.failed(HTTP_500, clock.t)
    breaker.failed(HTTP_500, clock.t)
    breaker.succeeded()
    assert breaker.streak == 0 and breaker.deadline is None and not breaker.check()
    breaker.failed(HTTP_500, clock.t)
    breaker.failed(TIMEOUT, clock.t)
    assert not breaker.is_open
    breaker.failed(HTTP_500, clock.t)
    assert breaker.reason == ("embedding service unavailable: 3 consecutive failed requests "
                              "(HTTP 500 ×2, request timeout ×1)")
    breaker.succeeded()
    assert breaker.is_open  # open for the rest of the call


def test_breaker_clock_starts_when_the_first_failed_request_was_sent():
    clock = Clock()
    breaker = CircuitBreaker(100, 120, clock)
    sent = clock.t
    clock.t += 60  # a hanging request times out a minute after it was sent
    breaker.failed(TIMEOUT, sent)
    assert breaker.deadline == sent + 120
    clock.t = sent + 119.9
    assert not breaker.check()
    clock.t = sent + 120
    assert breaker.check()
    assert breaker.reason == ("embedding service unavailable: request timeout on 1 consecutive "
                              "request, none succeeded for 120 s")


def test_breaker_clock_never_starts_before_the_last_success():
    clock = Clock()
    breaker = CircuitBreaker(100, 10, clock)
    old_send = clock.t
    clock.t += 8
    breaker.succeeded()  # another request succeeded after ours was sent
    clock.t += 1
    breaker.failed(TIMEOUT, old_send)
    assert breaker.deadline == old_send + 8 + 10


def test_breaker_reasons_for_rate_limits():
    clock = Clock()
    breaker = CircuitBreaker(2, 100, clock)
    breaker.failed(Failure(Kind.TRANSIENT, RATE_LIMITED, wait=30), clock.t)
    breaker.failed(Failure(Kind.TRANSIENT, RATE_LIMITED, wait=30), clock.t)
    assert breaker.reason == "rate limited (429) on 2 consecutive requests (Retry-After 30 s)"
    breaker = CircuitBreaker(2, 100, clock)
    breaker.failed(Failure(Kind.TRANSIENT, RATE_LIMITED), clock.t)
    breaker.failed(HTTP_500, clock.t)
    assert breaker.reason == ("embedding service unavailable: 2 consecutive failed requests "
                              "(rate limited (429) ×1, HTTP 500 ×1) (no Retry-After)")


# -- the gate: one probe at a time while failing, nothing after close ----------------------
def make_gate() -> Gate:
    breaker = CircuitBreaker(100, 60)
    return Gate(RateLimiter(10_000, 10**9), breaker, 0.001, 0.01, random.Random(0))


def test_gate_lets_one_probe_through_while_failing():
    async def scenario() -> None:
        gate = make_gate()
        first = await gate.enter(10)
        assert first is not None and not first.probe
        gate.report(first, HTTP_500)
        probe = await gate.enter(10)
        assert probe is not None and probe.probe
        waiting = asyncio.ensure_future(gate.enter(10))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # a second request waits for the probe's outcome
        gate.report(probe, None)  # the probe succeeded: everyone may go again
        ticket = await asyncio.wait_for(waiting, 1)
        assert ticket is not None and not ticket.probe

    asyncio.run(scenario())


def test_gate_closed_by_a_fatal_failure_lets_no_waiter_through():
    async def scenario() -> None:
        gate = make_gate()
        first = await gate.enter(10)
        gate.report(first, HTTP_500)
        probe = await gate.enter(10)
        waiting = asyncio.ensure_future(gate.enter(10))
        await asyncio.sleep(0.05)
        gate.close()  # the probe got a 401
        gate.report(probe, Failure(Kind.FATAL, "HTTP 401"))
        assert await asyncio.wait_for(waiting, 1) is None
        assert await gate.enter(10) is None

    asyncio.run(scenario())
