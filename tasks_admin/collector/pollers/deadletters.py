"""Drain dead-letter queues into PostgreSQL: ack each message only after its row commits.

Two kinds of message arrive (README, "Dead letters"):

- the hook's (tasks_admin.deadletter, header ``x-console-deadletter``): a JSON document
  with the original message, the exception and the traceback;
- RabbitMQ's own dead-lettering (a queue with ``x-dead-letter-exchange``): the original
  task message itself, with the broker's ``x-death`` history in its headers.

Each message's key is a hash of its body and headers, so a message delivered again
(the collector died between commit and ack) is stored once: ``ON CONFLICT DO NOTHING``.
The poller keeps its own broker connection, dropped on any broker error and made again
at the next step (with the poller's back-off), so a broker that goes away and comes back
costs nothing but time. Messages are read with ``basic_get``: dead letters are few, and
nothing is prefetched that a crash would have to return.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from kombu import Connection, Queue

from tasks_admin.collector.pollers.base import Poller
from tasks_admin.deadletter import DEATH_HEADERS, FORMAT, MARKER_HEADER
from tasks_admin.models import DeadLetter

log = logging.getLogger(__name__)

# Redis: the collector's own unacked bookkeeping, apart from the workers' ``unacked`` hash
# (restoring with our short visibility timeout must never touch their messages).
REDIS_TRANSPORT_OPTIONS = {
    "unacked_key": "console.deadletter.unacked",
    "unacked_index_key": "console.deadletter.unacked_index",
    "unacked_mutex_key": "console.deadletter.unacked_mutex",
}
# Fault injection for the crash test: die (SIGKILL) after the commit, before the ack.
CRASH_BEFORE_ACK_ENV = "CONSOLE_TEST_DEADLETTER_CRASH_BEFORE_ACK"


def message_key(body: bytes, headers: dict[str, Any]) -> str:
    """The same for every delivery of one message: body and headers, minus what a
    redelivery adds (kombu's Redis transport sets ``redelivered`` in the headers)."""
    kept = {k: v for k, v in headers.items() if k != "redelivered"}
    digest = hashlib.sha256(body)
    digest.update(json.dumps(kept, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold made text (AMQP timestamps, bytes)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _moment(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        try:
            moment = parse_datetime(value)
        except ValueError:
            return None
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment
    return None


def _split_body(body: Any) -> tuple[list[Any], dict[str, Any], dict[str, Any], bool]:
    """``(args, kwargs, embed, ok)`` of a protocol 2 body ``[args, kwargs, embed]``."""
    if isinstance(body, list) and len(body) == 3:
        args, kwargs, embed = body
        if isinstance(args, list) and isinstance(kwargs, dict) and isinstance(embed, dict | None):
            return args, kwargs, embed or {}, True
    return [], {}, {}, False


def _priority(value: Any) -> int | None:
    # AMQP priorities are 0-255; anything else is not a priority (and must not overflow).
    return value if isinstance(value, int) and 0 <= value <= 255 else None


def _text(value: Any, limit: int = 255) -> str:
    return str(value or "")[:limit]


def parse(
    body: bytes,
    headers: dict[str, Any],
    properties: dict[str, Any],
    delivery_info: dict[str, Any],
    *,
    content_type: str,
    content_encoding: str,
    queue: str,
) -> dict[str, Any]:
    """The DeadLetter fields of one message drained from ``queue``."""
    headers = jsonable(dict(headers or {}))
    fields: dict[str, Any] = {
        "message_key": message_key(body, headers),
        "deadletter_queue": queue[:255],
        "received_at": timezone.now(),
    }
    if headers.get(MARKER_HEADER):
        fields.update(_from_hook(body))
        return fields
    # RabbitMQ dead-lettered the task message itself: the original route is in x-death.
    deaths = headers.get("x-death") or []
    death = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    routing_keys = death.get("routing-keys") or []
    decoded: Any = None
    body_repr = ""
    if content_type == "application/json" and "compression" not in headers:
        try:
            decoded = json.loads(body.decode(content_encoding or "utf-8"))
        except (ValueError, UnicodeDecodeError, LookupError):
            body_repr = "undecodable JSON body"
    else:
        # Never unpickle what a broker hands over: keep a note, not the values.
        body_repr = f"{len(body)} bytes of {content_type or 'unknown content'}; not JSON"
    args, kwargs, embed, ok = _split_body(decoded)
    fields.update(
        source=DeadLetter.Source.BROKER,
        reason=_text(death.get("reason") or headers.get("x-first-death-reason"), 32),
        task_id=_text(headers.get("id") or properties.get("correlation_id")),
        name=_text(headers.get("task")),
        args=args,
        kwargs=kwargs,
        embed=embed,
        body_complete=ok,
        body_repr=body_repr or ("" if ok else "not a Celery protocol 2 body"),
        headers={k: v for k, v in headers.items() if k not in DEATH_HEADERS},
        properties=jsonable(properties),
        exchange=_text(death.get("exchange", delivery_info.get("exchange"))),
        routing_key=_text(routing_keys[0] if routing_keys else delivery_info.get("routing_key")),
        queue=_text(death.get("queue") or headers.get("x-first-death-queue")),
        priority=_priority(properties.get("priority")),
        x_death=deaths,
        died_at=_moment(death.get("time")),
    )
    return fields


def _from_hook(body: bytes) -> dict[str, Any]:
    try:
        letter = json.loads(body)
    except ValueError:
        letter = None
    if not isinstance(letter, dict) or letter.get("format") != FORMAT:
        return {
            "source": DeadLetter.Source.HOOK,
            "reason": "invalid",
            "body_complete": False,
            "body_repr": f"not a {FORMAT} document: {body[:2000]!r}",
        }
    message = letter.get("message") or {}
    args, kwargs, embed, ok = _split_body(message.get("body"))
    ok = ok and bool(message.get("body_complete", True))
    properties = dict(message.get("properties") or {})
    priority = message.get("priority")
    return {
        "source": DeadLetter.Source.HOOK,
        "reason": _text(letter.get("reason"), 32),
        "task_id": _text(letter.get("task_id")),
        "name": _text(letter.get("task")),
        "args": args,
        "kwargs": kwargs,
        "embed": embed,
        "body_complete": ok,
        "body_repr": str(message.get("body_repr") or ""),
        "headers": message.get("headers") or {},
        "properties": properties,
        "exchange": _text(message.get("exchange")),
        "routing_key": _text(message.get("routing_key")),
        "queue": _text(message.get("queue")),
        "priority": _priority(priority),
        "exception": str(letter.get("exception") or ""),
        "exception_type": _text(letter.get("exception_type")),
        "traceback": str(letter.get("traceback") or ""),
        "hostname": _text(letter.get("hostname")),
        "died_at": _moment(letter.get("failed_at")),
    }


def _without_nul(value: Any) -> tuple[Any, bool]:
    """``value`` with NUL characters (which PostgreSQL text and jsonb refuse) replaced."""
    if isinstance(value, str):
        return (value.replace("\x00", "\ufffd"), True) if "\x00" in value else (value, False)
    if isinstance(value, dict):
        pairs = [(_without_nul(k), _without_nul(v)) for k, v in value.items()]
        return {k: v for (k, _), (v, _) in pairs}, any(a or b for (_, a), (_, b) in pairs)
    if isinstance(value, list):
        items = [_without_nul(v) for v in value]
        return [v for v, _ in items], any(changed for _, changed in items)
    return value, False


def storable(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` PostgreSQL can hold. A message whose values held NUL characters keeps
    them as U+FFFD for display and is marked not replayable (no longer exact)."""
    cleaned, changed = _without_nul(fields)
    if changed:
        cleaned["body_complete"] = False
        cleaned["body_repr"] = (
            "The message held NUL characters, which PostgreSQL cannot store; they are shown "
            "as U+FFFD and the message cannot be replayed exactly."
        )
    return dict(cleaned)


def store(fields: dict[str, Any]) -> bool:
    """Insert one dead letter and commit; False when its key was already stored."""
    fields = storable(fields)
    with transaction.atomic():
        created = DeadLetter.objects.bulk_create([DeadLetter(**fields)], ignore_conflicts=True)
        # ignore_conflicts leaves pk unset for both outcomes; ask the table instead.
        return (
            bool(created)
            and DeadLetter.objects.filter(
                message_key=fields["message_key"], received_at=fields["received_at"]
            ).exists()
        )


class DeadLetterPoller(Poller):
    """Move every message of the dead-letter ``queues`` into DeadLetter rows."""

    name = "deadletters"

    def __init__(
        self,
        *,
        broker_url: str,
        queues: Iterable[str],
        interval: float,
        batch_size: int = 200,
        visibility_timeout: float = 60.0,
        transport_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(interval=interval)
        self.broker_url = broker_url
        self.queues = [name for name in dict.fromkeys(queues) if name]
        self.batch_size = batch_size
        self.transport_options = dict(transport_options or {})
        self.visibility_timeout = visibility_timeout
        self.connection: Connection | None = None
        self.channel: Any = None
        self.stored = 0
        self.duplicates = 0
        self.missing_queues: set[str] = set()

    def _connect(self) -> Any:
        if self.connection is None:
            options = dict(self.transport_options)
            if self.broker_url.split("://", 1)[0].lower().startswith("redis"):
                options.update(REDIS_TRANSPORT_OPTIONS, visibility_timeout=self.visibility_timeout)
            self.connection = Connection(self.broker_url, transport_options=options)
            self.connection.ensure_connection(max_retries=1)
        if self.channel is None:
            self.channel = self.connection.channel()
        return self.channel

    def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken
                log.debug("closing the dead-letter connection failed", exc_info=True)

    def poll(self) -> bool:
        if not self.queues:
            return False
        try:
            channel = self._connect()
            qos: Any = getattr(channel, "qos", None)
            if hasattr(qos, "restore_visible"):
                # Redis: messages taken by a collector that died before its ack.
                qos.restore_visible(num=self.batch_size)
            found = sum(self._drain(name) for name in self.queues)
        except Exception:
            self.close()
            raise
        return found > 0

    def _drain(self, name: str) -> int:
        assert self.connection is not None
        queue = Queue(name, no_declare=True, channel=self._connect())
        count = 0
        while count < self.batch_size:
            try:
                message = queue.get(no_ack=False, accept=["application/json"])
            except self.connection.channel_errors as exc:
                # RabbitMQ: no such queue (404) closes the channel; the rest go on.
                if name not in self.missing_queues:
                    log.info("dead-letter queue %s is not declared yet: %s", name, exc)
                self.missing_queues.add(name)
                self.channel = None
                return count
            if message is None:
                break
            self.missing_queues.discard(name)
            raw: Any = message.body
            body = raw if isinstance(raw, bytes) else str(raw or "").encode()
            fields = parse(
                body,
                message.headers or {},
                dict(message.properties or {}),
                dict(message.delivery_info or {}),
                content_type=message.content_type or "",
                content_encoding=message.content_encoding or "",
                queue=name,
            )
            if store(fields):
                self.stored += 1
                log.info(
                    "stored dead letter %s[%s] (%s) from %s",
                    fields.get("name"),
                    fields.get("task_id"),
                    fields.get("reason"),
                    name,
                )
            else:
                self.duplicates += 1
            if os.environ.get(CRASH_BEFORE_ACK_ENV):
                os.kill(os.getpid(), signal.SIGKILL)
            message.ack()
            count += 1
        if count >= self.batch_size:
            self.again_soon()
        return count

    def counters(self) -> dict[str, object]:
        return {
            **super().counters(),
            "stored": self.stored,
            "duplicates": self.duplicates,
            "missing_queues": sorted(self.missing_queues),
        }
