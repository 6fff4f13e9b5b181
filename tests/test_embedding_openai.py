"""The OpenAI embedder, with the real ``openai`` client, against our local embeddings server.

Every scripted fault must end with each input embedded (with the vector of its own text) or
failed with a reason, and no input embedded twice.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from jobsim.batching import min_requests
from jobsim.embedders import EmbeddingResult, make_embedder
from jobsim.embedders.openai import OpenAIEmbedder
from jobsim.settings import EmbeddingSettings
from jobsim.tokens import count_tokens
from tests.embedding_server import EmbeddingServer

DIMS = 64



def make(srv: EmbeddingServer, **overrides) -> OpenAIEmbedder:
    fields = dict(provider="openai", base_url=srv.url, api_key="test-key", dimensions=DIMS,
                  retry_base_delay_s=0.02, retry_max_delay_s=1.0, request_timeout_s=10,
                  max_retries=3)
    fields.update(overrides)
    return make_embedder(EmbeddingSettings(**fields))


def texts_for(n: int, tag: str = "") -> list[str]:
    cities = ["Tiranë", "Durrës", "Berlin", "Vlorë", "Remote"]
    roles = ["Python developer", "Kontabilist", "Nurse", "Data analyst", "Shitës/e", "Chef"]
    return [f"{roles[i % 6]} {tag} #{i} in {cities[i % 5]}, {i % 7 + 1} years" for i in range(n)]


def check_complete(srv: EmbeddingServer, texts: list[str], result: EmbeddingResult,
                   timeout: float = 10.0) -> list[int]:
    """Every row embedded with its own text's vector or failed with a reason; none twice."""
    n = len(texts)
    assert result.vectors.shape == (n, DIMS) and result.vectors.dtype == np.float32
    assert result.vectors.flags.c_contiguous
    assert set(result.errors) <= set(range(n))
    assert all(isinstance(r, str) and r for r in result.errors.values())
    ok = [i for i in range(n) if i not in result.errors]
    if ok:
        expected = srv.vectors_for([texts[i] for i in ok], DIMS)
        np.testing.assert_allclose(result.vectors[ok], expected, rtol=0, atol=1e-6)
    assert not result.vectors[list(result.errors)].any()
    # no input delivered twice by successful, unfaulted responses (answered well within the
    # client's timeout, so the client surely read them)
    delivered = Counter(t for r in srv.requests if r.status == 200 and r.fault in (None, "shuffle")
                        and r.answered - r.received < 0.8 * timeout for t in r.inputs)
    assert not delivered or max(delivered.values()) == 1
    assert all(t for r in srv.requests for t in r.inputs), "an empty string was sent"
    return ok


def test_10k_short_texts_in_minimum_requests(srv):
    texts = texts_for(10_000, "bulk")
    result = make(srv).embed(texts)
    check_complete(srv, texts, result)
    assert not result.errors
    bound = min_requests(count_tokens(texts), 2048, 300_000)
    assert len(srv.requests) == result.requests <= 1.1 * bound
    assert sum(len(r.inputs) for r in srv.requests) == 10_000
    assert result.tokens == sum(r.tokens for r in srv.requests) == int(count_tokens(texts).sum())
    assert result.retries == result.rate_limited == 0
    assert {r.encoding_format for r in srv.requests} == {"base64"}
    assert {r.dimensions for r in srv.requests} == {DIMS}  # text-embedding-3: dims are sent


def test_token_budget_packing_and_truncation(srv):
    long_text = "Përshkrimi i punës. " * 3000  # > 8,192 tokens: must be cut, not rejected
    texts = [("Senior backend engineer. " * 40) + str(i) for i in range(60)] + [long_text]
    embedder = make(srv, batch_max_tokens=20_000)
    result = embedder.embed(texts)
    assert not result.errors
    assert all(r.tokens <= 20_000 and r.status == 200 for r in srv.requests)
    sent = [t for r in srv.requests for t in r.inputs]
    cut = [t for t in sent if t.startswith("Përshkrimi")]
    assert len(cut) == 1 and long_text.startswith(cut[0]) and count_tokens(cut)[0] <= 8192
    fitted = count_tokens(sent)
    assert len(srv.requests) <= 1.1 * min_requests(fitted, 2048, 20_000) + 1


