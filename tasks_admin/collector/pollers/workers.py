"""Worker pollers: keep task events flowing, learn each worker's setup, notice deaths."""

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from celery import Celery
from celery.app.defaults import SETTING_KEYS
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tasks_admin.collector.normalize import clean_text
from tasks_admin.collector.pollers.base import Lag, Poller
from tasks_admin.models import WorkerMemorySample, WorkerRecord, WorkerVanished

log = logging.getLogger(__name__)

# Control replies are collected until the first silent gap of this length (kombu pidbox):
# a broadcast costs it once; a call with a destination list returns when all have replied.
CONTROL_TIMEOUT = 1.0
# Celery's State: a worker is alive while now < last heartbeat + freq * 200 / 100.
HEARTBEAT_EXPIRE_FACTOR = 2.0


class EnableEventsPoller(Poller):
    """Broadcast ``enable_events`` so workers started without ``-E`` send task events too.

    Flower does the same every 5 s. It is a fire-and-forget broadcast: no replies awaited.
    """

    name = "enable_events"

    def __init__(self, *, app: Celery, interval: float) -> None:
        super().__init__(interval=interval)
        self.app = app

    def poll(self) -> bool:
        self.app.control.enable_events()
        return False


def pool_name(implementation: str) -> str:
    """``celery.concurrency.prefork:TaskPool`` → ``prefork`` (the ``-P`` name)."""
    module = implementation.split(":", 1)[0].rsplit(".", 1)[-1]
    return {"thread": "threads"}.get(module, module)[:64]


