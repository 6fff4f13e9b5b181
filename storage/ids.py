"""Job keys (:mod:`jobsim.ids`) to MongoDB ``_id`` values and back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import bson
from bson import ObjectId

from jobsim.ids import OTHER, STRING


def to_key(mongo_id: Any) -> str:
    """The key of a stored ``_id``: ObjectId → hex, string → ``s:…``, other → ``x:<type>:…``."""
    if isinstance(mongo_id, ObjectId):
        return str(mongo_id)
    if isinstance(mongo_id, str):
        return STRING + mongo_id
    packed = base64.urlsafe_b64encode(bson.encode({"v": mongo_id})).decode("ascii")
    return f"{OTHER}{type(mongo_id).__name__}:{packed}"


def to_mongo_id(key: str) -> Any:
    """The ``_id`` value of a key (inverse of :func:`to_key`); ValueError for a malformed key."""
    if key.startswith(STRING):
        return key[len(STRING):]
    if key.startswith(OTHER):
        packed = key[len(OTHER):].split(":", 1)[1]
        return bson.decode(base64.urlsafe_b64decode(packed.encode("ascii")))["v"]
    if len(key) == 24 and ObjectId.is_valid(key):
        return ObjectId(key)
    raise ValueError(f"not a job key: {key[:40]!r}")


def to_mongo_ids(keys: list[str]) -> list[Any]:
    return [to_mongo_id(k) for k in keys]


ID_BATCH = 100
"""``_id`` values per ``{"_id": {"$in": …}}`` look-up. SecantusDB's ``$in`` costs about the square
of the list's length (bench/by_id.py, 100 k jobs: an incremental run's 1,500 re-reads 7.0× faster
in queries of 100 than of up to 5,000); MongoDB answers either from the ``_id`` index, where the
extra round trips cost little."""


def id_filters(mongo_ids: list[Any]) -> Iterator[dict[str, Any]]:
    """``_id`` look-up filters that together cover ``mongo_ids``, :data:`ID_BATCH` each."""
    for start in range(0, len(mongo_ids), ID_BATCH):
        yield {"_id": {"$in": mongo_ids[start : start + ID_BATCH]}}
