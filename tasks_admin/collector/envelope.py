"""Turn a raw broker message into Celery event dicts, exactly as the worker sent them.

Runs in the writer, never in the receiver thread: the receiver only moves bytes. Nothing
here localizes timestamps (Celery's ``event_from_message(localize=True)`` shifts them by
the worker's ``utcoffset``), and nothing but JSON is ever decoded: a broker is shared, and
a pickle body is code execution.
"""

import base64
import binascii
import json
import logging
from typing import Any

import orjson

from tasks_admin.collector.buffer import RawMessage

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"


class MalformedMessage(Exception):
    """The message as a whole cannot be read: nothing in it becomes an event."""


def decode_message(msg: RawMessage) -> tuple[list[dict[str, Any]], int]:
    """Return ``(events, bad_items)`` for one broker message.

    ``events`` are the event dicts as Celery published them, each with ``local_received``
    set to ``msg.received_at``. A body may be one event or a list of them (Celery's
    buffered ``task.multi`` messages); items that are not dicts or lack a str ``type`` are
    dropped and counted in ``bad_items`` so that one bad item never loses its neighbours.

    Raises MalformedMessage when the message itself is unreadable: a broken envelope, a
    content type other than JSON (pickle, yaml, msgpack are refused, never decoded),
    invalid JSON, or a body that is neither an object nor a list.
    """
    if msg.kind == "redis":
        body, content_type = _unwrap_redis(msg.data)
    elif msg.kind == "amqp":
        body, content_type = msg.data, msg.content_type
    else:
        raise MalformedMessage(f"unknown message kind {msg.kind!r}")
    _check_content_type(content_type)
    payload = _loads(body)
    received_at = msg.received_at
    if type(payload) is dict:
        items: list[Any] = [payload]
    elif type(payload) is list:
        items = payload
    else:
        raise MalformedMessage(f"event body is a JSON {type(payload).__name__}, not an object")
    events = []
    for item in items:
        # Exact type checks: the hot path runs once per event, and JSON only yields dict/str.
        if type(item) is dict and type(item.get("type")) is str:
            item["local_received"] = received_at
            events.append(item)
    bad = len(items) - len(events)
    if bad:
        logger.debug("skipped %d malformed event item(s) of %d", bad, len(items))
    return events, bad


def _unwrap_redis(data: bytes) -> tuple[bytes, str]:
    """kombu's Redis envelope: ``{"body": <base64>, "content-type", "properties", ...}``."""
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"redis envelope is not JSON: {exc}") from None
    if type(envelope) is not dict:
        raise MalformedMessage("redis envelope is not a JSON object")
    body = envelope.get("body")
    content_type = envelope.get("content-type")
    properties = envelope.get("properties")
    body_encoding = properties.get("body_encoding") if type(properties) is dict else None
    if type(body) is not str or type(content_type) is not str:
        raise MalformedMessage("redis envelope lacks a str body or content-type")
    if body_encoding == "base64":
        try:
            return base64.b64decode(body, validate=True), content_type
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage(f"redis envelope body is not base64: {exc}") from None
    if body_encoding is None:
        # kombu leaves the body as text when the channel's body_encoding is disabled.
        return body.encode("utf-8", "surrogatepass"), content_type
    raise MalformedMessage(f"unsupported body_encoding {body_encoding!r}")


def _check_content_type(content_type: str | None) -> None:
    # Celery's dispatcher always sends exactly "application/json"; parameters such as
    # "; charset=utf-8" are tolerated, any other type is refused by name.
    if content_type is None or content_type.split(";", 1)[0].strip().lower() != JSON_CONTENT_TYPE:
        raise MalformedMessage(
            f"content type {content_type!r} refused: only {JSON_CONTENT_TYPE} is accepted"
        )


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses invalid UTF-8, lone surrogate escapes and NaN; json takes all three,
    # so one bad byte in a task name or repr costs a replacement character, not the event.
    try:
        return _clean(json.loads(body.decode("utf-8", "replace")))
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"event body is not JSON: {exc}") from None


def _clean(value: Any) -> Any:
    """Replace lone surrogates (valid JSON escapes, invalid text for PostgreSQL)."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value
