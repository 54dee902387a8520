"""Worker health: memory that keeps growing, workers that died silently, tasks killed."""

from __future__ import annotations

import itertools

from django.db.models import Count, Q

from tasks_admin.advisor.base import (
    CRITICAL,
    WARNING,
    Context,
    Finding,
    failed_since,
    inspected,
    seconds,
    setting,
)
from tasks_admin.models import TaskRecord, WorkerMemorySample, WorkerRecord, WorkerVanished

# A pool process killed under a task: billiard raises WorkerLostError in the parent, which
# the event reports as "ExceptionWithTraceback()" with the real error in the traceback.
KILLED = (
    Q(exception__contains="WorkerLostError")
    | Q(traceback__contains="WorkerLostError")
    | Q(exception__contains="signal 9")
    | Q(traceback__contains="signal 9")
)

# Fewer samples than this say nothing about a trend.
MIN_SAMPLES = 3


def memory_growth(ctx: Context) -> list[Finding]:
    """No max_tasks_per_child / max_memory_per_child while peak RSS keeps climbing."""
    findings = []
    for worker in ctx.online_workers():
        if not inspected(worker):
            continue
        if setting(worker, "worker_max_tasks_per_child") or setting(
            worker, "worker_max_memory_per_child"
        ):
            continue
        samples = list(
            WorkerMemorySample.objects.filter(hostname=worker.hostname, sampled_at__gte=ctx.since)
            .order_by("sampled_at")
            .values_list("sampled_at", "maxrss_kb")
        )
        # Only this run of the worker: its pid's samples start when it came online.
        if worker.online_at:
            samples = [s for s in samples if s[0] >= worker.online_at] or samples
        if len(samples) < MIN_SAMPLES:
            continue
        first, last = samples[0][1], samples[-1][1]
        grown_mb = (last - first) / 1024
        rises = sum(1 for a, b in itertools.pairwise(samples) if b[1] > a[1])
        if grown_mb < ctx.memory_growth_mb or rises < 2:
            continue
        span = (samples[-1][0] - samples[0][0]).total_seconds()
        findings.append(
            Finding(
                check="memory_growth",
                subject=worker.hostname,
                severity=WARNING,
                title=(
                    f"{worker.hostname} keeps growing ({grown_mb:.0f} MB) with no per-child limit"
                ),
                evidence=(
                    f"Peak RSS (inspect stats rusage.maxrss) went from {first / 1024:.0f} MB "
                    f"to {last / 1024:.0f} MB over {seconds(span)} ({len(samples)} samples, "
                    f"{rises} rises); worker_max_tasks_per_child and "
                    "worker_max_memory_per_child are not set."
                ),
                why=(
                    "A leak (caches, module globals, C extensions) grows until the kernel's "
                    "OOM killer sends SIGKILL: the tasks running then are lost "
                    "(WorkerLostError) and the worker restarts cold."
                ),
                fix=(
                    "Set worker_max_tasks_per_child (e.g. 1000) and/or "
                    "worker_max_memory_per_child (KiB) so pool processes are replaced before "
                    "they grow too large, and look for the leak."
                ),
            )
        )
    return findings


def vanished_workers(ctx: Context) -> list[Finding]:
    """Workers whose heartbeats stopped without a worker-offline event, still gone."""
    noticed = (
        WorkerVanished.objects.filter(noticed_at__gte=ctx.since)
        .order_by("hostname", "-noticed_at")
        .distinct("hostname")
    )
    offline = set(
        WorkerRecord.objects.filter(
            hostname__in=[row.hostname for row in noticed], is_online=False
        ).values_list("hostname", flat=True)
    )
    findings = []
    for row in noticed:
        if row.hostname not in offline:
            continue
        lost = TaskRecord.objects.filter(worker=row.hostname, state="LOST").count()
        heartbeat = (
            f"its last heartbeat arrived at {row.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            if row.last_heartbeat_at
            else "it never sent a heartbeat the console saw"
        )
        findings.append(
            Finding(
                check="worker_vanished",
                subject=row.hostname,
                severity=CRITICAL,
                title=f"{row.hostname} died without saying goodbye",
                evidence=(
                    f"No worker-offline event: {heartbeat}; marked offline at "
                    f"{row.noticed_at:%Y-%m-%d %H:%M:%S} UTC. {lost} task(s) it was running "
                    "are marked LOST."
                ),
                why=(
                    "A clean shutdown sends worker-offline. Silence means SIGKILL (the OOM "
                    "killer, a container limit, kill -9) or a lost network: tasks it held "
                    "without acks_late are gone, with acks_late they run again."
                ),
                fix=(
                    "Check the host's kernel log (dmesg: 'Out of memory: Killed process') and "
                    "container limits; give the worker memory headroom and "
                    "worker_max_memory_per_child; stop workers with SIGTERM (warm shutdown)."
                ),
            )
        )
    return findings


def killed_tasks(ctx: Context) -> list[Finding]:
    """Tasks failed with WorkerLostError / 'exited prematurely: signal 9'."""
    rows = (
        TaskRecord.objects.filter(state="FAILURE", **failed_since(ctx))
        .filter(KILLED)
        .values("name")
        .annotate(count=Count("task_id"))
        .order_by("-count")
    )
    findings = []
    for row in rows:
        name = row["name"] or "?"
        example = (
            TaskRecord.objects.filter(name=row["name"], state="FAILURE", **failed_since(ctx))
            .filter(KILLED)
            .order_by("-failed_at")
            .values_list("task_id", "worker", "exception", "traceback")
            .first()
        )
        assert example is not None
        findings.append(
            Finding(
                check="worker_lost",
                subject=name,
                severity=CRITICAL,
                title=f"{row['count']} {name} task(s) died with their pool process",
                evidence=(f"Last: [{example[0]}] on {example[1] or '?'}: {example[2][:300]}"),
                why=(
                    "The process running the task was killed (signal 9 is usually the OOM "
                    "killer or a container memory limit, sometimes a segfault in a C "
                    "extension); the task's work stopped half-way."
                ),
                fix=(
                    "Look at the task's memory use and the host's kernel log; set "
                    "worker_max_memory_per_child; make the task idempotent and use acks_late "
                    "with task_reject_on_worker_lost if it must run again."
                ),
            )
        )
    return findings


CHECKS = [memory_growth, vanished_workers, killed_tasks]


def _last_line(traceback: str) -> str:
    lines = [line for line in (traceback or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
