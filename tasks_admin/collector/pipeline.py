"""From the buffer to the database in two overlapping stages.

The *decoder* thread takes raw messages, decodes and normalises them; the *writer* thread
stores each prepared batch and then acknowledges it to the broker. While the writer waits
on PostgreSQL (without the GIL) the decoder prepares the next batch, so the collector's
rate is the slower of the two stages, not their sum.

Batches size themselves: each pass takes everything waiting (up to the batch size), so a
trickle is written at once (low lag) and a flood in large transactions (high throughput).
A database outage never loses a batch: it is retried with back-off while the receiver keeps
buffering, and acknowledged only after its commit.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from tasks_admin.collector.buffer import RawBuffer, RawMessage
from tasks_admin.collector.envelope import MalformedMessage, decode_message
from tasks_admin.collector.writer import BatchWriter, DatabaseUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0


@dataclass(slots=True)
class Prepared:
    events: list[dict[str, Any]]
    ack_tags: list[int]


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
        # Small on purpose: when the database is slow, raw bytes wait in the buffer (bounded
        # by size), not as decoded dicts here.
        self._prepared: queue.Queue[Prepared | None] = queue.Queue(maxsize=2)

    def run(self, stop: threading.Event) -> None:
        """Decode and write until ``stop`` is set and everything buffered is written."""
        decoder = threading.Thread(target=self._decode_loop, args=(stop,), name="decoder")
        decoder.start()
        try:
            self._write_loop(stop)
        finally:
            decoder.join()
            connection.close()

    def _decode_loop(self, stop: threading.Event) -> None:
        try:
            while True:
                raw = self.buffer.take(self.batch_size, wait=self.batch_seconds)
                if not raw:
                    if stop.is_set():
                        return
                    continue
                events = self.writer.prepare(self.decode(raw))
                tags = [m.ack_tag for m in raw if m.ack_tag is not None]
                self._prepared.put(Prepared(events, tags))
        finally:
            self._prepared.put(None)

    def _write_loop(self, stop: threading.Event) -> None:
        while True:
            batch = self._prepared.get()
            if batch is None:
                return
            self.write_batch(batch, stop)

    def write_batch(self, batch: Prepared, stop: threading.Event) -> None:
        delay = 0.5
        stopping_since: float | None = None
        while True:
            try:
                if batch.events:
                    self.writer.write_prepared(batch.events)
                break
            except DatabaseUnavailable as exc:
                self.counters["outages"] += 1
                log.warning(
                    "database unavailable, keeping %d events (retry in %.1fs): %s",
                    len(batch.events),
                    delay,
                    exc,
                )
                connection.close()
                if stop.is_set():
                    stopping_since = stopping_since or time.monotonic()
                    if time.monotonic() - stopping_since > self.shutdown_grace:
                        log.error("shutting down with %d events unwritten", len(batch.events))
                        return
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        self.last_commit_at = time.time()
        if batch.ack_tags:
            self.ack(batch.ack_tags)

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
