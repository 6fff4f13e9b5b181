"""Real-text vectors for the neighbour benchmarks, built once and cached.

    .venv/bin/python bench/text_vectors.py --n 100000 --dims 512 1536 --model v3       # ≈ 3 ms per text per dims
    .venv/bin/python bench/text_vectors.py --n 100000 --dims 512 1536 --model fitted   # fit ≈ 90 s, then ≈ 0.5 ms per text

~N job postings built from the shared real files (LinkedIn 2023 sample, 1,000 postings with
full descriptions; NYC Jobs 2019, 3,843 rows, mostly title / civil-service title / category /
agency / division only) with the variations a job board really has: the same role re-posted
with sentences dropped and reordered, title variants (rank words, civil-service title instead
of the business title, location or contract suffixes, capitals), boilerplate paragraphs
(benefits, EEO, how to apply) and sentences mixed in from other postings of the same source
and category. How often a base posting recurs follows a Zipf law (a few roles recur hundreds
of times, most a handful). The texts go through ``clean_text`` / ``build_embedding_text``
and one of the offline embedders (``--model``):

- ``v3``: ``LocalEmbedder("jobsim-hash-ngram-v3", d)``, the corpus-blind default before issue 18
  (character n-grams: every pair of postings has cosine ≳ 0.3);
- ``fitted``: the default offline embedder since issue 18, ``fit_model(texts, d, seed=0)`` fitted
  on these texts (the active corpus, as a full rebuild does), then ``FittedEmbedder``.

The matrices are cached under ``$JOBSIM_BENCH_CACHE`` (default ``/tmp/jobsim-bench``), keyed
by N, d, model and generator version. When ``../shared/data`` is missing the callers skip.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
CACHE = Path(os.environ.get("JOBSIM_BENCH_CACHE", "/tmp/jobsim-bench"))
MODELS = ("v3", "fitted")
VERSION = 1  # bump when the generator changes
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+|(?<=[a-z])(?=[A-Z][a-z])")
RANKS = ["Senior", "Junior", "Lead", "Sr.", "Associate", "Principal", "Assistant", "Staff"]
SUFFIXES = [" II", " III", " - Remote", " (Contract)", " - Part Time", " (Hybrid)", " - Night Shift"]
BOILERPLATE = [
    "We offer a competitive salary, health, dental and vision insurance, and a 401(k) plan.",
    "We are an equal opportunity employer and value diversity at our company.",
    "All qualified applicants will receive consideration without regard to race, religion or gender.",
    "To apply, please submit your resume and a cover letter through our website.",
    "Paid time off, flexible schedules and professional development are part of the package.",
    "This position may require occasional travel and weekend work.",
    "Candidates must be authorized to work in the United States.",
    "Reasonable accommodations are available for applicants with disabilities.",
]


def available() -> bool:
    return (SHARED / "linkedin_postings_2023_sample.csv").exists() and (SHARED / "nyc_jobs_2019.csv").exists()


def _sentences(text: str | None) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text or "") if len(s.strip()) > 15]


def base_postings() -> list[dict]:
    """One dict per real row: title, alt_title, sentences, category, source, skills."""
    import polars as pl

    bases: list[dict] = []
    li = pl.read_csv(SHARED / "linkedin_postings_2023_sample.csv", infer_schema_length=0)
    for r in li.iter_rows(named=True):
        bases.append({"title": r["title"] or "", "alt_title": "", "sentences": _sentences(r["description"]),
                      "category": r["formatted_work_type"] or "", "source": "linkedin",
                      "skills": [s for s in (r["skills_desc"] or "").split("\n") if s][:8],
                      "where": r["location"] or ""})
    nyc = pl.read_csv(SHARED / "nyc_jobs_2019.csv", infer_schema_length=0)
    for r in nyc.iter_rows(named=True):
        facts = [f"{r['Agency']} is hiring in {r['Division/Work Unit'] or 'its central office'}.",
                 f"Civil service title: {r['Civil Service Title']}, level {r['Level']}.",
                 f"Work location: {r['Work Location']}." if r["Work Location"] else "",
                 f"Hours: {r['Hours/Shift']}." if r["Hours/Shift"] else "",
                 f"Residency: {r['Residency Requirement']}" if r["Residency Requirement"] else ""]
        text = " ".join(filter(None, [r["Job Description"], r["Minimum Qual Requirements"], r["Preferred Skills"]]))
        bases.append({"title": r["Business Title"] or "", "alt_title": (r["Civil Service Title"] or "").title(),
                      "sentences": [f for f in facts if f] + _sentences(text), "category": r["Job Category"] or "",
                      "source": "nyc", "skills": [], "where": r["Work Location"] or ""})
    return [b for b in bases if b["title"]]


def _title(base: dict, rng: np.random.Generator) -> str:
    title = base["alt_title"] if base["alt_title"] and rng.random() < 0.3 else base["title"]
    if rng.random() < 0.35:
        title = f"{RANKS[rng.integers(len(RANKS))]} {title}"
    if rng.random() < 0.3:
        title += SUFFIXES[rng.integers(len(SUFFIXES))]
    if rng.random() < 0.1 and base["where"]:
        title += f" ({base['where'].split(',')[0]})"
    return title.upper() if rng.random() < 0.05 else title


def _description(base: dict, rng: np.random.Generator, peers: list[dict]) -> str:
    kept = [s for s in base["sentences"] if rng.random() > 0.25] or base["sentences"][:1]
    for _ in range(int(rng.integers(0, 3))):  # local reorders
        if len(kept) > 1:
            i = int(rng.integers(len(kept) - 1))
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    if peers and rng.random() < 0.3:  # mixed fields: sentences from a posting like it
        other = peers[int(rng.integers(len(peers)))]["sentences"]
        kept += [other[int(j)] for j in rng.integers(0, len(other), size=min(len(other), 2))] if other else []
    if rng.random() < 0.5:
        kept += [BOILERPLATE[int(j)] for j in rng.choice(len(BOILERPLATE), size=int(rng.integers(1, 4)), replace=False)]
    return " ".join(kept)


def make_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` embedding texts (``build_embedding_text`` layout) from the shared postings."""
    from jobsim.text import build_embedding_text, clean_text

    rng = np.random.default_rng(seed)
    bases = base_postings()
    peers: dict[tuple[str, str], list[dict]] = {}
    for b in bases:
        peers.setdefault((b["source"], b["category"]), []).append(b)
    zipf = 1.0 / np.arange(1, len(bases) + 1) ** 0.7  # popularity of each base posting
    weights = zipf[rng.permutation(len(bases))] * [3.0 if b["source"] == "linkedin" else 1.0 for b in bases]
    picks = rng.choice(len(bases), size=n, p=weights / weights.sum())  # LinkedIn ≈ 45% of texts
    texts = []
    for i in picks.tolist():
        b = bases[i]
        category = b["category"] if rng.random() > 0.1 else ""
        skills = [s for s in b["skills"] if rng.random() > 0.3]
        description = clean_text(_description(b, rng, peers[(b["source"], b["category"])]))
        texts.append(build_embedding_text(clean_text(_title(b, rng)), description or clean_text(b["title"]),
                                          clean_text(category), skills))
    return texts


