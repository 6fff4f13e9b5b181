"""The search corpus: one row per distinct vector (content hash), every listed job mapped
to its row.

Identical texts (reposts) share one row: the search sees each text once, and a job's own
reposts never come back as its neighbours. Rows with at least one active job are *base*
rows, rows ``[0, base)``: they are the candidates. Rows whose jobs are all closed
(closed or expired less than ``closed_list_days`` ago) are *query* rows ``[base, R)``: they
get lists but are never listed. Inside each part rows are ordered by content hash, so
the order — and with it every tie-break — is the same in every run and every path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from jobsim.candidates import fingerprints
from jobsim.contract import level_rank, normalise_label
from jobsim.repositories import JobContexts, VectorSet
from jobsim.scoring import Context, encode


@dataclass
class Corpus:
    """Rows (distinct vectors) and jobs, aligned by index arrays."""

    row_ids: np.ndarray  # (R,) object: "b:<hash>" for base rows, "q:<hash>" for query rows, sorted
    vectors: np.ndarray  # (R, d) float32, C-contiguous
    base: int  # rows [0, base) have an active job
    job_ids: np.ndarray  # (J,) object job keys, sorted
    job_row: np.ndarray  # (J,) int64
    active: np.ndarray  # (J,) bool
    context: Context  # per job
    company: np.ndarray  # (J,) int32 code of the normalised company, -1 = none
    created: np.ndarray  # (J,) int64 epoch microseconds (0 = unknown)
    member_start: np.ndarray  # (R + 1,) CSR offsets into ``members``
    members: np.ndarray  # active jobs of each row, newest first (created desc, key asc)
    fingerprints: np.ndarray | None = None  # (R,) of the rows' vectors, when the vectors read carried them

    @property
    def rows(self) -> int:
        return len(self.row_ids)

    @cached_property
    def age_rank(self) -> np.ndarray:
        """Each job's rank by creation, newest first (0 = the newest; equal times, equal ranks)."""
        return np.unique(-self.created, return_inverse=True)[1].astype(np.int64).reshape(-1)

    def row_fingerprints(self) -> np.ndarray:
        """Each row's vector fingerprint (:func:`jobsim.candidates.fingerprints`): carried from
        the vectors read when they had them (a snapshot keeps them), else computed (O(rows))."""
        return self.fingerprints if self.fingerprints is not None else fingerprints(self.vectors)


def _job_frame(vectors: VectorSet, jobs: JobContexts) -> pl.DataFrame:
    """Listed jobs whose stored vector has their current hash, sorted by key."""
    stored = pl.DataFrame({"id": vectors.ids.tolist(), "contentHash": vectors.hashes.tolist(),
                           "vrow": np.arange(len(vectors), dtype=np.int64)},
                          schema={"id": pl.String, "contentHash": pl.String, "vrow": pl.Int64})
    created = [int(c.timestamp() * 1e6) if c is not None else 0 for c in jobs.created]
    frame = pl.DataFrame({
        "id": jobs.ids, "contentHash": jobs.hashes, "active": jobs.active,
        "category": [normalise_label(v) or None for v in jobs.category],
        "level": [level_rank(v) for v in jobs.level],
        "city": [normalise_label(v) or None for v in jobs.city], "remote": jobs.remote,
        "company": [normalise_label(v) or None for v in jobs.company], "created": created,
    }, schema={"id": pl.String, "contentHash": pl.String, "active": pl.Boolean, "category": pl.String,
               "level": pl.Int8, "city": pl.String, "remote": pl.Boolean, "company": pl.String,
               "created": pl.Int64})
    return frame.join(stored, on=["id", "contentHash"], how="inner").sort("id")


def build_corpus(vectors: VectorSet, jobs: JobContexts) -> Corpus:
    """Join stored vectors with the listed jobs on (key, hash): stale vectors never count.

    Each distinct hash becomes one row; its vector is the one stored for the smallest key
    of that hash (identical texts have identical vectors when embedded from the pipeline's
    reuse; older copies may differ in the last bits)."""
    frame = _job_frame(vectors, jobs)
    rows = (frame.group_by("contentHash").agg(pl.col("active").any().alias("base"),
                                              pl.col("vrow").sort_by("id").first())
            .with_columns(pl.concat_str([pl.when(pl.col("base")).then(pl.lit("b:")).otherwise(pl.lit("q:")),
                                         pl.col("contentHash")]).alias("row_id"))
            .sort("row_id").with_row_index("row"))
    frame = frame.join(rows.select("contentHash", "row"), on="contentHash", how="left").sort("id")
    vrow = rows["vrow"].to_numpy()
    job_row = frame["row"].to_numpy().astype(np.int64)
    active = frame["active"].to_numpy()
    created = frame["created"].to_numpy()
    keys = np.array(frame["id"].to_list(), dtype=object)
    members = np.flatnonzero(active)
    members = members[np.lexsort((members, -created[members], job_row[members]))]  # index order = key order
    member_start = np.searchsorted(job_row[members], np.arange(len(rows) + 1))
    return Corpus(
        row_ids=np.array(rows["row_id"].to_list(), dtype=object),
        vectors=vectors.take(vrow) if len(rows) else np.zeros((0, vectors.dims), np.float32),
        base=int(rows["base"].sum()), job_ids=keys, job_row=job_row, active=active,
        context=Context(category=encode(frame["category"].to_list()),
                        level=frame["level"].to_numpy().astype(np.int8),
                        city=encode(frame["city"].to_list()), remote=frame["remote"].to_numpy()),
        company=encode(frame["company"].to_list()), created=created,
        member_start=member_start, members=members.astype(np.int64),
        fingerprints=vectors.fingerprints[vrow] if vectors.fingerprints is not None else None,
    )


def corpus_from_arrays(ids: np.ndarray, vectors: np.ndarray, context: Context, hashes: np.ndarray | None = None,
                       active: np.ndarray | None = None, company: list[str | None] | None = None) -> Corpus:
    """A corpus from plain arrays (benchmarks and tests): one job per row of ``vectors``,
    its hash its key unless ``hashes`` are given, all active unless ``active`` says not."""
    from jobsim.contract import EXPERIENCE_LEVELS

    n = len(ids)
    jobs = JobContexts()
    for i in range(n):
        level = int(context.level[i])
        doc = {"embedding": {"contentHash": str(hashes[i] if hashes is not None else ids[i])},
               "category": f"c{context.category[i]}" if context.category[i] >= 0 else None,
               "experienceLevel": EXPERIENCE_LEVELS[level] if level >= 0 else None,
               "location": {"city": f"t{context.city[i]}" if context.city[i] >= 0 else None,
                            "remote": bool(context.remote[i])},
               "company": company[i] if company is not None else None}
        jobs.append(str(ids[i]), doc, active=True if active is None else bool(active[i]))
    stored = VectorSet(ids=np.asarray(ids, dtype=object), vectors=np.ascontiguousarray(vectors, dtype=np.float32),
                       hashes=np.array([str(h) for h in (hashes if hashes is not None else ids)], dtype=object))
    return build_corpus(stored, jobs)