def test_empty_texts_are_never_sent(srv):
    texts = ["", "Welder in Elbasan", "   ", "Mësues anglishteje", "", "Bad POISON input", "Chef"]
    srv.poison.add("POISON")
    result = make(srv).embed(texts)
    check_complete(srv, texts, result)  # vectors land in the caller's rows
    assert set(result.errors) == {0, 2, 4, 5} and "empty" in result.errors[0]
    assert "HTTP 400" in result.errors[5]
    srv.clear()
    result = make(srv).embed(texts[:4])
    assert [t for r in srv.requests for t in r.inputs] == ["Welder in Elbasan", "Mësues anglishteje"]
    assert make(srv).embed(["", " "]).requests == 0
    assert make(srv).embed([]).vectors.shape == (0, DIMS)


def test_model_without_dimensions_parameter(srv):
    result = make(srv, model="some-other-embedder", dimensions=1536).embed(["Driver in Fier"])
    assert not result.errors and result.vectors.shape == (1, 1536)
    assert srv.requests[0].dimensions is None and srv.requests[0].model == "some-other-embedder"


FAULTS = {
    "429": dict(kind="429", times=2),
    "429-retry-after": dict(kind="429", retry_after=0.2),
    "429-ratelimit-headers": dict(kind="429", headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "150ms",
        "x-ratelimit-remaining-tokens": "9000", "x-ratelimit-reset-tokens": "20ms"}),
    "500": dict(kind="500", times=2),
    "503": dict(kind="503"),
    "408": dict(kind="408"),
    "hang": dict(kind="hang", hang_s=1.5),
    "nan": dict(kind="nan", rows=3),
    "inf": dict(kind="inf", rows=1),
    "wrong_dim": dict(kind="wrong_dim"),
    "fewer": dict(kind="fewer", rows=5),
    "shuffle": dict(kind="shuffle", times=3),
    "duplicate": dict(kind="duplicate"),
    "bad_json": dict(kind="bad_json", times=2),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_scripted_fault_loses_nothing(srv, name):
    srv.add_fault(**FAULTS[name])
    texts = texts_for(300, name)
    timeout = 0.6 if name == "hang" else 10
    result = make(srv, batch_max_inputs=100, concurrency=2, request_timeout_s=timeout).embed(texts)
    ok = check_complete(srv, texts, result, timeout)
    transient = {"429", "429-retry-after", "429-ratelimit-headers", "500", "503", "408", "hang",
                 "shuffle", "bad_json", "fewer"}
    if name in transient:
        assert len(ok) == 300, result.errors  # retried until embedded
    if name.startswith("429"):
        assert result.rate_limited == FAULTS[name].get("times", 1)
    if name in {"nan", "inf"}:
        assert len(result.errors) == FAULTS[name]["rows"]
        assert all("non-finite" in r for r in result.errors.values())
    if name == "wrong_dim":
        assert len(result.errors) == 100  # one request's inputs, not the whole run
        assert all(f"expected {DIMS}" in r for r in result.errors.values())
    if name == "duplicate":
        assert len(result.errors) == 1 and "two vectors" in next(iter(result.errors.values()))
    if name in {"fewer", "bad_json", "500", "503", "408", "hang"} or name.startswith("429"):
        assert result.retries >= 1
    assert result.requests == len(srv.requests)


def test_retry_after_is_honoured(srv):
    srv.add_fault("429", retry_after=0.5)
    srv.add_fault("429", headers={"retry-after-ms": "300"})
    srv.add_fault("503", retry_after=0.4)
    result = make(srv, concurrency=1).embed(texts_for(50, "ra"))
    assert not result.errors and result.rate_limited == 2 and result.retries == 3
    first, second, third, fourth = srv.requests
    assert [r.status for r in srv.requests] == [429, 429, 503, 200]
    assert second.received - first.answered >= 0.5
    assert third.received - second.answered >= 0.3
    assert third.received - second.answered < 0.3 + 0.5  # not a blind long backoff
    assert fourth.received - third.answered >= 0.4


