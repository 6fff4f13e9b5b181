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

UNKNOWN_CREATED = np.iinfo(np.int64).max  # a posting with no createdAt is never the original


@dataclass
class Groups:
    row_group: np.ndarray  # (R,) int64 component label of each row
    job_group: np.ndarray  # (J,) int64 component label of each job
    original: list[str | None]  # per job: key of its group's original, None when alone
    near_links: int  # near-duplicate links between distinct rows
    grouped_jobs: int  # jobs in groups of two or more
    groups: int  # groups of two or more jobs


def _companies_agree(corpus: Corpus, jobs_of: list[np.ndarray], a: int, b: int) -> bool:
    ca, cb = corpus.company[jobs_of[a]], corpus.company[jobs_of[b]]
    if (ca < 0).any() or (cb < 0).any():
        return True
    return bool(np.intersect1d(ca, cb).size)


def near_links(corpus: Corpus, scores: np.ndarray, cand: np.ndarray, candidates: int,
               threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (a, b) linked as near-duplicates."""
    width = min(candidates, cand.shape[1])
    a, slot = np.nonzero((cand[:, :width] >= 0) & (scores[:, :width] >= threshold))
    b = cand[a, slot]
    if not len(a):
        return a, b
    jobs_of = corpus.row_jobs()
    keep = np.fromiter((_companies_agree(corpus, jobs_of, int(x), int(y)) for x, y in zip(a, b)),
                       dtype=bool, count=len(a))
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
