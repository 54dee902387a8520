"""The collector process: receiver thread, writer thread and pollers, under one lock.

Shape of healthchecks' ``sendalerts``: signal handlers set a flag, the main loop calls
small steps (pollers, lock check, status) that each say whether they found work.
"""

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from celery import Celery
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu import Connection

from tasks_admin.broadcast import Broadcaster
from tasks_admin.collector.buffer import RawBuffer, RawMessage
from tasks_admin.collector.lock import CollectorLock
from tasks_admin.collector.pipeline import WriterLoop
from tasks_admin.collector.pollers import InspectPoller, Poller, build_pollers
from tasks_admin.collector.receiver import receiver_for
from tasks_admin.collector.ticker import ChangeTracker, Ticker
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import CollectorStatus

log = logging.getLogger(__name__)

STATUS_INTERVAL = 5.0
LOCK_CHECK_INTERVAL = 5.0


def broker_identity(url: str) -> str:
    """The broker URL without its password: for the lock key, logs and the status row."""
    return str(Connection(url).as_uri(include_password=False))


class Collector:
    def __init__(self, *, app: Celery, broker_url: str, with_pollers: bool = True) -> None:
        self.app = app
        self.broker_url = broker_url
        self.broker = broker_identity(broker_url)
        self.with_pollers = with_pollers
        self.stop = threading.Event()
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = timezone.now()
        self.lock = CollectorLock(self.broker)
        self.buffer = RawBuffer(settings.CONSOLE_BUFFER_MAX_BYTES)

    def run(self) -> None:
        log.info("collector %s for %s starting", self.node, self.broker)
        # A full garbage collection walks every object of Django and Celery (hundreds of
        # thousands) while holding the GIL; long enough, the receiver thread cannot read and
        # Redis cuts the subscription. Events are plain dicts freed by reference counting, so
        # freeze what startup made and collect the young generation less often.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        self._report("standby", {})
        while not self.stop.is_set():
            if not self.lock.acquire(self.stop):
                break
            log.info("collector %s is active for %s", self.node, self.broker)
            self._run_active()
        self.lock.release()
        log.info("collector %s stopped", self.node)

    def _run_active(self) -> None:
        receiver = receiver_for(
            self.broker_url,
            self.buffer,
            queue_name=settings.CONSOLE_EVENT_QUEUE,
            queue_max_length=settings.CONSOLE_EVENT_QUEUE_MAX_LENGTH,
            transport_options=self.app.conf.broker_transport_options or {},
        )
        pollers = self._pollers() if self.with_pollers else []
        on_new_workers = self._on_new_workers(pollers)
        tracker = ChangeTracker()
        loop = WriterLoop(
            buffer=self.buffer,
            make_writer=lambda: BatchWriter(
                max_chars=settings.CONSOLE_MAX_FIELD_CHARS,
                on_new_workers=on_new_workers,
                on_commit=tracker.add,
            ),
            ack=receiver.ack,
            batch_size=settings.CONSOLE_BATCH_SIZE,
            batch_seconds=settings.CONSOLE_BATCH_SECONDS,
            writers=settings.CONSOLE_WRITERS,
        )
        receiving, writing, ticking = threading.Event(), threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=receiver.run, args=(receiving,), name="receiver", daemon=True),
            threading.Thread(target=loop.run, args=(writing,), name="writer", daemon=True),
        ]
        ticker = self._ticker(tracker)
        if ticker is not None:
            threads.append(
                threading.Thread(target=ticker.run, args=(ticking,), name="ticker", daemon=True)
            )
        for thread in threads:
            thread.start()
        next_lock_check = next_status = 0.0
        ready_reported = False
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if not ready_reported and receiver.ready.is_set():
                    ready_reported = True
                    next_status = now  # say at once that events are flowing
                found_work = [poller.step() for poller in pollers]
                if now >= next_lock_check:
                    next_lock_check = now + LOCK_CHECK_INTERVAL
                    if not self.lock.still_held():
                        log.warning("collector lock lost; flushing and standing by")
                        break
                if now >= next_status:
                    next_status = now + STATUS_INTERVAL
                    self._report("active", self._counters(receiver, loop, pollers, ticker))
                if not any(found_work):
                    self.stop.wait(0.2)
        finally:
            # Stop receiving first, then let the writer flush everything buffered.
            receiving.set()
            threads[0].join(timeout=10)
            writing.set()
            threads[1].join()
            ticking.set()
            if ticker is not None:
                threads[2].join(timeout=10)
                ticker.sender.close()
            self._report("stopped", self._counters(receiver, loop, pollers, ticker))

    @staticmethod
    def _ticker(tracker: ChangeTracker) -> Ticker | None:
        if settings.CONSOLE_LIVE_INTERVAL <= 0:
            return None
        try:
            return Ticker(
                tracker=tracker,
                sender=Broadcaster(),
                redis_url=settings.REDIS_URL,
                interval=settings.CONSOLE_LIVE_INTERVAL,
                slow_interval=settings.CONSOLE_LIVE_SLOW_INTERVAL,
            )
        except ValueError as exc:
            # History matters more than live pages: collect without them, loudly.
            log.error("live updates off: REDIS_URL is not usable (%s)", exc)
            return None

    def _pollers(self) -> list[Poller]:
        return build_pollers(emit=self.emit, app=self.app, lag=self.buffer.backlog_seconds)

    @staticmethod
    def _on_new_workers(pollers: list[Poller]) -> Callable[[set[str]], None] | None:
        inspect = next((p for p in pollers if isinstance(p, InspectPoller)), None)
        return inspect.request_many if inspect is not None else None

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Feed synthetic events (reconcile, lost tasks) through the same path as the broker's."""
        if events:
            self.buffer.put(
                RawMessage(data=orjson.dumps(events), kind="amqp", received_at=time.time())
            )

    def _counters(
        self, receiver: Any, loop: WriterLoop, pollers: list[Poller], ticker: Ticker | None
    ) -> dict[str, Any]:
        return {
            "receiving": receiver.ready.is_set(),
            "receiver": dict(receiver.counters),
            "writer": loop.writer_counters(),
            "pipeline": {
                **loop.counters,
                "buffered_messages": len(self.buffer),
                "buffered_bytes": self.buffer.size_bytes,
                "buffer_high_water_bytes": self.buffer.high_water_bytes,
                "dropped_buffer_full": self.buffer.dropped,
                "last_commit_at": loop.last_commit_at,
            },
            "pollers": {p.name: p.counters() for p in pollers},
            "live": {**ticker.counters, "failed_sends": ticker.sender.failed} if ticker else {},
        }

    def _report(self, role: str, counters: dict[str, Any]) -> None:
        try:
            now = timezone.now()
            CollectorStatus.objects.update_or_create(
                node=self.node,
                defaults={
                    "broker": self.broker[:255],
                    "role": role,
                    "started_at": self.started_at,
                    "heartbeat_at": now,
                    "counters": counters,
                },
            )
        except DatabaseError as exc:
            log.warning("could not record collector status: %s", exc)
            connection.close()
