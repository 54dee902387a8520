"""Visibility: workers alive by heartbeat whose task events never arrive."""

from __future__ import annotations

from tasks_admin.advisor.base import WARNING, Context, Finding, seconds
from tasks_admin.models import TaskRecord

# Heartbeats say the worker processed at least this many tasks...
MIN_PROCESSED = 3


def silent_workers(ctx: Context) -> list[Finding]:
    findings = []
    for worker in ctx.online_workers():
        if worker.last_heartbeat_at is None or worker.processed < MIN_PROCESSED:
            continue
        online_since = worker.online_at or worker.first_seen_at
        if (ctx.now - online_since).total_seconds() < ctx.silent_worker_seconds:
            continue
        seen = TaskRecord.objects.filter(
            worker=worker.hostname, last_event_at__gte=online_since
        ).exists()
        if seen:
            continue
        findings.append(
            Finding(
                check="no_task_events",
                subject=worker.hostname,
                severity=WARNING,
                title=f"{worker.hostname} sends heartbeats but no task events",
                evidence=(
                    f"Heartbeats for {seconds((ctx.now - online_since).total_seconds())}, the "
                    f"latest saying it processed {worker.processed} task(s); the console "
                    "received no task event from it."
                ),
                why=(
                    "Task events are off on that worker (started without -E, and "
                    "enable_events cannot reach it: remote control disabled or another "
                    "broker vhost). Its tasks are invisible: no history, no failures, no alerts."
                ),
                fix=(
                    "Start it with -E (worker_send_task_events = True) and keep "
                    "worker_enable_remote_control on; set task_send_sent_event = True on "
                    "producers."
                ),
            )
        )
    return findings


CHECKS = [silent_workers]
