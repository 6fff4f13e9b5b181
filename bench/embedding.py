"""Embedding stage benchmark: token-budget batches vs the seed's one request per job.

    .venv/bin/python bench/embedding.py [--jobs 10000] [--latency 0.1] [--baseline-sample 600]

Starts our OpenAI-compatible test server (tests/embedding_server.py) in its own process with
``--latency`` seconds per request and cheap text-seeded vectors, then embeds ``--jobs``
realistic ~1,500-character embedding texts (LinkedIn postings from ../shared/data, varied;
synthetic ones when that file is absent) with the real ``openai`` client:

- **ours**: ``OpenAIEmbedder`` (token-aware packing ≤2,048 inputs / ≤300k tokens, 4 in
  flight, base64 decoded straight into the matrix, client-side limit of ``--tpm`` tokens a
  minute: the default 1M is OpenAI's tier-1 TPM and is then the bottleneck), once as one
  call and once in the pipeline's current chunks of 4,096 texts;
- **seed**: one request per job, 3 concurrent, the client's default encoding and 2 retries;
  run on a sample and extrapolated to ``--jobs``.

Each approach runs ``--repeat`` times, interleaved (ours, chunked, seed, ours, …); wall and
CPU are the minimum over the repeats. Prints requests, inputs/s, tokens and client CPU, the
ratios, and what :func:`jobsim.embedders.sanity.sanitize` costs on the result. Stops the
server by PID.

``--outage`` instead measures what a sustained outage costs with the default retry, backoff
and breaker settings: ``--outage-jobs`` texts (244, as in issue 16) against the in-process
test server answering every request with a 500, a 429 without / with ``Retry-After: 30``,
a hang (``--outage-timeout`` s request timeout), or a closed port; prints requests, seconds
and the ``unavailable`` reason.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobsim.embedders.openai import OpenAIEmbedder  # noqa: E402
from jobsim.embedders.sanity import sanitize  # noqa: E402
from jobsim.settings import EmbeddingSettings  # noqa: E402
from jobsim.text import build_embedding_text, clean_text, truncate_at_word  # noqa: E402
from jobsim.tokens import count_tokens  # noqa: E402

LINKEDIN = ROOT.parent / "shared" / "data" / "linkedin_postings_2023_sample.csv"
TARGET_CHARS = 1500


def realistic_texts(n: int, seed: int = 7) -> tuple[list[str], str]:
    """``n`` distinct embedding texts of ~1,500 characters, built as the pipeline builds them."""
    rng = np.random.default_rng(seed)
    if LINKEDIN.exists():
        with LINKEDIN.open(newline="", encoding="utf-8") as fh:
            rows = [(clean_text(r["title"]), clean_text(r["description"]), clean_text(r["skills_desc"] or ""))
                    for r in csv.DictReader(fh)]
        rows = [r for r in rows if len(r[1]) > 400]
        source = f"{len(rows)} LinkedIn postings from {LINKEDIN.name}, varied"
    else:
        print(f"note: {LINKEDIN} not found; using synthetic postings", file=sys.stderr)
        words = "python data team client sales nurse driver build manage support plan report".split()
        rows = [(f"Role {i}", " ".join(rng.choice(words, 400)), "") for i in range(500)]
        source = "synthetic postings (shared data absent)"
    texts = []
    for i in range(n):
        title, description, skills = rows[i % len(rows)]
        start = int(rng.integers(0, max(1, len(description) - 700)))  # vary the excerpt
        title = f"{title} ({i // len(rows) + 1})"
        budget = max(200, (TARGET_CHARS - 3 * len(title) - len(skills[:100])) // 2)
        excerpt = truncate_at_word(description[start:], budget)
        texts.append(build_embedding_text(title, excerpt, "", tuple(skills.split(",")[:3]) if skills else ()))
    return texts, source


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.embedding_server", "--latency", str(latency), "--vectors", "hash"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("embedding server did not start")
    return proc, url


def server_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after}


def run_ours(url: str, texts: list[str], chunk: int | None, tpm: int) -> dict:
    """Our embedder on ``texts`` (in ``chunk``-text calls); the last call's result is kept."""
    settings = EmbeddingSettings(provider="openai", base_url=url, api_key="bench", dimensions=1536,
                                 tokens_per_minute=tpm)
    embedder = OpenAIEmbedder(settings)
    before = server_stats(url)
    wall, cpu = time.perf_counter(), time.process_time()
    errors = requests = tokens = 0
    for start in range(0, len(texts), chunk or len(texts)):
        result = embedder.embed(texts[start : start + (chunk or len(texts))])
        errors += len(result.errors)
        requests += result.requests
        tokens += result.tokens
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = delta(before, server_stats(url))
    assert stats["requests"] == requests and errors == 0, (stats, requests, errors)
    return {"requests": requests, "tokens": tokens, "seconds": wall, "cpu": cpu,
            "inputs_per_s": len(texts) / wall, "result": result}


