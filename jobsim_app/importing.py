"""``jobsim import`` and ``jobsim seed``: postings into the jobs collection, in batches, with
progress, and a report of what the pipeline will do with them."""

from __future__ import annotations

import argparse
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jobsim.import_report import ImportOutlook, ReasonGroup, outlook
from jobsim.settings import Settings
from jobsim_app import preflight
from jobsim_app.failures import DONE, FAILED

log = logging.getLogger(__name__)
TRANSIENT_RETRIES = 2
PROGRESS_EVERY_S = 5.0


def write_postings(settings: Settings, docs: list[dict[str, Any]], unset: tuple[str, ...] = (),
                   what: str = "import") -> tuple[int, int]:
    """Upsert ``docs`` by (source, externalId) in batches of ``JOBSIM_MONGO__WRITE_BATCH_SIZE``.

    A batch that hits a transient error (timeout, lost connection) is retried twice with a
    pause; if it still fails, the error says how far the write got and that re-running the
    same command converges (every write is an upsert on the same key).
    """
    from pymongo.errors import AutoReconnect, PyMongoError

    from storage.job_imports import JobImportsRepository

    db = preflight.check_mongo(settings)
    repo = JobImportsRepository(db, settings.mongo.jobs_collection, settings.mongo.write_batch_size)
    repo.ensure_indexes()
    size = settings.mongo.write_batch_size
    batches = max(1, -(-len(docs) // size))
    now, started, last_log = datetime.now(timezone.utc), time.monotonic(), time.monotonic()
    inserted = updated = index = 0
    try:
        for index in range(batches):
            chunk = docs[index * size:(index + 1) * size]
            for attempt in range(TRANSIENT_RETRIES + 1):
                try:
                    added, changed = repo.upsert_imported(chunk, now, unset=unset)
                    break
                except AutoReconnect as exc:  # timeouts and lost connections: worth another try
                    if attempt == TRANSIENT_RETRIES:
                        raise
                    log.warning("%s batch %d of %d: %s; retrying", what, index + 1, batches, type(exc).__name__)
                    time.sleep(2.0 * (attempt + 1))
            inserted, updated = inserted + added, updated + changed
            if batches > 1 and (time.monotonic() - last_log >= PROGRESS_EVERY_S or index + 1 == batches):
                done, elapsed = min(len(docs), (index + 1) * size), time.monotonic() - started
                log.info("%s: %d of %d batches, %s of %s rows, %.0f rows/s", what, index + 1, batches,
                         f"{done:,}", f"{len(docs):,}", done / max(elapsed, 1e-9))
                last_log = time.monotonic()
    except PyMongoError as exc:
        exc.add_note(f"{index * size:,} of {len(docs):,} rows were written before batch {index + 1} of "
                     f"{batches} failed; run the same command again to finish: the {what} upserts by "
                     "source + externalId, so a re-run converges")
        raise
    return inserted, updated


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from jobsim.importer import PRESETS, map_rows
    from jobsim_app.tables import read_table

    path = Path(args.file)
    source = args.source or args.preset
    batch = map_rows(read_table(path, encoding=args.encoding), PRESETS[args.preset], source,
                     ignore_expiry=args.ignore_expiry)
    report = outlook(batch, datetime.now(timezone.utc), settings.neighbours.closed_list_days)
    if not batch.docs:
        print_outlook(path.name, report, 0, 0)
        print(f"nothing imported: all {report.read:,} rows were rejected" if report.read
              else "nothing imported: the file has no rows")
        return FAILED
    unset = ("expiresAt",) if args.ignore_expiry else ()
    inserted, updated = write_postings(settings, batch.docs, unset=unset)
    print_outlook(path.name, report, inserted, updated)
    print(report.headline(ignore_expiry=args.ignore_expiry))
    if settings.ops.emit_import_events:
        emit_import_completed(source, path.name, len(batch.docs), inserted, updated, len(batch.rejected))
    return DONE


def print_outlook(name: str, report: ImportOutlook, inserted: int, updated: int) -> None:
    print(f"{name}: {report.imported:,} rows imported ({inserted:,} new, {updated:,} updated), "
          f"{report.read - report.imported:,} rejected (of {report.read:,} rows read)")
    _table("rejected (not imported)", report.rejected)
    _table("imported, but will not be embedded (jobsim.jobs.check_job, the pipeline's rule)",
           report.not_embedded)


def _table(title: str, groups: dict[str, ReasonGroup]) -> None:
    if not groups:
        return
    print(f"  {title}:")
    for reason, group in sorted(groups.items(), key=lambda kv: (-kv[1].rows, kv[0])):
        print(f"    {group.rows:>8,}  {reason}")
        for ex in group.examples:
            print(f"              row {ex.row:<7} {ex.external_id[:24]:<24}  {ex.title}")


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from jobsim.synthetic import generate_jobs

    inserted, updated = write_postings(settings, generate_jobs(args.n, seed=args.seed), what="seed")
    print(f"synthetic jobs: {inserted:,} new, {updated:,} updated (database {settings.mongo.database})")
    return DONE


def emit_import_completed(source: str, file: str, rows: int, inserted: int, updated: int,
                          rejected: int) -> str | None:
    """Emit ``jobsim.import.completed`` (the after-import deployment's trigger) when a Prefect
    API is configured; returns the import id, or None when no API is configured."""
    import uuid

    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return None  # no server to tell (emitting would start a throwaway ephemeral one)
    import_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    emit_event(
        event="jobsim.import.completed",
        resource={"prefect.resource.id": f"jobsim.import.{import_id}", "prefect.resource.name": file},
        payload={"import_id": import_id, "source": source, "file": file, "rows": rows,
                 "inserted": inserted, "updated": updated, "rejected": rejected},
    )
    EventsWorker.drain_all(timeout=30)  # the CLI exits right after: send it now
    print(f"  emitted jobsim.import.completed (import {import_id})")
    return import_id