def cache_path(n: int, d: int, model: str = "v3") -> Path:
    name = "jobsim-hash-ngram-v3" if model == "v3" else model
    return CACHE / f"text_{n}_{d}_{name}_g{VERSION}.npy"


def _embedder(model: str, d: int, texts: list[str]):
    if model == "v3":
        from jobsim.embedders.local import LocalEmbedder

        return LocalEmbedder("jobsim-hash-ngram-v3", d)
    from jobsim.embedders.fitted import FittedEmbedder, fit_model

    started = time.perf_counter()
    embedder = FittedEmbedder(fit_model(texts, d, seed=0))
    print(f"fitted {embedder.model} on {len(texts):,} texts in {time.perf_counter() - started:.0f} s", flush=True)
    return embedder


def text_vectors(n: int, d: int, model: str = "v3") -> np.ndarray:
    """The cached (n, d) float32 matrix, embedding the texts on the first call."""
    path = cache_path(n, d, model)
    if path.exists():
        return np.load(path)
    texts = make_texts(n)
    embedder = _embedder(model, d, texts)
    x = np.vstack([embedder.embed(texts[b0 : b0 + 2000]).vectors for b0 in range(0, n, 2000)])
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(x, dtype=np.float32))
    tmp.replace(path)
    return np.load(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dims", type=int, nargs="+", default=[512, 1536])
    ap.add_argument("--model", choices=MODELS, default="v3", help="offline embedder (see the module docstring)")
    ap.add_argument("--show", type=int, default=0, help="print this many sample texts")
    args = ap.parse_args()
    if not available():
        raise SystemExit(f"skipped: {SHARED} is missing")
    for text in make_texts(args.show, seed=1):
        print(text[:400].replace("\n", " | "), "\n")
    for d in args.dims:
        started = time.perf_counter()
        x = text_vectors(args.n, d, args.model)
        dup = len(x) - len(np.unique(x, axis=0))
        print(f"{cache_path(args.n, d, args.model)}: {x.shape}, {dup} exact duplicate rows, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
