"""What each kind of rule measures: subject -> value, for the subjects over the threshold."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db.models import Count, F, Max, Min, Sum

from tasks_admin.models import (
    SEVERITY_RANK,
    AdvisorFinding,
    AlertRule,
    QueueRecord,
    QueueSample,
    TaskMinuteRollup,
    TaskRecord,
    WorkerRecord,
)

# subject -> (measured value, a sentence saying what was seen)
Crossed = dict[str, tuple[float, str]]
Measure = Callable[[AlertRule, dt.datetime], Crossed]


def _window(rule: AlertRule, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=max(rule.window_seconds, 0))


def queue_depth(rule: AlertRule, now: dt.datetime) -> Crossed:
    """Depth above the threshold in every sample of the window (the latest when 0)."""
    queues = QueueRecord.objects.all()
    if rule.target:
        queues = queues.filter(name=rule.target)
    crossed: Crossed = {}
    for queue in queues.filter(depth__gt=rule.threshold):
        if rule.window_seconds > 0:
            least = QueueSample.objects.filter(
                queue=queue.name, sampled_at__gte=_window(rule, now)
            ).aggregate(least=Min("depth"))["least"]
            if least is not None and least <= rule.threshold:
                continue
        crossed[queue.name] = (
            float(queue.depth),
            f"queue {queue.name} holds {queue.depth} messages (threshold {rule.threshold:g})",
        )
    return crossed


def queue_wait(rule: AlertRule, now: dt.datetime) -> Crossed:
    """Longest wait (sent → started, or sent → now while waiting) in the window, per queue."""
    since = _window(rule, now)
    # A task-sent event is never later than the task's last event: the implied bound lets
    # PostgreSQL walk task_last_event_idx instead of scanning the whole history.
    tasks = TaskRecord.objects.filter(
        sent_at__gte=since, last_event_at__gte=since, eta=None
    ).exclude(queue="")
    if rule.target:
        tasks = tasks.filter(queue=rule.target)
    crossed: Crossed = {}
    started = (
        tasks.exclude(started_at=None)
        .values("queue")
        .annotate(longest=Max(F("started_at") - F("sent_at")))
    )
    waits: dict[str, float] = {
        row["queue"]: row["longest"].total_seconds() for row in started if row["longest"]
    }
    waiting = (
        tasks.filter(started_at=None, state__in=["PENDING", "RECEIVED"])
        .values("queue")
        .annotate(oldest=Max(now - F("sent_at")))
    )
    for row in waiting:
        if row["oldest"]:
            waits[row["queue"]] = max(waits.get(row["queue"], 0.0), row["oldest"].total_seconds())
    for queue, wait in waits.items():
        if wait > rule.threshold:
            crossed[queue] = (
                wait,
                f"a task waited {wait:.1f} s in queue {queue} (threshold {rule.threshold:g} s)",
            )
    return crossed


def failure_rate(rule: AlertRule, now: dt.datetime) -> Crossed:
    """Failed / finished per task name over the window's per-minute rollups, in percent."""
    rows = TaskMinuteRollup.objects.filter(
        minute__gte=_window(rule, now).replace(second=0, microsecond=0)
    )
    if rule.target:
        rows = rows.filter(name=rule.target)
    crossed: Crossed = {}
    for row in rows.values("name").annotate(failed=Sum("failed"), succeeded=Sum("succeeded")):
        finished = (row["failed"] or 0) + (row["succeeded"] or 0)
        if not finished:
            continue
        rate = 100.0 * (row["failed"] or 0) / finished
        if rate > rule.threshold:
            crossed[row["name"]] = (
                rate,
                f"{row['name']}: {row['failed']} of {finished} failed ({rate:.0f}%, "
                f"threshold {rule.threshold:g}%)",
            )
    return crossed


def workers_down(rule: AlertRule, now: dt.datetime) -> Crossed:
    """Workers offline that went offline within the window; fires at threshold or more."""
    down = WorkerRecord.objects.filter(is_online=False, offline_at__gte=_window(rule, now))
    if rule.target:
        down = down.filter(hostname=rule.target)
    names = sorted(down.values_list("hostname", flat=True))
    if not names or len(names) < max(rule.threshold, 1):
        return {}
    return {
        "workers": (
            float(len(names)),
            f"{len(names)} worker(s) down: " + ", ".join(names[:20]),
        )
    }


def stuck_tasks(rule: AlertRule, now: dt.datetime) -> Crossed:
    """Tasks STARTED for longer than the threshold (seconds), per task name."""
    tasks = TaskRecord.objects.filter(
        state="STARTED", started_at__lt=now - dt.timedelta(seconds=rule.threshold)
    )
    if rule.target:
        tasks = tasks.filter(name=rule.target)
    crossed: Crossed = {}
    for row in tasks.values("name").annotate(count=Count("task_id")):
        name = row["name"] or "?"
        crossed[name] = (
            float(row["count"]),
            f"{row['count']} {name} task(s) STARTED for more than {rule.threshold:g} s",
        )
    return crossed


def advisor(rule: AlertRule, now: dt.datetime) -> Crossed:
    """Open advisor findings; threshold = least severity (1 info, 2 warning, 3 critical)."""
    findings = AdvisorFinding.objects.filter(resolved_at=None)
    if rule.target:
        findings = findings.filter(check_name=rule.target)
    crossed: Crossed = {}
    for finding in findings:
        rank = SEVERITY_RANK.get(finding.severity, 0)  # type: ignore[call-overload]
        if rank >= rule.threshold:
            crossed[f"{finding.check_name}: {finding.subject}"[:255]] = (
                float(rank),
                f"[{finding.severity}] {finding.title}",
            )
    return crossed


MEASURES: dict[str, Measure] = {
    AlertRule.Kind.QUEUE_DEPTH: queue_depth,
    AlertRule.Kind.QUEUE_WAIT: queue_wait,
    AlertRule.Kind.FAILURE_RATE: failure_rate,
    AlertRule.Kind.WORKERS_DOWN: workers_down,
    AlertRule.Kind.STUCK_TASKS: stuck_tasks,
    AlertRule.Kind.ADVISOR: advisor,
}
