"""Fitting the corpus model: vocabulary and document frequencies, boilerplate shingles, LSA.

Deterministic: the same texts, companies, seed and parameters give the same bytes (every
order is fixed: features by document frequency then by string, tokens by string; the SVD
uses a seeded randomised solver on a seeded sample).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import numpy as np

from jobsim.embedders.fitted_company import company_block, company_pairs
from jobsim.embedders.fitted_model import FitParams, FittedModel
from jobsim.embedders.fitted_text import feature_of, shingle_hashes, split_text, tokens

log = logging.getLogger(__name__)


def _tokenise(texts: list[str]) -> tuple[list[str], list[np.ndarray], list[set[str]]]:
    """Distinct body tokens (by first appearance), each text's body as token ids with -1
    between lines, and each text's title stems."""
    index: dict[str, int] = {}
    bodies, titles = [], []
    for text in texts:
        title, lines = split_text(text)
        ids: list[int] = []
        for line, _ in lines:
            ids.extend([index.setdefault(t, len(index)) for t in tokens(line)])
            ids.append(-1)
        bodies.append(np.array(ids, np.int64))
        titles.append({f[0] for t in tokens(title) if (f := feature_of(t)) is not None})
    return list(index), bodies, titles


def _document_frequencies(
    all_tokens: list[str], bodies: list[np.ndarray], titles: list[set[str]]
) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """stem index, token → stem (-1 = function word), stem df, stem generic flag."""
    stems: dict[str, int] = {}
    generic: dict[int, bool] = {}
    token_stem = np.full(len(all_tokens) + 1, -1, np.int64)  # last entry: id -1
    for i, token in enumerate(all_tokens):
        feature = feature_of(token)
        if feature is not None:
            j = token_stem[i] = stems.setdefault(feature[0], len(stems))
            generic[j] = generic.get(j, False) or feature[1]
    title_ids = [[stems.setdefault(s, len(stems)) for s in sorted(t)] for t in titles]
    df = np.zeros(len(stems), np.int64)
    for body, title in zip(bodies, title_ids):
        present = token_stem[body]
        df[np.unique(np.concatenate([present[present >= 0], np.array(title, np.int64)]))] += 1
    flags = np.array([generic.get(j, False) for j in range(len(stems))], bool)
    return stems, token_stem, df, flags


def _boilerplate(bodies: list[np.ndarray], remap: np.ndarray, companies: list[str | None] | None,
                 params: FitParams) -> np.ndarray:
    """Sorted hashes of the shingles that recur in ≥ max(postings, fraction·N) postings
    (of ≥ ``boilerplate_companies`` distinct companies when that is > 0)."""
    n = len(bodies)
    threshold = max(params.boilerplate_postings, math.ceil(params.boilerplate_fraction * n))
    per_doc = []
    for body in bodies:
        h = shingle_hashes(remap[body], params.shingle)
        per_doc.append(np.unique(h[h != 0]))
    if not per_doc or not sum(len(h) for h in per_doc):
        return np.zeros(0, np.uint64)
    hashes = np.concatenate(per_doc)
    uniq, counts = np.unique(hashes, return_counts=True)
    common = uniq[counts >= threshold]
    if params.boilerplate_companies > 0 and len(common):
        codes: dict[str, int] = {}
        owner = np.array([codes.setdefault(c, len(codes)) if c else -1 - i
                          for i, c in enumerate(companies or [None] * n)], np.int64)
        who = np.repeat(owner, [len(h) for h in per_doc])
        mask = np.isin(hashes, common)
        pairs = np.unique(np.stack([hashes[mask].view(np.int64), who[mask]]), axis=1)
        h, c = np.unique(pairs[0], return_counts=True)
        common = np.sort(h[c >= params.boilerplate_companies].view(np.uint64))
    return common


