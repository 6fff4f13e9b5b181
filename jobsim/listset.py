"""Every listed job's final list as flat arrays, and what a run derives from its lists
without building one Python object per entry: the fingerprints the write-back diffs
against what is stored, the checks and the scores. A list becomes a :class:`JobList`
only when it is to be written or is looked up (a :class:`ListSet` is a read-only
mapping job key → JobList).

A list's fingerprint (:func:`list_fingerprint`, and :meth:`ListSet.fingerprints` for a
whole set) is the blake2b of its words, little-endian uint64: the number of entries, the
group (0 = none, else the key's hash with the low bit set), then per entry the
neighbour's key hash, the score and the cosine as float64 bits, and the match (the
:data:`CODES` index of its explanation codes, or a hash of codes outside them with the
high bit set). A key's hash is the first 8 bytes of its blake2b. Lists read from the
database and lists computed in a run give the same bytes for the same content.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from jobsim.allocation import collector_paused
from jobsim.repositories import JobList, Neighbour
from jobsim.scoring import match_codes
from jobsim.segments import spans, within

CODES = [match_codes(bits) for bits in range(32)]
CODE_OBJECTS = np.empty(len(CODES), dtype=object)  # the same tuples, indexable by a bits array
for _bits, _codes in enumerate(CODES):
    CODE_OBJECTS[_bits] = _codes
_CODE_BITS = {codes: bits for bits, codes in enumerate(CODES)}
_FOREIGN = 1 << 63  # a match outside CODES (stored by other code): never equal to a computed one


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _group_word(group: str | None) -> int:
    return 0 if group is None else key_hash(group) | 1


def _match_word(match: tuple[str, ...]) -> int:
    bits = _CODE_BITS.get(tuple(match))
    return bits if bits is not None else key_hash(repr(tuple(match))) | _FOREIGN


def list_fingerprint(job_list: JobList) -> bytes:
    """A job's list and group as 16 bytes (see the module docstring), stable across processes."""
    items = job_list.items
    words: list[int | float] = [len(items), _group_word(job_list.group)]
    for n in items:
        words += (key_hash(n.job_id), float(n.score), float(n.cosine), _match_word(n.match))
    return hashlib.blake2b(struct.pack("<QQ" + "QddQ" * len(items), *words), digest_size=16).digest()


EMPTY = list_fingerprint(JobList(()))


