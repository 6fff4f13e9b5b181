"""Packing inputs into embedding requests under an input-count and a token budget.

Pure: numbers in, lists of row indices out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pack_requests(tokens: Sequence[int], max_inputs: int, max_tokens: int) -> list[list[int]]:
    """Group row indices into requests of ≤ ``max_inputs`` rows and ≤ ``max_tokens`` tokens.

    Next-fit in input order: a request closes when the next row would break a limit. Every
    row must fit on its own (``tokens[i] <= max_tokens``; truncate first). Each closed
    request wastes less than one row's tokens, so with rows far below the token budget the
    count stays within a few percent of :func:`min_requests`.
    """
    if max_inputs < 1 or max_tokens < 1:
        raise ValueError("max_inputs and max_tokens must be positive")
    requests: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, n in enumerate(tokens):
        n = int(n)
        if n > max_tokens:
            raise ValueError(f"row {i} has {n} tokens, more than a request may carry ({max_tokens})")
        if current and (len(current) >= max_inputs or used + n > max_tokens):
            requests.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    if current:
        requests.append(current)
    return requests


def min_requests(tokens: Sequence[int], max_inputs: int, max_tokens: int) -> int:
    """Lower bound on the requests any packing needs: max(⌈inputs/max_inputs⌉, ⌈tokens/max_tokens⌉)."""
    total = int(sum(int(n) for n in tokens))
    return max(math.ceil(len(tokens) / max_inputs), math.ceil(total / max_tokens))