def distinct(texts: list[str], companies: list[str | None] | None) -> tuple[list[str], list[str | None] | None]:
    """Each distinct text once (first occurrence): reposts count once in every statistic,
    so a text reposted five times is not its own boilerplate."""
    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        first.setdefault(text, i)
    keep = list(first.values())
    return [texts[i] for i in keep], [companies[i] for i in keep] if companies is not None else None


def fit(texts: list[str], dimensions: int, companies: list[str | None] | None, seed: int,
        params: FitParams) -> FittedModel:
    started = time.perf_counter()
    params = replace(params, hash_seed=seed)
    pairs = company_pairs(texts, companies) if params.company_dims > 0 else []
    texts, companies = distinct(texts, companies)
    all_tokens, bodies, titles = _tokenise(texts)
    stems, token_stem, df, generic = _document_frequencies(all_tokens, bodies, titles)
    names = list(stems)
    kept = [j for j in np.flatnonzero(df >= params.min_df)]
    kept.sort(key=lambda j: (-df[j], names[j]))
    kept = kept[: params.max_features]
    new_id = np.full(len(names) + 1, -1, np.int64)
    new_id[kept] = np.arange(len(kept))
    # tokens: those of a kept feature, and function words (shingles need them) in ≥ min_df postings
    token_df = np.zeros(len(all_tokens) + 1, np.int64)
    for body in bodies:
        token_df[np.unique(body)] += 1
    keep_token = [i for i, t in enumerate(all_tokens)
                  if new_id[token_stem[i]] >= 0 if token_stem[i] >= 0] + \
                 [i for i in range(len(all_tokens)) if token_stem[i] < 0 and token_df[i] >= params.min_df]
    keep_token.sort(key=lambda i: all_tokens[i])
    remap = np.full(len(all_tokens) + 1, -1, np.int64)
    remap[keep_token] = np.arange(len(keep_token))
    boilerplate = _boilerplate(bodies, remap, companies, params)
    feature_df = df[kept]
    model = FittedModel(
        dimensions=dimensions, params=params, tokens=tuple(all_tokens[i] for i in keep_token),
        features=tuple(names[j] for j in kept),
        token_feature=new_id[token_stem[keep_token]].astype(np.int32),
        idf=(np.log((1 + len(texts)) / (1 + feature_df)) + 1).astype(np.float32),
        generic=generic[kept], boilerplate=boilerplate, lsa=np.zeros((0, 0), np.float16),
    )
    model = _with_lsa(model, texts, seed)
    if pairs:
        model = replace(model, company=company_block(model, pairs, seed), version="")
    log.info("fitted %s on %d texts: %d tokens, %d features, %d boilerplate shingles, lsa %s, company %s, %.1f s",
             model.version, len(texts), len(model.tokens), len(model.features), len(boilerplate),
             model.lsa.shape, model.company.shape, time.perf_counter() - started)
    return model


def _with_lsa(model: FittedModel, texts: list[str], seed: int) -> FittedModel:
    """The model with its LSA block: top right singular vectors of the word part of a
    seeded sample of the texts, restricted to the most frequent features."""
    from sklearn.decomposition import TruncatedSVD
    from threadpoolctl import threadpool_limits

    from jobsim.embedders.fitted import FittedEmbedder

    p = model.params
    rows = min(p.lsa_features, len(model.features))
    sample = min(p.lsa_sample, len(texts))
    k = min(p.lsa_dims, model.dimensions // 2, sample - 1, rows - 1)
    if p.lsa_postings_per_dim > 0:
        k = min(k, max(2, len(texts) // p.lsa_postings_per_dim))
    if k < 1:
        return model
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(texts), sample, replace=False)) if sample < len(texts) else np.arange(sample)
    words = FittedEmbedder(model).word_matrix([texts[i] for i in chosen])[:, :rows]
    with threadpool_limits(limits=1, user_api="blas"):  # one BLAS thread: the same floats whatever the threads
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=p.lsa_iterations, random_state=seed).fit(words)
    lsa = np.ascontiguousarray(svd.components_.T, dtype=np.float16)
    return replace(model, lsa=lsa, version="")
