"""GET /metrics: Prometheus text, names and labels as celery-exporter's, from the database.

Counters are sums over the per-minute rollups, so they survive restarts of the web and the
collector (Prometheus sees a reset only when the retention prunes rollups). The sum over
all history is computed once per process and then only the recent minutes are re-read:
minutes older than SETTLED are folded into a cached base every hour.

Cardinality is bounded: at most CONSOLE_METRICS_MAX_NAMES task names (the busiest; the rest
are summed as name="other"), no exception label, workers capped and offline ones dropped
after CONSOLE_METRICS_OFFLINE_WORKER_SECONDS. Rollups are per task name only, so the
task metrics carry ``name`` but not celery-exporter's ``hostname``/``queue_name``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from rest_framework import exceptions

from tasks_admin import histogram
from tasks_admin.api.auth import address_allowed, bearer_token, client_address, token_user
from tasks_admin.api.errors import error_body
from tasks_admin.models import QueueRecord, WorkerRecord
from tasks_admin.selectors import dashboard as dashboard_selectors
from tasks_admin.selectors.dashboard import NameTotals

SETTLED = dt.timedelta(hours=2)
FOLD_EVERY = dt.timedelta(hours=1)
OTHER = "other"
# Every STEP-th bound of tasks_admin.histogram (x1.25 each), about x3 per exported bucket:
# 1 ms, 3 ms, 9.3 ms, 29 ms, 89 ms, 0.27 s, ... 1 day. Each is an exact bucket edge, so
# the exported counts are exact, not interpolated.
STEP = 5
EXPORTED_BOUNDS: tuple[tuple[int, float], ...] = tuple(
    (i, bound) for i, bound in enumerate(histogram.BOUNDS) if i % STEP == 0
)
COUNTER_NAMES = {
    "received": "celery_task_received",
    "started": "celery_task_started",
    "succeeded": "celery_task_succeeded",
    "failed": "celery_task_failed",
    "retried": "celery_task_retried",
    "revoked": "celery_task_revoked",
}


class CumulativeTotals:
    """Per-name totals over all rollups, re-reading only the last SETTLED of minutes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.base: dict[str, NameTotals] = {}
        self.checkpoint: dt.datetime | None = None

    def _fold(self, since: dt.datetime | None, until: dt.datetime) -> None:
        for totals in dashboard_selectors.name_totals(since=since, until=until):
            self.base.setdefault(totals.name, NameTotals(name=totals.name)).add(totals)
        self.checkpoint = until

    def read(self, now: dt.datetime) -> list[NameTotals]:
        settle = now.replace(second=0, microsecond=0) - SETTLED
        with self._lock:
            if self.checkpoint is None:
                self._fold(None, settle)
            elif settle - self.checkpoint >= FOLD_EVERY:
                self._fold(self.checkpoint, settle)
            checkpoint = self.checkpoint
            merged = {name: _copy(t) for name, t in self.base.items()}
        for totals in dashboard_selectors.name_totals(since=checkpoint):
            merged.setdefault(totals.name, NameTotals(name=totals.name)).add(totals)
        return list(merged.values())


def _copy(totals: NameTotals) -> NameTotals:
    return NameTotals(
        name=totals.name,
        counts=dict(totals.counts),
        hist=list(totals.hist),
        runtime_sum=totals.runtime_sum,
    )


CUMULATIVE = CumulativeTotals()


def bounded(totals: list[NameTotals], limit: int) -> list[NameTotals]:
    """The ``limit`` busiest names, the rest summed as name="other"."""
    ranked = sorted(totals, key=lambda t: (-sum(t.counts.values()), t.name))
    if len(ranked) <= limit:
        return ranked
    kept, rest = ranked[:limit], ranked[limit:]
    other = NameTotals(name=OTHER)
    for t in rest:
        other.add(t)
    return [*kept, other]


def _label(name: str) -> str:
    return name or "unknown"


