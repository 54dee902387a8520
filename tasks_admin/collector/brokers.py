"""Broker-specific reads the pollers need: how many messages wait in each queue.

Redis keeps a queue as plain lists (one per priority step), so depth is a few LLENs and
consumers are unknown to the broker. RabbitMQ answers a passive ``queue_declare`` with
the ready-message and consumer counts. Other kombu transports get the passive declare.
"""

import logging
from collections.abc import Iterable
from typing import Any

from celery import Celery
from kombu import Connection

log = logging.getLogger(__name__)

# (ready messages, consumers or None where the broker cannot tell)
Depth = tuple[int, int | None]


def queue_depths(
    app: Celery, names: Iterable[str], *, connection: Connection | None = None
) -> dict[str, Depth]:
    """Depth and consumer count of each named queue, in one short round of broker calls.

    A queue the broker does not know has depth 0 and no consumers. Uses ``connection``
    or one from the app's pool (kept open between calls).
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    with app.connection_or_acquire(connection) as conn:
        conn.ensure_connection(max_retries=1)
        driver = conn.transport.driver_type
        if driver == "redis":
            return _redis_depths(conn, wanted)
        # Only AMQP brokers count consumers; kombu's virtual transports always say 0.
        return _declare_depths(conn, wanted, counts_consumers=driver == "amqp")


def redis_queue_keys(queue: str, *, sep: str, priority_steps: Iterable[int]) -> list[str]:
    """The lists kombu's Redis transport keeps ``queue`` in (``Channel._q_for_pri``).

    Priority 0 is the bare queue name; every other step gets ``sep`` + the step.
    ``global_keyprefix`` is added by kombu's client, not here.
    """
    return [queue if step == 0 else f"{queue}{sep}{step}" for step in priority_steps]


def _redis_depths(conn: Connection, names: list[str]) -> dict[str, Depth]:
    channel: Any = conn.default_channel
    # The channel carries the transport options (sep, priority_steps, global_keyprefix),
    # and its client prefixes keys itself, exactly as the workers' channels do.
    steps = sorted(set(channel.priority_steps))
    keys_per_queue = [
        redis_queue_keys(name, sep=channel.sep, priority_steps=steps) for name in names
    ]
    with channel.client.pipeline(transaction=False) as pipe:
        for keys in keys_per_queue:
            for key in keys:
                pipe.llen(key)
        sizes = pipe.execute()
    depths: dict[str, Depth] = {}
    position = 0
    for name, keys in zip(names, keys_per_queue, strict=True):
        depths[name] = (
            sum(int(size or 0) for size in sizes[position : position + len(keys)]),
            None,
        )
        position += len(keys)
    return depths


def _declare_depths(
    conn: Connection, names: list[str], *, counts_consumers: bool
) -> dict[str, Depth]:
    depths: dict[str, Depth] = {}
    channel: Any = None
    try:
        for name in names:
            # A passive declare of a missing queue closes the channel (404 NOT_FOUND), so
            # a new channel replaces it and the connection survives.
            if channel is None:
                channel = conn.channel()
            try:
                _, messages, consumers = channel.queue_declare(queue=name, passive=True)
            except conn.channel_errors as exc:
                log.debug("queue %s not declared on the broker: %s", name, exc)
                _close_quietly(channel)
                channel = None
                depths[name] = (0, 0 if counts_consumers else None)
                continue
            depths[name] = (int(messages or 0), int(consumers or 0) if counts_consumers else None)
    finally:
        if channel is not None:
            _close_quietly(channel)
    return depths


def _close_quietly(channel: Any) -> None:
    try:
        channel.close()
    except Exception:  # already closed by the broker after a 404
        log.debug("closing a throwaway channel failed", exc_info=True)
