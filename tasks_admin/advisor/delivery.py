"""How messages reach workers: prefetching with uneven runtimes, Redis redelivery."""

from __future__ import annotations

from collections import defaultdict

from tasks_admin.advisor.base import WARNING, Context, Finding, inspected, seconds, setting
from tasks_admin.advisor.broker import is_redis
from tasks_admin.advisor.window import EMPTY, worker_windows
from tasks_admin.models import TaskRecord, WorkerRecord

# Runtimes "vary widely" when the slowest tenth takes this many times the median...
SPREAD_FACTOR = 10.0
# ...the slow ones take at least this long, and there are enough tasks to tell.
SPREAD_MIN_SLOW_SECONDS = 1.0
SPREAD_MIN_TASKS = 10
# kombu's Redis transport default (transport options visibility_timeout).
REDIS_VISIBILITY_TIMEOUT = 3600.0


def _multiplier(worker: WorkerRecord) -> int:
    value = setting(worker, "worker_prefetch_multiplier")
    return int(value) if isinstance(value, int | float) else 4


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def prefetch_with_uneven_runtimes(ctx: Context) -> list[Finding]:
    consumers: dict[str, list[WorkerRecord]] = defaultdict(list)
    for worker in ctx.online_workers():
        if inspected(worker) and _multiplier(worker) > 1:
            for queue in worker.queues or []:
                consumers[str(queue)].append(worker)
    findings = []
    for queue, workers in sorted(consumers.items()):
        runtimes = [
            float(value or 0.0)
            for value in TaskRecord.objects.filter(
                queue=queue, last_event_at__gte=ctx.since, runtime__isnull=False
            )
            .order_by("-last_event_at")
            .values_list("runtime", flat=True)[:2000]
        ]
        if len(runtimes) < SPREAD_MIN_TASKS:
            continue
        median, slow = _percentile(runtimes, 0.5), _percentile(runtimes, 0.9)
        if slow < SPREAD_MIN_SLOW_SECONDS or slow < SPREAD_FACTOR * max(median, 0.001):
            continue
        hoarders = ", ".join(f"{w.hostname} (x{_multiplier(w)})" for w in workers[:10])
        findings.append(
            Finding(
                check="prefetch_uneven",
                subject=queue,
                severity=WARNING,
                title=(
                    f"Queue {queue}: workers prefetch while runtimes range from "
                    f"{seconds(median)} to {seconds(slow)}"
                ),
                evidence=(
                    f"{len(runtimes)} tasks in the last {seconds(ctx.window.total_seconds())}: "
                    f"median runtime {seconds(median)}, 90th percentile {seconds(slow)}, "
                    f"longest {seconds(max(runtimes))}. Consumers with "
                    f"worker_prefetch_multiplier > 1: {hoarders}."
                ),
                why=(
                    "Each process reserves multiplier x concurrency messages. Quick tasks "
                    "wait behind a slow one reserved by a busy worker while other workers "
                    "sit idle."
                ),
                fix=(
                    "Set worker_prefetch_multiplier = 1 (with task_acks_late for long "
                    "tasks), or route slow tasks to their own queue and workers."
                ),
            )
        )
    return findings


def visibility_timeout(ctx: Context) -> list[Finding]:
    """Redis redelivers unacked messages after visibility_timeout: ETAs and acks_late."""
    findings = []
    for worker in ctx.online_workers():
        if not inspected(worker):
            continue
        broker = setting(worker, "broker_url") or ctx.broker_url
        if not is_redis(str(broker)):
            continue
        options = setting(worker, "broker_transport_options") or {}
        timeout = float(
            options.get("visibility_timeout", REDIS_VISIBILITY_TIMEOUT)
            if isinstance(options, dict)
            else REDIS_VISIBILITY_TIMEOUT
        )
        window = worker_windows(ctx).get(worker.hostname, EMPTY)
        reasons = []
        eta = window.longest_eta_ahead
        if eta is not None and eta > timeout:
            reasons.append(f"an ETA/countdown {seconds(eta)} ahead")
        if setting(worker, "task_acks_late"):
            runtime = window.longest_runtime
            running = (
                TaskRecord.objects.filter(
                    worker=worker.hostname, last_event_at__gte=ctx.since, state="STARTED"
                )
                .exclude(started_at=None)
                .order_by("started_at")
                .values_list("started_at", flat=True)
                .first()
            )
            if running is not None:
                runtime = max(runtime, (ctx.now - running).total_seconds())
            if runtime > timeout:
                reasons.append(f"an acks_late task running {seconds(runtime)}")
        if not reasons:
            continue
        findings.append(
            Finding(
                check="visibility_timeout",
                subject=worker.hostname,
                severity=WARNING,
                title=(
                    f"{worker.hostname}: Redis visibility_timeout {seconds(timeout)} is too short"
                ),
                evidence=(
                    f"broker_transport_options visibility_timeout = {seconds(timeout)}; seen in "
                    f"the last {seconds(ctx.window.total_seconds())}: "
                    + " and ".join(reasons)
                    + "."
                ),
                why=(
                    "On Redis an unacknowledged message goes back to the queue after "
                    "visibility_timeout. Tasks waiting for their ETA, or acks_late tasks "
                    "still running, are then delivered again and run twice."
                ),
                fix=(
                    "Raise broker_transport_options['visibility_timeout'] above the longest "
                    "countdown/ETA and the longest acks_late runtime (on workers and "
                    "producers), or schedule far-future work with celery beat instead."
                ),
            )
        )
    return findings


CHECKS = [prefetch_with_uneven_runtimes, visibility_timeout]
