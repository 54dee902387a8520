"""GET /metrics: Prometheus text, names and labels as celery-exporter's, from the database.

Task counters and histograms are the running totals per task name (TaskNameTotal), which
the collector's writer keeps in the same transaction as the per-minute rollups: a scrape
reads one row per name instead of summing every minute of history, whatever the size of
the history, and every web process answers the same from the first scrape on. They
survive restarts of the web and the collector, and retention never lowers them.

Cardinality is bounded: at most CONSOLE_METRICS_MAX_NAMES task names (the busiest; the rest
are summed as name="other"), no exception label, workers capped and offline ones dropped
after CONSOLE_METRICS_OFFLINE_WORKER_SECONDS. Totals are per task name only, so the
task metrics carry ``name`` but not celery-exporter's ``hostname``/``queue_name``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
from collections.abc import Iterator, Sequence
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
from tasks_admin.collector import rollups
from tasks_admin.models import QueueRecord, TaskNameTotal, WorkerRecord

OTHER = "other"
# Every STEP-th bound of tasks_admin.histogram (x1.25 each), about x3 per exported bucket:
# 1 ms, 3 ms, 9.3 ms, 29 ms, 89 ms, 0.27 s, ... 1 day. Each is an exact bucket edge, so
# the exported counts are exact, not interpolated.
STEP = 5
EXPORTED_BOUNDS: tuple[tuple[int, float], ...] = tuple(
    (i, bound) for i, bound in enumerate(histogram.BOUNDS) if i % STEP == 0
)
COUNTER_HELP = {
    "sent": "Tasks published (task-sent; needs task_send_sent_event).",
    "received": "Tasks received by a worker.",
    "started": "Tasks started by a worker.",
    "succeeded": "Tasks that succeeded.",
    "failed": "Tasks that failed.",
    "retried": "Task retries.",
    "revoked": "Tasks revoked.",
    "rejected": "Tasks rejected by a worker (task-rejected, requeued or not).",
}
HISTOGRAMS = {
    # metric: (count column, sum column, histogram column, help)
    "celery_task_runtime": (
        "runtime_count",
        "runtime_sum",
        "runtime_hist",
        "Runtime of succeeded tasks, seconds.",
    ),
    "celery_task_queue_wait_time": (
        "queue_wait_count",
        "queue_wait_sum",
        "queue_wait_hist",
        "Seconds from publish (task-sent) to start, of finished tasks that were never "
        "retried and had no ETA/countdown; needs task_send_sent_event.",
    ),
}
ADDED_COLUMNS = tuple(c for c in rollups.COLUMNS if not c.endswith("_hist"))
HIST_COLUMNS = tuple(c for c in rollups.COLUMNS if c.endswith("_hist"))


@dataclasses.dataclass
class Totals:
    """One task name's running totals (or the sum of several, for name="other")."""

    name: str
    values: dict[str, Any]

    @property
    def tasks(self) -> int:
        return sum(self.values[c] for c in rollups.COUNTS)

    def add(self, other: Totals) -> None:
        for column in ADDED_COLUMNS:
            self.values[column] += other.values[column]
        for column in HIST_COLUMNS:
            self.values[column] = histogram.add(
                list(self.values[column]) or histogram.empty(), other.values[column]
            )


def read_totals() -> list[Totals]:
    """Every task name's totals but those that are all zero (a name whose contributions
    all moved to another, e.g. "" for tasks seen started before their name was known)."""
    rows = TaskNameTotal.objects.values_list("name", *rollups.COLUMNS)
    totals = [Totals(name, dict(zip(rollups.COLUMNS, rest, strict=True))) for name, *rest in rows]
    return [t for t in totals if any(t.values[c] for c in ADDED_COLUMNS)]


def bounded(totals: list[Totals], limit: int) -> list[Totals]:
    """The ``limit`` busiest names, the rest summed as name="other"."""
    ranked = sorted(totals, key=lambda t: (-t.tasks, t.name))
    if len(ranked) <= limit:
        return ranked
    kept, rest = ranked[:limit], ranked[limit:]
    other = Totals(OTHER, {c: [] if c in HIST_COLUMNS else 0 for c in rollups.COLUMNS})
    for t in rest:
        other.add(t)
    return [*kept, other]


def _label(name: str) -> str:
    return name or "unknown"


def cumulative_buckets(hist: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus' cumulative ``le`` buckets from a tasks_admin.histogram array."""
    buckets: list[tuple[str, float]] = []
    running = 0
    previous = 0
    for index, bound in EXPORTED_BOUNDS:
        running += sum(hist[previous : index + 1])
        previous = index + 1
        buckets.append((repr(bound), running))
    buckets.append(("+Inf", sum(hist)))
    return buckets


class ConsoleCollector(Collector):
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from self._tasks()
        yield from self._workers()
        yield from self._queues()

    def _tasks(self) -> Iterator[Metric]:
        names = bounded(read_totals(), settings.CONSOLE_METRICS_MAX_NAMES)
        for key in rollups.COUNTS:
            family = CounterMetricFamily(f"celery_task_{key}", COUNTER_HELP[key], labels=["name"])
            for t in names:
                family.add_metric([_label(t.name)], t.values[key])
            yield family
        for metric, (_, total, hist, help_text) in HISTOGRAMS.items():
            histogram_family = HistogramMetricFamily(metric, help_text, labels=["name"])
            for t in names:
                # _count is the +Inf bucket, which equals the count column.
                histogram_family.add_metric(
                    [_label(t.name)], cumulative_buckets(t.values[hist]), t.values[total]
                )
            yield histogram_family

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
