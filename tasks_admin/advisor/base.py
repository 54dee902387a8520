"""What every check shares: the Finding it returns, the Context it reads, worker settings.

A check is a plain function ``check(ctx) -> list[Finding]``: it reads the broker and the
stored history through ``ctx`` and says what it saw, why it matters and how to fix it. It
stores nothing; ``tasks_admin.advisor.runner`` records findings and resolves old ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from tasks_admin.models import Severity, WorkerRecord

if TYPE_CHECKING:
    from tasks_admin.advisor.window import WorkerWindow


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    severity: str
    title: str
    evidence: str
    why: str
    fix: str


@dataclass
class Context:
    """Inputs of one advisor run. Built from settings by ``Context.from_settings``."""

    now: dt.datetime
    broker_url: str
    # label -> URL of every other Redis user the console knows of (result backend, cache,
    # channel layer); workers' own result backends come from their ``inspect conf``.
    other_redis_urls: dict[str, str] = field(default_factory=dict)
    # How far back history counts (failures, runtimes, ETAs).
    window: dt.timedelta = dt.timedelta(hours=1)
    long_task_seconds: float = 300.0
    memory_growth_mb: float = 100.0
    memory_usage_ratio: float = 0.8
    # Workers that have been online at least this long before "no task events" counts.
    silent_worker_seconds: float = 30.0
    _workers: list[WorkerRecord] | None = None
    # Filled by advisor.window.worker_windows, once per run.
    _worker_windows: dict[str, WorkerWindow] | None = None

    @classmethod
    def from_settings(cls, *, broker_url: str | None = None) -> Context:
        others: dict[str, str] = {}
        backend = str(getattr(settings, "CELERY_RESULT_BACKEND", "") or "")
        if backend.startswith(("redis://", "rediss://")):
            others["the console's result backend (CELERY_RESULT_BACKEND)"] = backend
        redis_url = str(getattr(settings, "REDIS_URL", "") or "")
        if redis_url:
            others["the console's live-update channel layer (REDIS_URL)"] = redis_url
        for alias, cache in getattr(settings, "CACHES", {}).items():
            location = cache.get("LOCATION")
            for url in location if isinstance(location, list | tuple) else [location]:
                if isinstance(url, str) and url.startswith(("redis://", "rediss://")):
                    others[f"the Django cache {alias!r}"] = url
        return cls(
            now=timezone.now(),
            broker_url=broker_url or settings.CELERY_BROKER_URL,
            other_redis_urls=others,
            window=dt.timedelta(seconds=settings.CONSOLE_ADVISOR_WINDOW_SECONDS),
            long_task_seconds=settings.CONSOLE_ADVISOR_LONG_TASK_SECONDS,
            memory_growth_mb=settings.CONSOLE_ADVISOR_MEMORY_GROWTH_MB,
        )

    @property
    def since(self) -> dt.datetime:
        return self.now - self.window

    def online_workers(self) -> list[WorkerRecord]:
        if self._workers is None:
            self._workers = list(WorkerRecord.objects.filter(is_online=True).order_by("hostname"))
        return self._workers


def failed_since(ctx: Context) -> dict[str, dt.datetime]:
    """Filter arguments for tasks that failed in the window. A task-failed event is never
    later than the task's last event, so the same bound on last_event_at is implied; it
    lets PostgreSQL walk task_last_event_idx instead of scanning the history."""
    return {"failed_at__gte": ctx.since, "last_event_at__gte": ctx.since}


Check = Callable[[Context], list[Finding]]

CRITICAL, WARNING, INFO = Severity.CRITICAL.value, Severity.WARNING.value, Severity.INFO.value

# Celery's defaults for the settings the checks read (``inspect conf`` omits defaults).
DEFAULTS: dict[str, Any] = {
    "accept_content": ["json"],
    "task_time_limit": None,
    "task_soft_time_limit": None,
    "worker_max_tasks_per_child": None,
    "worker_max_memory_per_child": None,
    "worker_prefetch_multiplier": 4,
    "task_acks_late": False,
    "broker_transport_options": {},
    "result_backend": None,
    "broker_url": None,
}


def setting(worker: WorkerRecord, name: str) -> Any:
    """A worker's Celery setting from its stored ``inspect conf`` reply, or Celery's default.

    Apps configured from Django settings report names like ``CELERY_TASK_TIME_LIMIT``.
    """
    conf = worker.conf if isinstance(worker.conf, dict) else {}
    for key in (name, name.upper(), f"CELERY_{name.upper()}"):
        if key in conf:
            return conf[key]
    return DEFAULTS.get(name)


def inspected(worker: WorkerRecord) -> bool:
    """Whether the worker ever answered ``inspect conf`` (else its settings are unknown)."""
    return worker.inspected_at is not None and isinstance(worker.conf, dict)


def seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.0f} min"
    return f"{value:.1f} s"
