"""Live updates on the wire: channel group names, message shapes, and who is watching.

The only module that knows them: the collector's ticker sends with ``Broadcaster``, the
websocket consumers join groups and read messages through the helpers below.

Groups (Channels group names allow ASCII letters, digits, ``-_.`` and < 100 characters,
so task ids and hostnames, which are arbitrary strings, are hashed):

- ``live.dashboard``, ``live.workers``, ``live.queues``, ``live.failures.<window>``:
  rendered fragments, one ``live.push`` message per tick when something on them changed.
- ``live.tasks``: ``live.tasks`` messages with the facts and rendered row of every task
  that changed in the tick; each consumer picks the rows its page shows and counts the
  new tasks its filter matches.
- ``live.task.<hash>``, ``live.worker.<hash>``: a detail page's fragments.

The ticker renders a group only while someone watches it: each consumer keeps a member
``<group> <channel> <subject>`` in one Redis sorted set (``watch_key()``), scored with when
it expires, refreshed while connected and removed on disconnect. The subject is the task
id, hostname or window the group is about, so the ticker knows what to render.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

DASHBOARD = "live.dashboard"
TASKS = "live.tasks"
WORKERS = "live.workers"
QUEUES = "live.queues"

# A consumer refreshes its watch entries this often; they expire after WATCH_TTL, so a web
# process that dies stops the rendering for its pages within a minute.
WATCH_REFRESH_SECONDS = 20
WATCH_TTL_SECONDS = 60

PUSH = "live.push"  # {"type", "html"}: top-level elements swapped by id (htmx ws)
TASKS_CHANGED = "live.tasks"  # {"type", "tasks": [task facts + "row" html]}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def task_group(task_id: str) -> str:
    return f"live.task.{_digest(task_id)}"


def worker_group(hostname: str) -> str:
    return f"live.worker.{_digest(hostname)}"


def failures_group(window: str) -> str:
    # Windows are a fixed set of short keys (selectors.failures.WINDOWS): safe as they are.
    return f"live.failures.{window}"


def dom_id(kind: str, key: str) -> str:
    """An element id for a task row or similar keyed by an arbitrary string: htmx finds
    swap targets with ``#id`` selectors, so ids must be plain identifiers."""
    return f"{kind}-{_digest(key)[:20]}"


def watch_key() -> str:
    from django.conf import settings

    return f"{settings.CHANNEL_LAYER_PREFIX}:live:watching"


def watch_member(group: str, channel: str, subject: str = "") -> str:
    return f"{group} {channel} {subject}"


def parse_watch(member: bytes | str) -> tuple[str, str]:
    """``(group, subject)`` of a ``watch_member``; the subject may hold spaces."""
    text = member.decode("utf-8", "surrogatepass") if isinstance(member, bytes) else member
    group, _channel, subject = text.split(" ", 2)
    return group, subject


def push(html: str) -> dict[str, Any]:
    return {"type": PUSH, "html": html}


def tasks_changed(tasks: list[dict[str, Any]], tick: str = "") -> dict[str, Any]:
    return {"type": TASKS_CHANGED, "tasks": tasks, "tick": tick}


def tick_marker(sequence: int, committed_at: float | None) -> str:
    """Sent with every push: which tick it is and when the newest change it carries was
    committed (empty when the tick carries no commit). Pages hold an element with this id
    (base.html); the live benchmark measures delivery latency from it."""
    committed = f"{committed_at:.6f}" if committed_at is not None else ""
    return (
        f'<span id="live-tick" hidden data-tick="{sequence}" data-committed-at="{committed}">'
        "</span>"
    )


class Broadcaster:
    """``group_send`` from the collector's threads through one long-lived event loop.

    asgiref's ``async_to_sync`` makes a new loop, and so a new Redis connection, per call;
    one loop thread keeps one connection and sends thousands of messages a second.
    Sending never raises: live updates are best effort, history is in PostgreSQL.
    """

    def __init__(self) -> None:
        from channels.layers import get_channel_layer

        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="broadcast", daemon=True)
        self.thread.start()
        self.sent = 0
        self.failed = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def send_many(
        self, messages: Iterable[tuple[str, dict[str, Any]]], timeout: float = 5.0
    ) -> int:
        """Send each ``(group, message)``; wait for them all; return how many went out."""
        if self.layer is None:
            return 0
        pending = [
            asyncio.run_coroutine_threadsafe(self.layer.group_send(group, message), self.loop)
            for group, message in messages
        ]
        sent = 0
        for future in pending:
            try:
                future.result(timeout=timeout)
                sent += 1
            except Exception as exc:  # a Redis outage must not stop the collector
                self.failed += 1
                log.warning("live update not sent: %s", exc)
        self.sent += sent
        return sent

    def close(self) -> None:
        if self.layer is not None:
            try:
                # The pub/sub layer's flush closes this loop's Redis connections.
                asyncio.run_coroutine_threadsafe(self.layer.flush(), self.loop).result(timeout=5)
            except Exception as exc:
                log.debug("closing the channel layer: %s", exc)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
