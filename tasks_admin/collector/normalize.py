"""Make a decoded event safe to fold and store, or say why it cannot be.

Anything a worker sends is untrusted: strings may hold NUL bytes or lone surrogates that
PostgreSQL refuses, a traceback may be megabytes, a timestamp may be missing or garbage.
Normalising here means the database never sees a value that would abort a whole batch.
"""

import math
from typing import Any

from tasks_admin.collector.merge import event_key, utc

MAX_ID_CHARS = 255


class InvalidEvent(ValueError):
    pass


def clean_text(value: str, max_chars: int) -> str:
    if len(value) > max_chars:
        value = f"{value[:max_chars]}… [cut: {len(value) - max_chars} more characters]"
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _clean(value: Any, max_chars: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return clean_text(value, max_chars)
    if isinstance(value, bool | int | float) or value is None:
        if isinstance(value, float) and not math.isfinite(value):
            return None  # JSON (and jsonb) has no NaN or Infinity
        return value
    if depth > 8:
        return clean_text(repr(value), max_chars)
    if isinstance(value, dict):
        return {
            clean_text(str(k), MAX_ID_CHARS): _clean(v, max_chars, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v, max_chars, depth + 1) for v in value]
    return clean_text(repr(value), max_chars)


def normalize(event: dict[str, Any], *, max_chars: int) -> dict[str, Any]:
    """Return a cleaned copy of ``event`` with ``_key`` set; raise InvalidEvent if unusable.

    Task events need a string ``uuid``; a missing or bad ``timestamp`` falls back to the
    collector's receive time, so an event is never dropped for its clock alone.
    """
    type_ = event.get("type")
    if not isinstance(type_, str) or not type_:
        raise InvalidEvent("event has no type")
    clean = {}
    for key, value in event.items():
        # Fast path for what nearly every field is: short, clean ASCII text or a number.
        kind = type(value)
        if kind is str:
            if len(value) > max_chars or not value.isascii() or "\x00" in value:
                value = clean_text(value, max_chars)
        elif kind is float:
            if not math.isfinite(value):
                value = None
        elif kind is not int and kind is not bool and value is not None:
            value = _clean(value, max_chars)
        clean[key] = value
    clean["type"] = clean_text(type_, 64)
    if type_.startswith("task-"):
        uuid = event.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise InvalidEvent(f"{type_} event without a task id")
        clean["uuid"] = clean_text(uuid, MAX_ID_CHARS)
    clean["hostname"] = clean_text(str(event.get("hostname") or ""), MAX_ID_CHARS)
    timestamp = _finite(event.get("timestamp")) or _finite(event.get("local_received"))
    if timestamp is None:
        raise InvalidEvent(f"{type_} event without a usable timestamp")
    # Round through a datetime, as the event log stores it, so that an event refolded from
    # the log sorts exactly as it did when it arrived.
    clean["timestamp"] = utc(timestamp).timestamp()
    try:
        clean["clock"] = int(event.get("clock") or 0)
    except (TypeError, ValueError):
        clean["clock"] = 0
    if not -(2**63) <= clean["clock"] < 2**63:
        clean["clock"] = 0
    clean["_key"] = event_key(clean)
    return clean


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    # Also refuse times a datetime cannot hold (year 1 .. 9999).
    if not math.isfinite(number) or not -62135596800 < number < 253402300799:
        return None
    return number