def test_retry_after_pauses_every_worker(srv):
    srv.latency = 0.05
    srv.add_fault("429", retry_after=0.6)
    make(srv, batch_max_inputs=10, concurrency=4).embed(texts_for(200, "pause"))
    limited = next(r for r in srv.requests if r.status == 429)
    # requests that start after the client saw the 429 wait out the pause
    later = [r.received for r in srv.requests if r.received > limited.answered + 0.05]
    assert later and min(later) >= limited.answered + 0.6 - 0.02


@pytest.mark.parametrize("concurrency", [1, 3])
def test_401_is_not_retried_and_fails_the_call(srv, concurrency):
    from jobsim.errors import EmbeddingError

    srv.add_fault("401", times=0)  # every request
    srv.latency = 0.1  # the first batches are all in flight before the first answer
    with pytest.raises(EmbeddingError, match="HTTP 401.*nothing more was sent"):
        make(srv, batch_max_inputs=10, concurrency=concurrency).embed(texts_for(40, "auth"))
    assert len(srv.requests) == concurrency  # only those already in flight; no retry


def test_400_is_not_retried(srv):
    srv.add_fault("400", times=0)  # every request
    texts = texts_for(40, "bad")
    result = make(srv, batch_max_inputs=10, concurrency=1).embed(texts)
    assert set(result.errors) == set(range(40)) and result.retries == 0
    assert all("HTTP 400" in r for r in result.errors.values())
    # split down to single inputs, but no request is ever repeated
    assert len(srv.requests) == 4 * (2 * 10 - 1)
    assert max(Counter(tuple(r.inputs) for r in srv.requests).values()) == 1


def test_poisoned_input_is_isolated_by_splitting(srv):
    texts = texts_for(512, "poison")
    bad = {7, 300, 301}
    for i in bad:
        texts[i] += " POISON"
    srv.poison.add("POISON")
    result = make(srv, concurrency=2).embed(texts)
    check_complete(srv, texts, result)
    assert set(result.errors) == bad
    assert all("HTTP 400" in r and "rejected" in r for r in result.errors.values())
    assert result.retries == 0
    assert len(srv.requests) <= 1 + 2 * len(bad) * 9  # bisection: ~2 requests per level per bad input


def test_a_server_error_on_one_input_while_others_succeed_is_isolated(srv):
    # the service answers other requests: an input that makes it fail with 500 every time is
    # about that input, so its batch is split down to it; it fails with an attempt spent
    texts = texts_for(16, "500")
    texts[5] += " CRASHES"
    # each 500 is held a moment so the concurrent sibling batch has succeeded before it (the
    # give-up rule needs a success since the batch started; without the hold that is a race)
    srv.add_fault("500", times=0, match="CRASHES", delay_s=0.2)
    result = make(srv, max_retries=1, concurrency=2, batch_max_inputs=8).embed(texts)
    check_complete(srv, texts, result)
    assert set(result.errors) == {5} and not result.transient and result.unavailable is None
    assert "server error on this input (HTTP 500 2 times" in result.errors[5]
    assert "while other requests succeeded" in result.errors[5]
    failing = [r for r in srv.requests if any("CRASHES" in t for t in r.inputs)]
    assert [len(r.inputs) for r in failing] == [8, 8, 4, 4, 2, 2, 1, 1]  # two tries per level


def test_a_timeout_on_one_batch_leaves_it_transient_unsplit(srv):
    # a timeout is not about the inputs: the batch is retried, then its rows come back
    # transient (the caller leaves them pending); it is never split
    texts = texts_for(16, "hang")
    texts[5] += " CRASHES"
    srv.add_fault("hang", times=0, match="CRASHES", hang_s=1.0)
    result = make(srv, max_retries=1, request_timeout_s=0.4, concurrency=2, batch_max_inputs=8).embed(texts)
    check_complete(srv, texts, result, 0.4)
    assert set(result.errors) == result.transient == set(range(8))
    assert all("request timeout 2 times" in r for r in result.errors.values())
    failing = [r for r in srv.requests if any("CRASHES" in t for t in r.inputs)]
    assert len(failing) == 2 and all(len(r.inputs) == 8 for r in failing)
    assert len(srv.requests) == 3 and result.unavailable is None