class ConsoleCollector(Collector):
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from self._tasks()
        yield from self._workers()
        yield from self._queues()

    def _tasks(self) -> Iterator[Metric]:
        names = bounded(CUMULATIVE.read(self.now), settings.CONSOLE_METRICS_MAX_NAMES)
        for key, metric in COUNTER_NAMES.items():
            family = CounterMetricFamily(
                metric, f"Tasks {key} (from the console's rollups).", labels=["name"]
            )
            for t in names:
                family.add_metric([_label(t.name)], t.counts.get(key, 0))
            yield family
        runtime = HistogramMetricFamily(
            "celery_task_runtime", "Runtime of succeeded tasks, seconds.", labels=["name"]
        )
        for t in names:
            buckets: list[tuple[str, float]] = []
            running = 0
            previous = 0
            for index, bound in EXPORTED_BOUNDS:
                running += sum(t.hist[previous : index + 1])
                previous = index + 1
                buckets.append((repr(bound), running))
            total = sum(t.hist)
            buckets.append(("+Inf", total))
            runtime.add_metric([_label(t.name)], buckets, t.runtime_sum)
        yield runtime

    def _workers(self) -> Iterator[Metric]:
        recent = self.now - dt.timedelta(seconds=settings.CONSOLE_METRICS_OFFLINE_WORKER_SECONDS)
        workers = list(
            WorkerRecord.objects.filter(Q(is_online=True) | Q(offline_at__gte=recent))
            .order_by("-is_online", "hostname")
            .values_list("hostname", "is_online", "active", "queues", "concurrency")[
                : settings.CONSOLE_METRICS_MAX_WORKERS
            ]
        )
        up = GaugeMetricFamily(
            "celery_worker_up", "1 if the worker is online.", labels=["hostname"]
        )
        active = GaugeMetricFamily(
            "celery_worker_tasks_active", "Tasks the worker runs now.", labels=["hostname"]
        )
        for hostname, online, running, _, _ in workers:
            up.add_metric([hostname], 1 if online else 0)
            active.add_metric([hostname], running if online else 0)
        yield up
        yield active
        self._online = [(q, c) for _, online, _, q, c in workers if online]

    def _queues(self) -> Iterator[Metric]:
        length = GaugeMetricFamily(
            "celery_queue_length", "Messages waiting in the queue.", labels=["queue_name"]
        )
        consumers = GaugeMetricFamily(
            "celery_active_consumer_count", "Consumers of the queue.", labels=["queue_name"]
        )
        worker_count = GaugeMetricFamily(
            "celery_active_worker_count",
            "Online workers consuming the queue.",
            labels=["queue_name"],
        )
        process_count = GaugeMetricFamily(
            "celery_active_process_count",
            "Pool processes of online workers consuming the queue.",
            labels=["queue_name"],
        )
        online: list[tuple[Any, int | None]] = getattr(self, "_online", [])
        for name, depth, consumer_count in QueueRecord.objects.order_by("name").values_list(
            "name", "depth", "consumers"
        )[:1000]:
            length.add_metric([name], depth)
            if consumer_count is not None:
                consumers.add_metric([name], consumer_count)
            serving = [c for queues, c in online if isinstance(queues, list) and name in queues]
            worker_count.add_metric([name], len(serving))
            process_count.add_metric([name], sum(c or 0 for c in serving))
        yield length
        yield consumers
        yield worker_count
        yield process_count


def render(now: dt.datetime | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector(now or timezone.now()))
    return generate_latest(registry)


def _allowed(request: HttpRequest) -> tuple[bool, str]:
    raw = bearer_token(request)
    if raw is not None:
        secret = settings.CONSOLE_METRICS_TOKEN
        if secret and hmac.compare_digest(raw.encode(), secret.encode()):
            return True, ""
        try:
            token_user(raw)
        except exceptions.AuthenticationFailed as error:
            return False, str(error.detail)
        return True, ""
    if address_allowed(client_address(request), settings.CONSOLE_METRICS_ALLOWED_ADDRESSES):
        return True, ""
    return (
        False,
        "Send the metrics token (Authorization: Bearer) or scrape from an allowed address.",
    )


@login_not_required
def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(error_body("method_not_allowed", "Use GET."), status=405)
    ok, reason = _allowed(request)
    if not ok:
        response = JsonResponse(error_body("not_authenticated", reason), status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
