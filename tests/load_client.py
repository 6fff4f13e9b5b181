"""Loopback load for the read endpoint (used by test_load): N requests, results as JSON lines.

usage: python -m tests.load_client BASE_URL IDS_FILE N OUT_FILE
"""

from __future__ import annotations

import json
import sys
import time

import httpx

base, ids_file, total, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids = json.loads(open(ids_file).read())
deadline = time.monotonic() + 240  # bounded in count and time
with httpx.Client(base_url=base, timeout=30) as client, open(out, "w") as fh:
    for n in range(total):
        if time.monotonic() > deadline:
            break
        job_id = ids[n % len(ids)]
        response = client.get(f"/api/jobs/{job_id}/similar")
        body = response.json()
        scored = [item["_id"] for item in body.get("data", []) if item.get("similarityScore") is not None]
        fh.write(json.dumps({"id": job_id, "status": response.status_code,
                             "method": body.get("method"), "scored": scored}) + "\n")
