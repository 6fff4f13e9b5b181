"""Job keys (:mod:`jobsim.ids`) to MongoDB ``_id`` values and back."""

from __future__ import annotations

import base64
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
