"""How lists are built (the ``list_builder`` hook) and which rows duplicate each other.

**The hook.** A list builder takes a :class:`ListRequest` and returns an (n, ≥ k) int array:
each row's ranked list of other rows, best first, -1 for empty slots. It may return more
than ``k`` entries (up to ``request.depth``): the duplicates-excluded metric refills a list
from the deeper entries after taking duplicates out, as a de-duplicating list would. The
default, :func:`default_list_builder`, is the pipeline's list step as of today:
:func:`jobsim.neighbours.exact_topk` for ``depth`` cosine candidates, then
:func:`jobsim.scoring.rerank` (no de-duplication). A de-duplicating list function plugs in
by reading ``request.groups`` (the duplicate group of each row) and returning lists
without the subject's group and with one member per group; the evaluation then reports a
duplicate share of 0 for it.

**Duplicates.** Rows are duplicates when their embedding texts are equal (same
:func:`jobsim.text.content_hash`), or near-duplicates: reference cosine ≥ ``NEAR_COSINE``
(0.97) and the same company when both rows have one. The reference cosine is the TF-IDF
baseline's (fitted on the data set's corpus), the same for every method evaluated, so
every method is judged against the same groups. Groups are the transitive closure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from jobsim.neighbours import exact_topk
from jobsim.scoring import Context, rerank
from jobsim.text import content_hash

NEAR_COSINE = 0.97
_BLOCK = 2048


@dataclass(frozen=True)
class ListRequest:
    """Everything a list builder may use; the label is in none of it."""

    vectors: np.ndarray  # (n, d) float32 unit rows (zero rows = no features)
    k: int  # list length shown
    depth: int  # ranked entries wanted (≥ k), for refilling after duplicates are removed
    context: Context  # category is -1 for every row: the label never enters a bonus
    cosine_weight: float  # 1.0 = cosine only
    groups: np.ndarray  # (n,) int64 duplicate group of each row
    companies: list[str | None] | None = None  # per row, when the source has them (near-duplicates need them)
    text_hashes: list[str] | None = None  # per row: identical texts share a hash (the pipeline's content hash)


ListBuilder = Callable[[ListRequest], np.ndarray]


def unknown_context(n: int) -> Context:
    """No category, level, city or remote flag: the bonus is zero, the score is cosine."""
    return Context(category=np.full(n, -1, np.int32), level=np.full(n, -1, np.int8),
                   city=np.full(n, -1, np.int32), remote=np.zeros(n, bool))


def default_list_builder(request: ListRequest) -> np.ndarray:
    """Today's pipeline list: exact cosine candidates, then the rerank; duplicates kept."""
    scores, cand = exact_topk(request.vectors, request.depth)
    _, idx = rerank(np.where(cand < 0, 0.0, scores), cand, request.context, request.depth,
                    request.cosine_weight, min_score=0.0)
    return idx


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = int(self.parent[root])
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, int(self.parent[i])
        return root

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def duplicate_groups(texts: list[str], reference: object, companies: list[str | None] | None,
                     threshold: float = NEAR_COSINE) -> np.ndarray:
    """(n,) group id per row (the smallest row index of its group).

    ``reference`` is an (n, V) scipy sparse matrix of L2-normalised rows (or a dense array).
    """
    n = len(texts)
    uf = _UnionFind(n)
    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        j = first.setdefault(content_hash(text, "evaluate", 0), i)
        if j != i:
            uf.union(i, j)
    for start in range(0, n, _BLOCK):
        block = reference[start : start + _BLOCK] @ reference.T  # type: ignore[index,attr-defined]
        block = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
        rows, cols = np.nonzero(block >= threshold)
        for i, j in zip(rows + start, cols):
            if i < j and (companies is None or companies[i] is None or companies[j] is None
                          or companies[i] == companies[j]):
                uf.union(int(i), int(j))
    return np.array([uf.find(i) for i in range(n)], dtype=np.int64)


def pipeline_list_builder(request: ListRequest) -> np.ndarray:
    """The pipeline's own lists (:mod:`jobsim.lists`): identical texts share a row, duplicate
    groups found from the candidates (cosine plus companies when the dataset has them, cosine
    alone otherwise), never the subject's own duplicates, one posting per group, refilled by
    deeper search."""
    from jobsim.corpus import corpus_from_arrays
    from jobsim.settings import NeighbourSettings
    from jobsim.similarity import compute_neighbours

    n = len(request.vectors)
    keys = np.array([f"r{i:08d}" for i in range(n)], dtype=object)
    hashes = np.array(request.text_hashes or keys.tolist(), dtype=object)
    cfg = NeighbourSettings(k=request.depth, candidates=max(50, request.depth), min_score=0.0, incremental=False,
                            cosine_weight=request.cosine_weight, closed_list_days=0)
    corpus = corpus_from_arrays(keys, request.vectors, request.context, hashes, company=request.companies)
    lists = compute_neighbours(corpus, cfg).lists
    out = np.full((n, request.depth), -1, dtype=np.int64)
    for i, key in enumerate(keys.tolist()):
        rows = [int(entry.job_id[1:]) for entry in lists[key].items]
        out[i, : len(rows)] = rows
    return out
