"""Job keys: the one string a job's ``_id`` becomes inside the pipeline.

Keys are unambiguous across id types, so a string id that happens to spell an ObjectId's
hex never merges with that ObjectId's job:

- an ObjectId → its 24 lower-case hex digits (the common case, no prefix);
- a string → ``"s:" + the string``;
- any other type → ``"x:<type name>:<encoded value>"`` (kept only so the job can be told
  why it is rejected: the contract allows ObjectId and string ids).

``storage/ids.py`` converts between keys and MongoDB values; the core only reads them.
"""

from __future__ import annotations

STRING = "s:"
OTHER = "x:"


def unsupported_id_reason(key: str) -> str | None:
    """Why a job with this key cannot be processed (an ``_id`` of another type), or None."""
    if not key.startswith(OTHER):
        return None
    kind = key[len(OTHER):].split(":", 1)[0]
    return f"_id of type {kind} is not supported (the contract allows ObjectId or string ids)"


def display_id(key: str) -> str:
    """The id as people and the web app write it: hex digits or the string itself."""
    if key.startswith(STRING):
        return key[len(STRING):]
    return key


def key_from_display(value: str) -> str:
    """The key of an id as an operator types it: 24 hex digits name an ObjectId, anything
    else a string id (a string id that spells 24 hex digits must be given as ``s:<id>``)."""
    if value.startswith((STRING, OTHER)):
        return value
    if len(value) == 24 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    return STRING + value
