"""Offline embedders on ONE core: the corpus-fitted embedder vs the default v3, and the fit.

    flock /tmp/jobsim-heavy.lock .venv/bin/python bench/embedders_offline.py [--texts 2000]
        [--repeats 3] [--fit-n 100000] [--dimensions 512]

Pins itself to CPU 0 and sets BLAS/OpenMP threads to 1 before numpy loads. Texts are the
pipeline's embedding texts (:func:`jobsim.text.build_embedding_text`: title ×3, description
×2, skills) of the LinkedIn postings of ../shared/data, each description whole (LinkedIn
length, ~2,900 characters), varied so that every text is distinct (sentences dropped and
shuffled, a number added to the title); synthetic postings when the file is absent.

- **throughput**: ``LocalEmbedder(jobsim-hash-ngram-v3)`` and ``FittedEmbedder`` (fitted
  on the same texts) embed the same batch, methods interleaved, ``--repeats`` rounds, the
  minimum time of each is kept; prints texts/s and the ratio fitted / v3;
- **fit**: ``fit_model`` on ``--fit-n`` varied texts (0 = skip), wall time and model size.

Prints the load average and the CPU model with the results.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobsim.embedders.fitted import FittedEmbedder, fit_model  # noqa: E402
from jobsim.embedders.local import V3, LocalEmbedder  # noqa: E402
from jobsim.text import build_embedding_text, clean_text  # noqa: E402

LINKEDIN = ROOT.parent / "shared" / "data" / "linkedin_postings_2023_sample.csv"


def postings() -> tuple[list[tuple[str, str, str, str]], str]:
    """(title, description, skills, company) of the LinkedIn sample, or synthetic ones."""
    if LINKEDIN.exists():
        with LINKEDIN.open(newline="", encoding="utf-8") as fh:
            rows = [(clean_text(r["title"]), clean_text(r["description"]), clean_text(r["skills_desc"] or ""),
                     clean_text(r["company_name"] or "")) for r in csv.DictReader(fh)]
        return [r for r in rows if len(r[1]) > 200], f"LinkedIn postings of {LINKEDIN.name}"
    print(f"note: {LINKEDIN} not found; using synthetic postings", file=sys.stderr)
    rng = np.random.default_rng(0)
    words = "python data team client sales nurse driver build manage support plan report".split()
    return [(f"Role {i}", ". ".join(" ".join(rng.choice(words, 12)) for _ in range(25)), "", f"c{i % 50}")
            for i in range(500)], "synthetic postings (shared data absent)"


def varied_texts(rows: list[tuple[str, str, str, str]], n: int, seed: int) -> tuple[list[str], list[str]]:
    """``n`` distinct embedding texts and companies: sentences shuffled and 0–20 % dropped."""
    rng = np.random.default_rng(seed)
    texts, companies = [], []
    for i in range(n):
        title, description, skills, company = rows[i % len(rows)]
        sentences = description.split(". ")
        if i >= len(rows):
            keep = rng.random(len(sentences)) >= rng.uniform(0.0, 0.2)
            sentences = [s for s, k in zip(sentences, keep) if k] or sentences[:1]
            rng.shuffle(sentences)
            title = f"{title} {i // len(rows)}"
        tags = tuple(t.strip() for t in skills.split(",")[:3] if t.strip())
        texts.append(build_embedding_text(title, ". ".join(sentences), "", tags))
        companies.append(company or None)
    return texts, companies


def best_times(embedders: dict[str, object], texts: list[str], repeats: int) -> dict[str, float]:
    """Minimum seconds per method over ``repeats`` interleaved rounds."""
    best = {name: float("inf") for name in embedders}
    for _ in range(repeats):
        for name, embedder in embedders.items():
            started = time.perf_counter()
            embedder.embed(texts)  # type: ignore[attr-defined]
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, CPU {cpu}, pinned to CPU 0, BLAS threads 1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fit-n", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, default=512)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    rows, source = postings()
    texts, companies = varied_texts(rows, args.texts, seed=1)
    print(f"{len(texts)} texts from {source}, {np.mean([len(t) for t in texts]):,.0f} characters each on average")
    print(machine())
    started = time.perf_counter()
    model = fit_model(texts, args.dimensions, companies)
    print(f"fit on these {len(texts)} texts: {time.perf_counter() - started:.1f} s, {len(model.to_bytes()):,} bytes")
    embedders = {"v3": LocalEmbedder(V3, args.dimensions), "fitted": FittedEmbedder(model)}
    best = best_times(embedders, texts, args.repeats)
    for name, seconds in best.items():
        print(f"{name:<8} {len(texts) / seconds:>8,.0f} texts/s  (best of {args.repeats}: {seconds:.2f} s)")
    print(f"ratio fitted / v3 throughput: {best['v3'] / best['fitted']:.1f}x")
    if args.fit_n:
        big, big_companies = varied_texts(rows, args.fit_n, seed=2)
        started = time.perf_counter()
        model = fit_model(big, args.dimensions, big_companies)
        seconds = time.perf_counter() - started
        size = len(model.to_bytes())
        print(f"fit on {len(big):,} texts: {seconds:.1f} s; model {size:,} bytes ({size / 2**20:.1f} MiB): "
              f"{len(model.tokens):,} tokens, {len(model.features):,} features, "
              f"{len(model.boilerplate):,} boilerplate shingles, LSA {model.lsa.shape}")
    print(machine())


if __name__ == "__main__":
    main()