async def _seed_style(url: str, texts: list[str]) -> list[np.ndarray]:
    import openai

    sem = asyncio.Semaphore(3)
    async with openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=2) as client:
        async def one(text: str) -> np.ndarray:
            async with sem:
                resp = await client.embeddings.create(input=text, model="text-embedding-3-small",
                                                      dimensions=1536)
            return np.asarray(resp.data[0].embedding, dtype=np.float32)

        return await asyncio.gather(*(one(t) for t in texts))


def run_seed(url: str, texts: list[str], total: int) -> dict:
    before = server_stats(url)
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = asyncio.run(_seed_style(url, texts))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = delta(before, server_stats(url))
    assert len(vectors) == len(texts) == stats["requests"]
    scale = total / len(texts)
    return {"requests": round(stats["requests"] * scale), "tokens": round(stats["tokens"] * scale),
            "seconds": wall * scale, "cpu": cpu * scale, "inputs_per_s": len(texts) / wall,
            "sampled": len(texts)}


def best_of(runs: list[dict]) -> dict:
    """One approach's repeats: counts from the first, wall and CPU the minimum."""
    best = dict(runs[0])
    best["seconds"] = min(r["seconds"] for r in runs)
    best["cpu"] = min(r["cpu"] for r in runs)
    best["inputs_per_s"] = max(r["inputs_per_s"] for r in runs)
    return best