def jsonb_safe(value: Any) -> Any:
    """Replies came as JSON already, but PostgreSQL's jsonb refuses the NUL character."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, dict):
        return {jsonb_safe(str(key)): jsonb_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonb_safe(item) for item in value]
    return value


def celery_settings(conf: dict[str, Any]) -> dict[str, Any]:
    """Only the Celery settings of an ``inspect conf`` reply.

    An app configured from Django settings (``namespace="CELERY"``) reports every Django
    setting too; Celery masks names like SECRET or PASSWORD, but not, say, a Sentry DSN,
    and the console has no business storing them.
    """
    kept = {}
    for key, value in conf.items():
        name = str(key).lower()
        # "task_serializer", or with the app's namespace: "CELERY_TASK_SERIALIZER".
        if name in SETTING_KEYS or name.partition("_")[2] in SETTING_KEYS:
            kept[str(key)] = value
    return kept


def _registered_names(entries: Any) -> list[str]:
    # Entries look like "proj.add" or "proj.add [rate_limit=10/m]".
    if not isinstance(entries, list):
        return []
    return sorted({str(entry).split(" [", 1)[0] for entry in entries})


# Reserved tasks kept per worker: a worker with a big prefetch can hold thousands.
RESERVED_KEPT = 100
RESERVED_TEXT_CHARS = 512


def _reserved_tasks(entries: list[Any]) -> list[dict[str, str]]:
    """The first RESERVED_KEPT of an ``inspect reserved`` reply, as short strings."""

    def text(value: Any) -> str:
        return clean_text(str(value if value is not None else ""), RESERVED_TEXT_CHARS)

    kept = []
    for entry in entries[:RESERVED_KEPT]:
        if not isinstance(entry, dict):
            continue
        info = entry.get("delivery_info")
        delivery: dict[str, Any] = info if isinstance(info, dict) else {}
        kept.append(
            {
                "task_id": text(entry.get("id")),
                "name": text(entry.get("name")),
                "args": text(entry.get("args")),
                "kwargs": text(entry.get("kwargs")),
                "queue": text(delivery.get("routing_key")),
            }
        )
    return kept


def _queue_names(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return []
    return sorted({str(q["name"]) for q in entries if isinstance(q, dict) and q.get("name")})


class InspectPoller(Poller):
    """Every interval, ``inspect`` stats, active_queues, registered and conf of all workers.

    ``request(hostname)`` (thread-safe: the writer calls it on ``worker-online``) has the
    next step inspect just those workers, with a destination list so it returns as soon
    as they reply.
    """

    name = "inspect"

    def __init__(self, *, app: Celery, interval: float, timeout: float = CONTROL_TIMEOUT) -> None:
        super().__init__(interval=interval)
        self.app = app
        self.timeout = timeout
        self._requested: set[str] = set()
        self._lock = threading.Lock()
        self._sweep = True

    def request(self, hostname: str) -> None:
        self.request_many([hostname])

    def request_many(self, hostnames: Iterable[str]) -> None:
        """Same as ``request``; fits BatchWriter's ``on_new_workers`` callback."""
        with self._lock:
            self._requested.update(hostnames)

    def due(self, now: float) -> bool:
        return bool(self._requested) or super().due(now)

    def step(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._sweep = super().due(now)
        return super().step(now)

    def schedule_next(self, now: float) -> float:
        # Inspecting a requested worker must not push the periodic sweep back.
        return super().schedule_next(now) if self._sweep else self.next_at

    def poll(self) -> bool:
        with self._lock:
            requested = sorted(self._requested)
            self._requested.clear()
        # A sweep broadcasts stats (which costs one silent ``timeout``) to learn who is
        # alive; the other three go only to those who answered, so they return early.
        # Workers read their memory after this moment, and a sample must not be stamped
        # later (after the other calls): a task that ended meanwhile is not in it.
        asked_at = timezone.now()
        stats = self._inspect("stats", None if self._sweep else requested)
        hosts = sorted(stats)
        if not hosts:
            return False
        queues = self._inspect("active_queues", hosts)
        registered = self._inspect("registered", hosts)
        conf = self._inspect("conf", hosts)
        reserved = self._inspect("reserved", hosts)
        now = timezone.now()
        for hostname in hosts:
            self._store(
                hostname,
                now=now,
                stats=stats[hostname],
                queues=queues.get(hostname),
                registered=registered.get(hostname),
                conf=conf.get(hostname),
                reserved=reserved.get(hostname),
            )
        # The advisor judges memory growth from a trend: keep each reply's peak RSS (the
        # advisor poller prunes them, so only while it runs).
        if settings.CONSOLE_ADVISOR_INTERVAL > 0:
            record_memory_samples({host: stats[host] for host in hosts}, at=asked_at)
        return True

    def _inspect(self, method: str, destination: list[str] | None) -> dict[str, Any]:
        inspect = self.app.control.inspect(destination=destination, timeout=self.timeout)
        replies = getattr(inspect, method)()
        return replies if isinstance(replies, dict) else {}

    def _store(
        self,
        hostname: str,
        *,
        now: dt.datetime,
        stats: Any,
        queues: Any,
        registered: Any,
        conf: Any,
        reserved: Any = None,
    ) -> None:
        fields: dict[str, Any] = {"inspected_at": now, "updated_at": now}
        if isinstance(stats, dict):
            fields["stats"] = jsonb_safe(stats)
            pool: dict[str, Any] = stats["pool"] if isinstance(stats.get("pool"), dict) else {}
            if pool.get("implementation"):
                fields["pool"] = pool_name(str(pool["implementation"]))
            if isinstance(pool.get("max-concurrency"), int):
                fields["concurrency"] = pool["max-concurrency"]
            if isinstance(stats.get("pid"), int):
                fields["pid"] = stats["pid"]
        # A worker that missed one of the later calls keeps what it reported before.
        if queues is not None:
            fields["queues"] = _queue_names(queues)
        if registered is not None:
            fields["registered"] = _registered_names(registered)
        if isinstance(conf, dict):
            fields["conf"] = jsonb_safe(celery_settings(conf))
        if isinstance(reserved, list):
            fields["reserved"] = _reserved_tasks(reserved)
            fields["reserved_count"] = len(reserved)
        # The writer owns is_online (heartbeats); a row created here is for a worker whose
        # online event the collector missed, and it did just answer.
        WorkerRecord.objects.update_or_create(
            hostname=hostname,
            defaults=fields,
            create_defaults={**fields, "is_online": True, "first_seen_at": now, "online_at": now},
        )


class WorkerLivenessPoller(Poller):
    """Mark workers offline whose heartbeats stopped, by Celery's rule (``events/state.py``).

    The writer marks workers online on heartbeats and offline on ``worker-offline``; a
    worker killed with SIGKILL or cut off from the broker sends no ``worker-offline``.
    """

    name = "worker_liveness"

    def __init__(
        self, *, interval: float = 2.0, first_delay: float = 10.0, lag: Lag | None = None
    ) -> None:
        # After a collector restart every stored heartbeat is old: wait for fresh ones
        # before judging, or every worker would flap offline (and its tasks look lost).
        super().__init__(interval=interval, first_delay=first_delay)
        self.lag = lag
        self.started_at = timezone.now()

    def poll(self) -> bool:
        now = timezone.now()
        # Judge as of the newest event the writer has stored: heartbeats waiting behind a
        # backlog (a slow database) are not missing heartbeats.
        judged_at = now - dt.timedelta(seconds=self.lag() if self.lag else 0.0)
        marked = 0
        online = WorkerRecord.objects.filter(is_online=True).values_list(
            "pk", "hostname", "last_heartbeat_at", "first_seen_at", "heartbeat_freq"
        )
        for pk, hostname, last_heartbeat_at, first_seen_at, freq in online:
            # A row made by inspect before any heartbeat counts from when it was made.
            since = last_heartbeat_at or first_seen_at
            expires_at = since + dt.timedelta(seconds=(freq or 2.0) * HEARTBEAT_EXPIRE_FACTOR)
            if judged_at < expires_at:
                continue
            # Guarded on the heartbeat we read: one the writer stored meanwhile wins.
            updated = WorkerRecord.objects.filter(
                Q(last_heartbeat_at=last_heartbeat_at)
                if last_heartbeat_at
                else Q(last_heartbeat_at__isnull=True),
                pk=pk,
                is_online=True,
            ).update(is_online=False, offline_at=expires_at, updated_at=now)
            # No worker-offline came: the advisor reports workers that die this way, if
            # their heartbeats stopped while this collector listened (not while it was down).
            if updated and last_heartbeat_at and last_heartbeat_at >= self.started_at:
                WorkerVanished.objects.create(
                    hostname=hostname, last_heartbeat_at=last_heartbeat_at, noticed_at=now
                )
            marked += updated
        if marked:
            log.info("marked %d workers offline after their heartbeats stopped", marked)
        return marked > 0


def pool_peak_kb(reply: dict[str, Any]) -> int | None:
    """The largest peak RSS (KiB) among the processes that run tasks, from the
    ``pool_memory`` that ``tasks_admin.poolmemory`` adds to ``inspect stats``; else None."""
    memory = reply.get("pool_memory")
    processes = memory.get("processes") if isinstance(memory, dict) else None
    if not isinstance(processes, list):
        return None
    peaks = [
        p["peak_kb"]
        for p in processes
        if isinstance(p, dict) and isinstance(p.get("peak_kb"), int) and p["peak_kb"] > 0
    ]
    return max(peaks) if peaks else None


def record_memory_samples(stats: dict[str, Any], *, at: dt.datetime) -> None:
    """One WorkerMemorySample per ``inspect stats`` reply that reports rusage.maxrss (KiB),
    with the pool processes' peak when the worker reports it and the main pid."""
    samples = []
    for hostname, reply in stats.items():
        if not isinstance(reply, dict):
            continue
        rusage = reply.get("rusage")
        maxrss = rusage.get("maxrss") if isinstance(rusage, dict) else None
        if isinstance(maxrss, int) and maxrss > 0:
            pid = reply.get("pid")
            samples.append(
                WorkerMemorySample(
                    hostname=hostname,
                    sampled_at=at,
                    maxrss_kb=maxrss,
                    pool_peak_kb=pool_peak_kb(reply),
                    pid=pid if isinstance(pid, int) else None,
                )
            )
    WorkerMemorySample.objects.bulk_create(samples)
