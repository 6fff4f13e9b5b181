"""Duplicate groups: reposts of one job, found once per run from the exact candidate lists.

Two jobs are in one group when they have the same embedding text (the same corpus row),
or — near-duplicates — when their rows' cosine is at least ``threshold`` and their
companies agree (a company in common, or one side names none). Groups are the connected
components of these links. Near-duplicate links are read from the first ``candidates``
entries of each row's exact candidate list, the part every path (full, sharded,
incremental) computes identically, so groups are the same in every path.

A group's *original* is its earliest posting (``createdAt``, then key); every member of a
group of two or more jobs carries the original's key (``duplicateGroup`` on the job).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from jobsim.corpus import Corpus
from jobsim.segments import spans

UNKNOWN_CREATED = np.iinfo(np.int64).max  # a posting with no createdAt is never the original


@dataclass
class Groups:
    row_group: np.ndarray  # (R,) int64 component label of each row
    job_group: np.ndarray  # (J,) int64 component label of each job
    original: list[str | None]  # per job: key of its group's original, None when alone
    near_links: int  # near-duplicate links between distinct rows
    grouped_jobs: int  # jobs in groups of two or more
    groups: int  # groups of two or more jobs


def companies_agree(corpus: Corpus, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row pair (a, b), whether the companies of their jobs agree: a job of either row
    names none, or the rows share one. Vectorised over the pairs' (row, company) entries."""
    company = corpus.company.astype(np.int64) + 1  # 0 = none
    rows, width = corpus.rows, int(company.max(initial=0)) + 1
    unknown = np.bincount(corpus.job_row, weights=company == 0, minlength=rows) > 0
    pairs = np.unique(corpus.job_row.astype(np.int64) * width + company)  # distinct (row, company), sorted
    start = np.searchsorted(pairs // width, np.arange(rows + 1))
    count = start[a + 1] - start[a]  # each pair expanded by a's companies
    link = np.repeat(np.arange(len(a)), count)
    want = b[link] * width + pairs[spans(start[a], count)] % width
    found = pairs[np.minimum(np.searchsorted(pairs, want), len(pairs) - 1)] == want if len(pairs) else want < 0
    return unknown[a] | unknown[b] | (np.bincount(link[found], minlength=len(a)) > 0)


def near_links(corpus: Corpus, scores: np.ndarray, cand: np.ndarray, candidates: int,
               threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (a, b) linked as near-duplicates."""
    width = min(candidates, cand.shape[1])
    a, slot = np.nonzero((cand[:, :width] >= 0) & (scores[:, :width] >= threshold))
    b = cand[a, slot]
    keep = companies_agree(corpus, a, b)
    return a[keep], b[keep]


def duplicate_groups(corpus: Corpus, scores: np.ndarray, cand: np.ndarray, candidates: int,
                     threshold: float) -> Groups:
    """Groups of the corpus's jobs (see the module docstring)."""
    r = corpus.rows
    a, b = near_links(corpus, scores, cand, candidates, threshold)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(r, r))
    _, row_group = connected_components(graph, directed=True, connection="weak")
    row_group = row_group.astype(np.int64)
    job_group = row_group[corpus.job_row]
    created = np.where(corpus.created > 0, corpus.created, UNKNOWN_CREATED)
    order = np.lexsort((np.arange(len(job_group)), created, job_group))  # by group, earliest, key
    first = np.ones(len(order), dtype=bool)
    first[1:] = job_group[order][1:] != job_group[order][:-1]
    sizes = np.bincount(job_group, minlength=r)
    original_of_group = {int(job_group[j]): str(corpus.job_ids[j]) for j in order[first]}
    original = [original_of_group[int(g)] if sizes[g] > 1 else None for g in job_group]
    multi = sizes > 1
    return Groups(row_group=row_group, job_group=job_group, original=original, near_links=len(a),
                  grouped_jobs=int(sizes[multi].sum()), groups=int(multi.sum()))
