"""Pure parts of the OpenAI embedder: header parsing, backoff, the rate limiter, decoding."""

from __future__ import annotations

import base64
import email.utils
import random

import numpy as np
import pytest

from jobsim.embedders.openai.limiter import RateLimiter
from jobsim.embedders.openai.policy import backoff_delay, parse_duration, retry_after_seconds
from jobsim.embedders.openai.transport import decode_vector


@pytest.mark.parametrize("value, seconds", [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5),
    ("17", 17.0), ("soon", None), ("5x", None), ("", None),
])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_header_order():
    assert retry_after_seconds({"Retry-After-Ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"Retry-After": date}, now=1_000_000) == pytest.approx(30)
    # the exhausted limit's reset wins
    headers = {"x-ratelimit-remaining-requests": "10", "x-ratelimit-reset-requests": "100ms",
               "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"}
    assert retry_after_seconds(headers) == 360.0
    headers["x-ratelimit-remaining-tokens"] = "5"
    assert retry_after_seconds(headers) == 360.0  # neither says exhausted: the longer reset
    assert retry_after_seconds({"x-ratelimit-reset-requests": "1s"}) == 1.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "garbage"}) is None


def test_backoff_grows_with_jitter_and_cap():
    rng = random.Random(1)
    for retry in range(8):
        d = min(10.0, 0.5 * 2**retry)
        samples = [backoff_delay(retry, 0.5, 10.0, rng) for _ in range(200)]
        assert d / 2 <= min(samples) and max(samples) <= d
        assert max(samples) - min(samples) > 0.1 * d  # jitter is really there


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter_requests_per_minute():
    clock = Clock()
    limiter = RateLimiter(60, 1_000_000, clock=clock)
    assert all(limiter.wait_time(1) == 0 for _ in range(60))  # one minute's worth at once
    assert limiter.wait_time(1) == pytest.approx(1.0)  # then one per second
    clock.t += 0.5
    assert limiter.wait_time(1) == pytest.approx(0.5)
    clock.t += 0.5
    assert limiter.wait_time(1) == 0


def test_rate_limiter_tokens_per_minute_and_pause():
    clock = Clock()
    limiter = RateLimiter(1000, 6000, clock=clock)
    assert limiter.wait_time(5000) == 0
    assert limiter.wait_time(3000) == pytest.approx(20.0)  # 2,000 missing at 100 tokens/s
    assert limiter.wait_time(10**9) == pytest.approx(50.0)  # clamped to one full bucket
    limiter.pause(7)
    assert limiter.wait_time(1) == pytest.approx(7)
    clock.t += 7
    assert limiter.wait_time(1000) == 0  # 700 refilled + 1,000 left


def test_decode_vector():
    v = np.arange(4, dtype="<f4")
    assert np.array_equal(decode_vector(base64.b64encode(v.tobytes()).decode(), 4), v)
    assert np.array_equal(decode_vector([0, 1, 2, 3], 4), v)
    with pytest.raises(ValueError, match="dimension 4, expected 5"):
        decode_vector(base64.b64encode(v.tobytes()).decode(), 5)
    with pytest.raises(ValueError, match="non-finite"):
        decode_vector([0, np.nan, 1, 2], 4)
    with pytest.raises(ValueError, match="undecodable"):
        decode_vector("not base64!", 4)
    with pytest.raises(ValueError, match="undecodable"):
        decode_vector(None, 4)
