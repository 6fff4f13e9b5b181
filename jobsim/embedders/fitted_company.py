"""The employer block of the corpus-fitted model (format 3): which companies post each title word.

Fitted on the (distinct text, company) pairs of the corpus: for each of the most frequent
features, the share of its pairs held by each company (a row of P = counts / row sum, words
in fewer than ``company_min_postings`` pairs get none), projected on the top ``company_dims``
right singular vectors of P (P·V = U·S; with at most ``company_dims`` companies P itself) and
centred: minus the projection of each company's share of all pairs, so a word that every
employer uses in proportion gets a row near zero. At embedding time the title's words (the
lexical block's weights, L2-normalised) sum their rows; the block is **not** normalised by
its own norm, so a title whose words say little about employers gets a short block (on a
board of one-posting companies the block stays small; see docs/fitted-embedder-tuning.md).
Two titles meet when their words are posted by the same employers ("Data Analyst, Bureau of
HIV" near "Epidemiologist"), even when they share no word. Body words get no block (on long
descriptions it did not help). Rows without a company count for nothing; without companies,
or with fewer than 2, or without title words, the block is empty (0 columns)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from jobsim.embedders.fitted_model import FittedModel
from jobsim.embedders.fitted_text import feature_of, split_text, tokens


def company_pairs(texts: list[str], companies: list[str | None] | None) -> list[tuple[str, str]]:
    """Each distinct (text, company) pair once, in order of first appearance (no company: left out)."""
    if companies is None:
        return []
    return list(dict.fromkeys((t, c) for t, c in zip(texts, companies) if c))


def company_block(model: FittedModel, pairs: list[tuple[str, str]], seed: int) -> np.ndarray:
    """(rows, ≤ company_dims) float16 company profile of each of the most frequent features."""
    p = model.params
    rows = min(p.lsa_features, len(model.features))
    company_ids: dict[str, int] = {}
    for _, company in pairs:
        company_ids.setdefault(company, len(company_ids))
    n_companies = len(company_ids)
    width = min(p.company_dims, n_companies, (model.dimensions - model.lsa_dims) // 2)
    if p.company_dims <= 0 or n_companies < 2 or width < 1 or rows < 1:
        return np.zeros((0, 0), np.float16)
    feature_id = {f: i for i, f in enumerate(model.features[:rows])}
    stems_of: dict[str, list[int]] = {}
    r, c = [], []
    for text, company in pairs:
        ids = stems_of.get(text)
        if ids is None:
            found = {feature_id.get(f[0]) for t in tokens(split_text(text)[0]) if (f := feature_of(t))}
            ids = stems_of[text] = sorted(i for i in found if i is not None)
        r.extend(ids)
        c.extend([company_ids[company]] * len(ids))
    counts = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(rows, n_companies))
    counts.sum_duplicates()
    total = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, total, out=np.zeros_like(total), where=total >= max(1, p.company_min_postings))
    shares = (sp.diags(scale) @ counts).tocsr()
    if not shares.nnz:  # no title word posted often enough (descriptions only)
        return np.zeros((0, 0), np.float16)
    if n_companies <= width:
        block, basis = shares.toarray(), np.eye(n_companies)
    else:
        from sklearn.utils.extmath import randomized_svd
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # one BLAS thread: the same floats whatever the threads
            u, s, basis = randomized_svd(shares, width, n_iter=p.lsa_iterations, random_state=seed)
        block = u * s
    # centred on each company's share of all pairs: a word every employer uses in proportion says nothing
    prior = np.bincount([company_ids[company] for _, company in pairs], minlength=n_companies) / len(pairs)
    block -= np.outer(total >= max(1, p.company_min_postings), prior @ basis.T)
    return np.ascontiguousarray(block, dtype=np.float16)