def time_sanitize(result, dims: int, repeat: int = 3) -> float:
    """Minimum seconds of ``sanitize`` on ``result``."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sanitize(result, dims)
        times.append(time.perf_counter() - t)
    return min(times)


OUTAGES = {
    "HTTP 500 on every request": dict(kind="500"),
    "429, no Retry-After": dict(kind="429"),
    "429, Retry-After 30 s": dict(kind="429", retry_after=30),
    "hang (no answer)": dict(kind="hang", hang_s=3600),
}


def run_outage(make, texts: list[str], fault: dict | None, timeout: float) -> dict:
    """Embed ``texts`` with default settings against a server that always fails (``fault``,
    None = closed port); ``make(settings)`` builds the embedder under test."""
    from tests.embedding_server import EmbeddingServer

    server = EmbeddingServer(dimensions=1536, vectors="hash").start()
    if fault is None:
        server.stop()
    else:
        server.add_fault(times=0, **fault)
    settings = EmbeddingSettings(provider="openai", base_url=server.url, api_key="bench",
                                 request_timeout_s=timeout)
    try:
        started = time.perf_counter()
        result = make(settings).embed(texts)
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    return {"requests": result.requests, "seconds": seconds, "transient": len(result.transient),
            "failed": len(result.errors), "unavailable": result.unavailable}


def outage_report(jobs: int, timeout: float) -> None:
    texts, _ = realistic_texts(jobs)
    print(f"sustained outage, {jobs} texts, default settings (max_retries, backoff, "
          f"breaker_failures, outage_max_s), request timeout {timeout:g} s")
    print(f"{'outage':<28} {'requests':>9} {'seconds':>8} {'transient':>10}  unavailable")
    for name, fault in [*OUTAGES.items(), ("connection refused", None)]:
        r = run_outage(OpenAIEmbedder, texts, fault, timeout)
        print(f"{name:<28} {r['requests']:>9} {r['seconds']:>8.1f} {r['transient']:>6}/{r['failed']:<4} "
              f"{r['unavailable']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="embedding stage benchmark")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--baseline-sample", type=int, default=600)
    parser.add_argument("--tpm", type=int, default=EmbeddingSettings().tokens_per_minute,
                        help="client-side tokens/minute limit (default: the setting's default)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each approach")
    parser.add_argument("--outage", action="store_true", help="measure sustained outages instead")
    parser.add_argument("--outage-jobs", type=int, default=244)
    parser.add_argument("--outage-timeout", type=float, default=EmbeddingSettings().request_timeout_s)
    args = parser.parse_args()
    if args.outage:
        outage_report(args.outage_jobs, args.outage_timeout)
        return

    texts, source = realistic_texts(args.jobs)
    t = time.perf_counter()
    tokens = count_tokens(texts)
    count_s = time.perf_counter() - t
    chars = np.array([len(x) for x in texts])
    print(f"{args.jobs} texts from {source}: median {int(np.median(chars))} chars, "
          f"median {int(np.median(tokens))} tokens, {int(tokens.sum())} tokens in all "
          f"(counted in {count_s:.2f} s)")
    bound = max(-(-args.jobs // 2048), -(-int(tokens.sum()) // 300_000))
    print(f"lower bound on requests: {bound}; server latency {args.latency * 1000:.0f} ms/request; "
          f"client limit {args.tpm:,} tokens/min (the seed has none); {args.repeat} interleaved "
          f"runs each, min wall/CPU\n")

    proc, url = start_server(args.latency)
    runs: dict[str, list[dict]] = {"ours": [], "chunked": [], "seed": []}
    try:
        for _ in range(args.repeat):
            runs["ours"].append(run_ours(url, texts, None, args.tpm))
            runs["chunked"].append(run_ours(url, texts, 4096, args.tpm))
            runs["seed"].append(run_seed(url, texts[: args.baseline_sample], args.jobs))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ours, chunked, seed = (best_of(runs[k]) for k in ("ours", "chunked", "seed"))

    rows = [("ours, one call", ours), ("ours, chunks of 4,096", chunked),
            (f"seed, 1 job/request ×3 (sample {seed['sampled']}, extrapolated)", seed)]
    print(f"{'approach':<52} {'requests':>9} {'seconds':>9} {'inputs/s':>9} {'tokens':>10} {'client CPU s':>12}")
    for name, r in rows:
        print(f"{name:<52} {r['requests']:>9} {r['seconds']:>9.1f} {r['inputs_per_s']:>9.0f} "
              f"{r['tokens']:>10} {r['cpu']:>12.1f}")
    print(f"\nrequests: seed/ours = {seed['requests'] / ours['requests']:.0f}x fewer; "
          f"ours = {ours['requests'] / bound:.2f}x the lower bound; "
          f"chunked = {chunked['requests'] / bound:.2f}x")
    print(f"throughput: ours/seed = {ours['inputs_per_s'] / seed['inputs_per_s']:.0f}x "
          f"(chunked {chunked['inputs_per_s'] / seed['inputs_per_s']:.0f}x)")
    result = ours["result"]
    print(f"sanitize on the {len(result.vectors):,} x {result.vectors.shape[1]} result: "
          f"{time_sanitize(result, result.vectors.shape[1]):.3f} s (min of 3), "
          f"{len(sanitize(result, result.vectors.shape[1]).errors)} rejected")


if __name__ == "__main__":
    main()
