"""How the process allocates: many small objects at once (list entries, BSON documents, write
operations), and the pages numpy's large arrays live in."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while many small objects that form no cycle are
    built: with a large heap alive (a run holds every job's snapshot) it would otherwise
    re-scan the heap again and again as they pile up, 2–3× the time of building them
    (bench/rerank.py; bench/snapshot.py: 22 k list writes 2.38 s vs 0.89 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def numpy_huge_pages(enabled: bool) -> bool:
    """Whether numpy asks the kernel for transparent huge pages for its arrays of 4 MB and more
    (``madvise``: numpy's default on Linux, where THP is set to ``madvise`` or ``always``).
    Returns the policy it replaces. Where the host backs a VM's memory with small pages
    (Firecracker here), a huge page's first touch faults in 512 of them: 566 MB of fresh
    arrays took 1.14 s in huge pages and 0.18 s in small ones (``bench/pages.py``), and the
    exact pass's and the ANN's GEMMs ran as fast (BENCHMARKS.md). A numpy without the switch
    keeps its own."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - numpy < 2
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            log.warning("this numpy cannot switch huge pages; it keeps its own policy")
            return enabled
    return bool(_set_madvise_hugepage(enabled))
