"""From the buffer to the database in overlapping stages.

The *decoder* thread takes raw messages, decodes and normalises them and deals the events
out by task id to ``writers`` writer threads, each with its own database connection. While
a writer waits on PostgreSQL (without the GIL) the decoder prepares the next batch and the
other writer runs its own transaction, so the database uses more than one core.

Sharding by task id keeps all of a task's events on one writer, so the merge's guarantees
hold per transaction; worker events all go to writer 0. Rollup rows shared by the writers
are updated last in each transaction, in sorted order, so writers wait briefly but never
deadlock. A raw message is acknowledged once every writer holding a part of its batch has
committed.

Batches size themselves: each pass takes everything waiting (up to the batch size), so a
trickle is written at once (low lag) and a flood in large transactions (high throughput).
A database outage never loses a batch: it is retried with back-off while the receiver keeps
buffering.
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
from tasks_admin.collector.envelope import Decoder
from tasks_admin.collector.writer import BatchWriter, DatabaseUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0
# A Celery task event in kombu's Redis envelope is about 780 bytes: raw stream chunks are
# taken by size so that a batch holds about ``batch_size`` events.
TYPICAL_EVENT_BYTES = 800


class AckTicket:
    """The broker tags of one raw batch, acknowledged when its last shard is committed."""

    def __init__(self, tags: list[int], parts: int, ack: Callable[[list[int]], None]) -> None:
        self.tags = tags
        self._parts = parts
        self._ack = ack
        self._lock = threading.Lock()

    def part_done(self) -> None:
        with self._lock:
            self._parts -= 1
            last = self._parts == 0
        if last and self.tags:
            self._ack(self.tags)


@dataclass(slots=True)
class Prepared:
    events: list[dict[str, Any]]
    ticket: AckTicket


class WriterLoop:
    def __init__(
        self,
        *,
        buffer: RawBuffer,
        make_writer: Callable[[], BatchWriter],
        ack: Callable[[list[int]], None],
        batch_size: int,
        batch_seconds: float,
        writers: int = 2,
        shutdown_grace: float = 15.0,
    ) -> None:
        self.buffer = buffer
        self.writers = [make_writer() for _ in range(max(1, writers))]
        self.ack = ack
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.shutdown_grace = shutdown_grace
        self.counters = {"messages": 0, "malformed_messages": 0, "bad_items": 0, "outages": 0}
        self.decoder = Decoder()  # used by the decoder thread only
        self.last_commit_at = 0.0
        # Small on purpose: when the database is slow, raw bytes wait in the buffer (bounded
        # by size), not as decoded dicts here.
        self._queues: list[queue.Queue[Prepared | None]] = [
            queue.Queue(maxsize=2) for _ in self.writers
        ]

    def run(self, stop: threading.Event) -> None:
        """Decode and write until ``stop`` is set and everything buffered is written."""
        threads = [
            threading.Thread(target=self._write_loop, args=(i, stop), name=f"writer-{i}")
            for i in range(1, len(self.writers))
        ]
        for thread in threads:
            thread.start()
        decoder = threading.Thread(target=self._decode_loop, args=(stop,), name="decoder")
        decoder.start()
        try:
            self._write_loop(0, stop)
        finally:
            decoder.join()
            for thread in threads:
                thread.join()

    def _decode_loop(self, stop: threading.Event) -> None:
        try:
            while True:
                raw = self.buffer.take(
                    self.batch_size,
                    wait=0.25,
                    max_bytes=self.batch_size * TYPICAL_EVENT_BYTES,
                    linger=0.0 if stop.is_set() else self.batch_seconds,
                )
                if not raw:
                    if stop.is_set():
                        return
                    continue
                events = self.writers[0].prepare(self.decode(raw))
                tags = [m.ack_tag for m in raw if m.ack_tag is not None]
                self._deal(events, tags)
        finally:
            for q in self._queues:
                q.put(None)

    def _deal(self, events: list[dict[str, Any]], tags: list[int]) -> None:
        shards: list[list[dict[str, Any]]] = [[] for _ in self.writers]
        count = len(shards)
        for event in events:
            index = hash(event["uuid"]) % count if event["type"].startswith("task-") else 0
            shards[index].append(event)
        parts = [i for i, shard in enumerate(shards) if shard] or [0]
        ticket = AckTicket(tags, len(parts), self.ack)
        for i in parts:
            self._queues[i].put(Prepared(shards[i], ticket))

    def _write_loop(self, index: int, stop: threading.Event) -> None:
        writer, inbox = self.writers[index], self._queues[index]
        try:
            while True:
                batch = inbox.get()
                if batch is None:
                    return
                self.write_batch(writer, batch, stop)
        finally:
            connection.close()

    def write_batch(self, writer: BatchWriter, batch: Prepared, stop: threading.Event) -> None:
        delay = 0.5
        stopping_since: float | None = None
        while True:
            try:
                if batch.events:
                    writer.write_prepared(batch.events)
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
        batch.ticket.part_done()

    def writer_counters(self) -> dict[str, Any]:
        """The writers' counters added up (unknown event types merged)."""
        total: dict[str, Any] = {}
        for writer in self.writers:
            for key, value in writer.counters.as_dict().items():
                if isinstance(value, dict):
                    merged = total.setdefault(key, {})
                    for name, count in value.items():
                        merged[name] = merged.get(name, 0) + count
                else:
                    total[key] = total.get(key, 0) + value
        return total

    def decode(self, raw: list[RawMessage]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for message in raw:
            decoded, bad = self.decoder.decode(message)
            self.counters["bad_items"] += bad
            events.extend(decoded)
        self.counters["messages"] = self.decoder.messages
        self.counters["malformed_messages"] = self.decoder.malformed
        return events
