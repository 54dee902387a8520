"""Turn a raw broker message into Celery event dicts, exactly as the worker sent them.

Runs in the collector's decoder thread, never in the receiver, which only moves bytes.
Nothing here localizes timestamps (Celery's ``event_from_message(localize=True)`` shifts them by
the worker's ``utcoffset``), and nothing but JSON is ever decoded: a broker is shared, and
a pickle body is code execution.
"""

import base64
import binascii
import json
import logging
from typing import Any

import hiredis
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


class Decoder:
    """Decodes what the receivers buffered, cutting Redis' byte stream into messages.

    Keep one per stream consumer (the collector's decoder thread): it holds the RESP
    reader of the current Redis connection between chunks. Framing happens here, not in
    the receiver, so the receiving thread does no per-message work at all and keeps up
    with whatever rate Redis can publish.
    """

    # hiredis shifts its unparsed bytes down after every reply, so feeding a multi-megabyte
    # chunk at once is quadratic; 16 KB pieces keep framing at about 2 us a message.
    feed_size = 16 * 1024

    def __init__(self) -> None:
        self._reader: Any = None
        self.messages = 0
        self.malformed = 0
        self.lost_chunks = 0

    def decode(self, msg: RawMessage) -> tuple[list[dict[str, Any]], int]:
        """Events in ``msg`` and how many items were skipped; never raises.

        A stream chunk may hold many messages (and parts of two more). An unreadable
        message is logged and counted in ``malformed``; its neighbours are kept.
        """
        payloads = self._frame(msg) if msg.kind == "redis-stream" else [msg]
        events: list[dict[str, Any]] = []
        bad = 0
        for payload in payloads:
            self.messages += 1
            try:
                if isinstance(payload, RawMessage):
                    decoded, skipped = decode_message(payload)
                else:
                    decoded, skipped = decode_message(RawMessage(payload, "redis", msg.received_at))
            except MalformedMessage as exc:
                self.malformed += 1
                logger.warning("skipped malformed message: %s", exc)
                continue
            events.extend(decoded)
            bad += skipped
        return events, bad

    def _frame(self, msg: RawMessage) -> list[bytes]:
        if msg.stream is not None:
            self._reader = msg.stream
        reader = self._reader
        if reader is None:
            self.lost_chunks += 1  # bytes of a stream whose start was never seen
            return []
        payloads: list[bytes] = []
        data = memoryview(msg.data)
        offset, size = 0, len(data)
        while True:
            reply = reader.gets()
            while reply is not False:
                if type(reply) is list and len(reply) == 4 and reply[0] == b"pmessage":
                    payloads.append(reply[3])
                elif isinstance(reply, hiredis.ReplyError):
                    logger.warning("Redis sent an error on the event subscription: %s", reply)
                reply = reader.gets()
            if offset >= size:
                return payloads
            piece = min(self.feed_size, size - offset)
            reader.feed(data, offset, piece)
            offset += piece