def test_connection_refused_for_a_while(srv):
    texts = texts_for(30, "outage")
    timer = srv.outage(0.6)
    try:
        result = make(srv, max_retries=6, retry_base_delay_s=0.1).embed(texts)
    finally:
        timer.join()
    check_complete(srv, texts, result)
    assert not result.errors and result.retries >= 1


def test_server_down_for_good_fails_with_reason(srv):
    port_owner = EmbeddingServer().start()
    url = port_owner.url
    port_owner.stop()  # a port nobody listens on
    fields = dict(provider="openai", base_url=url, api_key="k", dimensions=DIMS, max_retries=1,
                  retry_base_delay_s=0.01)
    result = make_embedder(EmbeddingSettings(**fields)).embed(texts_for(20, "down"))
    assert set(result.errors) == result.transient == set(range(20))
    # nothing ever succeeded: not the batch's fault, so not max_retries but the breaker
    # (default 8 consecutive failures) ends it, and says so
    assert result.unavailable == ("embedding service unavailable: connection error on 8 "
                                  "consecutive requests")
    assert all(r == result.unavailable for r in result.errors.values())
    assert result.requests == 8  # not split: splitting can't help an unreachable server


def test_embed_works_inside_a_running_event_loop(srv):
    import asyncio

    async def inside() -> EmbeddingResult:
        return make(srv).embed(texts_for(5, "loop"))

    result = asyncio.run(inside())
    assert not result.errors and result.requests == 1


def test_missing_api_key_is_a_config_error(srv, monkeypatch):
    from jobsim.errors import ConfigError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    embedder = make_embedder(EmbeddingSettings(provider="openai", base_url=srv.url))
    with pytest.raises(ConfigError, match="JOBSIM_EMBEDDING__API_KEY"):
        embedder.embed(["Welder in Elbasan"])
    assert not srv.requests


@pytest.mark.parametrize("seed", range(8))
def test_random_fault_scripts_lose_nothing(srv, seed):
    import random

    rng = random.Random(seed)
    kinds = ["429", "500", "503", "408", "nan", "inf", "wrong_dim", "fewer", "shuffle",
             "duplicate", "bad_json", "hang", "400"]
    texts = texts_for(rng.randint(50, 400), f"rand{seed}")
    for _ in range(rng.randint(2, 6)):
        kind = rng.choice(kinds)
        srv.add_fault(kind, times=rng.randint(1, 2), rows=rng.randint(1, 4), hang_s=1.5,
                      retry_after=rng.choice([None, 0.05]))
    if rng.random() < 0.5:
        texts[rng.randrange(len(texts))] += " POISON"
        srv.poison.add("POISON")
    result = make(srv, batch_max_inputs=rng.choice([16, 64, 2048]), concurrency=rng.randint(1, 4),
                  request_timeout_s=1.0, max_retries=4, breaker_failures=50).embed(texts)
    ok = check_complete(srv, texts, result, timeout=1.0)
    # without a 400/poison/per-row fault, every input ends embedded
    row_faults = {"nan", "inf", "wrong_dim", "duplicate", "400"}
    if not srv.poison and not any(r.fault in row_faults for r in srv.requests):
        assert len(ok) == len(texts), result.errors
    assert result.requests == len(srv.requests)


def test_rate_limits_that_outlast_the_retries_leave_the_batch_transient(srv):
    # one batch is refused for good while the others are served: after max_retries its rows
    # come back transient (a caller leaves them pending), unsplit, and the service is not
    # declared unavailable
    texts = texts_for(25, "storm")
    for i in range(10, 20):
        texts[i] += " STORM"
    srv.add_fault("429", times=0, retry_after=0.3, match="STORM")
    result = make(srv, max_retries=2, batch_max_inputs=10).embed(texts)
    assert set(result.errors) == result.transient == set(range(10, 20))
    assert all(r == "rate limited (429) 3 times" for r in result.errors.values())
    assert result.unavailable is None
    refused = [r for r in srv.requests if r.status == 429]
    assert result.rate_limited == len(refused) == 3 and all(len(r.inputs) == 10 for r in refused)
    assert result.requests == len(srv.requests) == 2 + 3


def test_input_failures_are_not_transient(srv):
    srv.poison.add("POISON")
    texts = texts_for(8, "t") + ["x POISON"]
    result = make(srv).embed(texts)
    assert list(result.errors) == [8] and not result.transient