@dataclass(eq=False)
class ListSet(Mapping[str, JobList]):
    """Lists of jobs of one corpus: list ``i`` is job ``jobs[i]``'s, its entries are
    ``starts[i]:starts[i + 1]`` of the entry arrays, best first. Jobs are indices into
    ``job_ids`` (the corpus's keys) and ``original`` (each job's group original, or None)."""

    job_ids: np.ndarray  # (corpus jobs,) object: keys
    original: list[str | None]  # (corpus jobs,)
    jobs: np.ndarray  # (m,) int64: whose list
    starts: np.ndarray  # (m + 1,) int64
    entry: np.ndarray  # (e,) int64: the neighbour (a corpus job)
    score: np.ndarray  # (e,) float64, 2 decimals
    cosine: np.ndarray  # (e,) float64, 2 decimals
    bits: np.ndarray  # (e,) int: jobsim.scoring.MATCH_BITS that applied
    _at: dict[str, int] | None = field(default=None, init=False, repr=False)

    @classmethod
    def without_entries(cls, job_ids: np.ndarray, original: list[str | None], jobs: np.ndarray) -> ListSet:
        """Empty lists of ``jobs``."""
        return cls(job_ids, original, np.asarray(jobs, dtype=np.int64), np.zeros(len(jobs) + 1, np.int64),
                   np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))

    def concat(self, *others: ListSet) -> ListSet:
        """This set's lists, then the others' (lists of other jobs of the same corpus)."""
        sets = (self, *others)
        ends = np.cumsum([0] + [int(x.starts[-1]) for x in sets[:-1]])
        return ListSet(self.job_ids, self.original, np.concatenate([x.jobs for x in sets]),
                       np.concatenate([self.starts[:1]] + [x.starts[1:] + end for x, end in zip(sets, ends)]),
                       *(np.concatenate([getattr(x, a) for x in sets]) for a in ("entry", "score", "cosine", "bits")))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    def keys_list(self) -> list[str]:
        return list(map(str, self.job_ids[self.jobs].tolist()))

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_list())

    def __getitem__(self, key: str) -> JobList:
        if self._at is None:
            self._at = {k: i for i, k in enumerate(self.keys_list())}
        return self.job_list(self._at[key])

    def __eq__(self, other: object) -> bool:
        return Mapping.__eq__(self, other)

    def job_list(self, i: int) -> JobList:
        return next(iter(self.materialize([i]).values()))

    def materialize(self, positions: list[int] | np.ndarray) -> dict[str, JobList]:
        """The lists at ``positions`` as JobList objects, by key."""
        positions = np.asarray(positions, dtype=np.int64)
        counts = self.counts[positions]
        ends = np.cumsum(counts)
        at = spans(self.starts[positions], counts)
        with collector_paused():
            items = list(map(Neighbour, map(str, self.job_ids[self.entry[at]].tolist()), self.score[at].tolist(),
                             self.cosine[at].tolist(), CODE_OBJECTS[self.bits[at]].tolist()))
            jobs = self.jobs[positions].tolist()
            return {str(self.job_ids[j]): JobList(tuple(items[a:z]), self.original[j])
                    for j, a, z in zip(jobs, (ends - counts).tolist(), ends.tolist())}

    def fingerprints(self) -> list[bytes]:
        """Every list's :func:`list_fingerprint`, from the arrays (one hash call per list)."""
        m, counts = len(self.jobs), self.counts
        width = 2 + 4 * (int(counts.max()) if m else 0)
        words = np.zeros((m, width), dtype="<u8")
        words[:, 0] = counts
        words[:, 1] = np.fromiter((_group_word(self.original[j]) for j in self.jobs.tolist()), dtype=np.uint64, count=m)
        row = np.repeat(np.arange(m), counts)
        col = 2 + 4 * within(counts)
        words[row, col] = self._key_hashes()[self.entry]
        words[row, col + 1] = self.score.astype("<f8").view("<u8")
        words[row, col + 2] = self.cosine.astype("<f8").view("<u8")
        words[row, col + 3] = self.bits
        flat, stride = memoryview(words.tobytes()), width * 8
        blake = hashlib.blake2b
        return [blake(flat[i * stride: i * stride + 16 + 32 * c], digest_size=16).digest()
                for i, c in enumerate(counts.tolist())]

    def _key_hashes(self) -> np.ndarray:
        """Hash of every corpus job's key (computed for the jobs listed as neighbours only)."""
        out = np.zeros(len(self.job_ids), dtype=np.uint64)
        used = np.unique(self.entry)
        out[used] = np.fromiter(map(key_hash, map(str, self.job_ids[used].tolist())), dtype=np.uint64, count=len(used))
        return out

    def checks(self, active: np.ndarray, k: int) -> dict[str, float | int]:
        """What the lists look like, counted from the lists themselves (``active``: per corpus
        job): lists holding a duplicate of their own job or two postings of one group (both
        must be 0), and the median length of active jobs' lists where at least ``k`` other
        groups have open jobs. A listed job's group is its list's (its original, else
        itself); a neighbour without a list here is its own group."""
        n = len(self.job_ids)
        key_group = {}  # group key -> label
        label = np.arange(n, dtype=np.int64)  # a job alone is its own group
        at = {str(k): i for i, k in enumerate(self.job_ids.tolist())}
        for j in self.jobs.tolist():
            original = self.original[j]
            if original is not None:
                label[j] = key_group.setdefault(original, at.get(original, n + len(key_group)))
        counts = self.counts
        row = np.repeat(np.arange(len(self.jobs)), counts)
        mine, listed_groups = label[self.jobs], label[self.entry]
        own = int(np.count_nonzero(np.bincount(row[listed_groups == mine[row]], minlength=len(self.jobs))))
        order = np.lexsort((listed_groups, row))
        same = (row[order][1:] == row[order][:-1]) & (listed_groups[order][1:] == listed_groups[order][:-1])
        repeated = len(np.unique(row[order][1:][same]))
        is_active = active[self.jobs]
        open_groups = np.unique(mine[is_active])
        others = len(open_groups) - np.isin(mine, open_groups)
        lengths = counts[is_active & (others >= k)]
        return {"lists": len(self.jobs), "closed_job_lists": int(len(self.jobs) - is_active.sum()),
                "with_own_duplicate": own, "with_repeated_group": repeated,
                "median_length": float(np.median(lengths)) if len(lengths) else 0.0,
                "shorter_than_k": int((lengths < k).sum())}
