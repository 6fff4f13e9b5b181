"""Fan-out: one task per item on the run's task runner, results handed back as they complete."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prefect.futures import as_completed
from prefect.task_runners import TaskRunner


def fan_out(runner: TaskRunner, task: Any, calls: Iterable[dict[str, Any]], in_flight: int,
            keep_going: Callable[[], bool] = lambda: True) -> Iterator[Any]:
    """Submit ``task`` once per parameter dict, at most ``in_flight`` at a time, and yield
    each result as it completes (so they can be merged without holding them all). Stops
    submitting when ``keep_going()`` turns false; the first failed task raises.

    Parameters go unwrapped: Dask rebuilds tuples (``quote()`` is one) in task arguments,
    and the values sent here (arrays, small dataclasses) are cheap for Prefect to visit."""
    pending = iter(calls)
    running: set[Any] = set()
    while True:
        while len(running) < max(1, in_flight) and keep_going():
            params = next(pending, None)
            if params is None:
                break
            running.add(runner.submit(task, params))
        if not running:
            return
        first = as_completed(list(running))
        future = next(first)
        first.close()
        running.discard(future)
        yield future.result()


def task_hook(runner: TaskRunner, task: Any, fn: Callable[..., Any], in_flight: int) -> Callable[..., Iterator[Any]]:
    """A ``run(fn, jobs)`` hook (e.g. for :func:`jobsim.shards.sharded_topk`) that runs each
    job — a tuple of ``fn``'s positional arguments — as ``task`` on ``runner``."""
    names = list(inspect.signature(fn).parameters)

    def run(_: Callable[..., Any], jobs: Iterable[tuple]) -> Iterator[Any]:
        return fan_out(runner, task, (dict(zip(names, job)) for job in jobs), in_flight)

    return run
