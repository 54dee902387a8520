"""The writer thread: raw messages from the buffer, decoded, written, then acknowledged.

Batches size themselves: each pass takes everything waiting (up to the batch size), so a
trickle is written at once (low lag) and a flood in large transactions (high throughput).
A database outage never loses a batch: it is retried with back-off while the receiver keeps
buffering, and acknowledged to the broker only after its commit.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection

from tasks_admin.collector.buffer import RawBuffer, RawMessage
from tasks_admin.collector.envelope import MalformedMessage, decode_message
from tasks_admin.collector.writer import BatchWriter, DatabaseUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0


class WriterLoop:
    def __init__(
        self,
        *,
        buffer: RawBuffer,
        writer: BatchWriter,
        ack: Callable[[list[int]], None],
        batch_size: int,
        batch_seconds: float,
        shutdown_grace: float = 15.0,
    ) -> None:
        self.buffer = buffer
        self.writer = writer
        self.ack = ack
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.shutdown_grace = shutdown_grace
        self.counters = {"messages": 0, "malformed_messages": 0, "bad_items": 0, "outages": 0}
        self.last_commit_at = 0.0

    def run(self, stop: threading.Event) -> None:
        """Write until ``stop`` is set and the buffer is empty (SIGTERM flushes)."""
        try:
            while True:
                raw = self.buffer.take(self.batch_size, wait=self.batch_seconds)
                if not raw:
                    if stop.is_set():
                        return
                    continue
                self.write_batch(raw, stop)
        finally:
            connection.close()

    def write_batch(self, raw: list[RawMessage], stop: threading.Event) -> None:
        events = self.decode(raw)
        delay = 0.5
        stopping_since: float | None = None
        while True:
            try:
                if events:
                    self.writer.write(events)
                break
            except DatabaseUnavailable as exc:
                self.counters["outages"] += 1
                log.warning(
                    "database unavailable, keeping %d events (retry in %.1fs): %s",
                    len(events),
                    delay,
                    exc,
                )
                connection.close()
                if stop.is_set():
                    stopping_since = stopping_since or time.monotonic()
                    if time.monotonic() - stopping_since > self.shutdown_grace:
                        log.error("shutting down with %d events unwritten", len(events))
                        return
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        self.last_commit_at = time.time()
        tags = [m.ack_tag for m in raw if m.ack_tag is not None]
        if tags:
            self.ack(tags)

    def decode(self, raw: list[RawMessage]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for message in raw:
            self.counters["messages"] += 1
            try:
                decoded, bad = decode_message(message)
            except MalformedMessage as exc:
                self.counters["malformed_messages"] += 1
                log.warning("skipped malformed message: %s", exc)
                continue
            self.counters["bad_items"] += bad
            events.extend(decoded)
        return events
