"""Messages nobody will take: queues without consumers, task names no worker knows."""

from __future__ import annotations

import re

from django.db.models import Q

from tasks_admin.advisor.base import CRITICAL, Context, Finding, failed_since
from tasks_admin.models import QueueRecord, QueueSample, TaskRecord

NOT_REGISTERED = re.compile(r"NotRegistered\(['\"](?P<name>[^'\"]+)['\"]")


def queue_without_consumer(ctx: Context) -> list[Finding]:
    findings = []
    for queue in QueueRecord.objects.filter(depth__gt=0, consumers=0).order_by("name"):
        # Since when: the first of the latest unbroken run of consumer-less samples.
        last_consumed = (
            QueueSample.objects.filter(queue=queue.name, consumers__gt=0)
            .order_by("-sampled_at")
            .values_list("sampled_at", flat=True)
            .first()
        )
        since = (
            f"no consumer seen since {last_consumed:%Y-%m-%d %H:%M:%S} UTC"
            if last_consumed
            else "no consumer seen since the console started sampling it"
        )
        findings.append(
            Finding(
                check="queue_without_consumer",
                subject=queue.name,
                severity=CRITICAL,
                title=f"Queue {queue.name} has {queue.depth} message(s) and no consumer",
                evidence=f"Latest sample: depth {queue.depth}, consumers 0; {since}.",
                why=(
                    "Nothing will ever run these tasks. Usually a routing change "
                    "(task_routes, queue=) was deployed to producers but the workers were "
                    "not restarted with -Q including the new queue."
                ),
                fix=(
                    f"Start or restart workers with -Q {queue.name} (or add it at runtime: "
                    "Workers page, add consumer), or fix the routing and move the messages."
                ),
            )
        )
    return findings


def not_registered(ctx: Context) -> list[Finding]:
    rows = list(
        TaskRecord.objects.filter(state="FAILURE", **failed_since(ctx))
        .filter(Q(exception_type="NotRegistered") | Q(exception__startswith="NotRegistered("))
        .values_list("name", "exception", "worker")
    )
    by_name: dict[str, tuple[int, set[str]]] = {}
    for name, exception, worker in rows:
        match = NOT_REGISTERED.search(exception or "")
        key = name or (match.group("name") if match else "?")
        count, workers = by_name.get(key, (0, set()))
        by_name[key] = (count + 1, workers | ({worker} if worker else set()))
    findings = []
    for name, (count, workers) in sorted(by_name.items()):
        where = ", ".join(sorted(workers)[:5]) or "the workers"
        findings.append(
            Finding(
                check="not_registered",
                subject=name,
                severity=CRITICAL,
                title=f"{count} {name} task(s) failed: no worker knows that name",
                evidence=(
                    f"NotRegistered({name!r}) from {where} in the last "
                    f"{int(ctx.window.total_seconds() // 60)} min."
                ),
                why=(
                    "A task's name is its module path unless given one; moving or renaming "
                    "the function changes it, and producers still send the old name (or "
                    "workers run old code)."
                ),
                fix=(
                    "Give tasks explicit names (@app.task(name='billing.charge')), keep the "
                    "old name registered until queued messages drain, and deploy workers "
                    "before producers."
                ),
            )
        )
    return findings


CHECKS = [queue_without_consumer, not_registered]
