"""Run the flow in this process and SIGKILL it at a chosen point (used by test_reliability).

usage: python -m tests.crash_run COLLECTION N
Kills this process just before the N-th bulk write to COLLECTION ("jobs:lists" = the
write-back of neighbour lists, "job_embeddings" = storing vectors). Real pymongo, real
server: only the moment of death is chosen.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from pymongo.collection import Collection

target, limit = sys.argv[1], int(sys.argv[2])
calls = {"n": 0}
original = Collection.bulk_write


def bulk_write(self, requests, *args, **kwargs):
    is_lists = self.name == "jobs" and any("similarJobs" in str(getattr(r, "_doc", "")) for r in requests)
    name = "jobs:lists" if is_lists else self.name
    if name == target:
        calls["n"] += 1
        if calls["n"] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)
    return original(self, requests, *args, **kwargs)


Collection.bulk_write = bulk_write

from flows.refresh import similarity_refresh  # noqa: E402

asyncio.run(similarity_refresh())
print("finished without crashing")
