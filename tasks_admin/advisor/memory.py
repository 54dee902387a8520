"""Worker health: memory that keeps growing, workers that died silently, tasks killed."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

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

# Pools that run tasks in the worker's main process, whose ``inspect stats``
# rusage.maxrss (getrusage(RUSAGE_SELF)) therefore includes what tasks leak. Prefork runs
# them in child processes that figure never sees.
IN_PROCESS_POOLS = frozenset({"threads", "solo", "gevent", "eventlet"})


@dataclass(frozen=True)
class Trend:
    figure: str  # what was measured, for the evidence
    points: list[tuple[dt.datetime, int]]  # (sampled_at, KiB)


def memory_trend(worker: WorkerRecord, since: dt.datetime) -> Trend | None:
    """The worker's memory over its current run, in the figure that covers its tasks.

    None when the console cannot see where its tasks run: a prefork worker whose app did
    not install ``tasks_admin.poolmemory`` reports only its main process, which does not
    run tasks (a leak there stays invisible, and flat samples must not read as "no leak").
    """
    rows = list(
        WorkerMemorySample.objects.filter(hostname=worker.hostname, sampled_at__gte=since)
        .order_by("sampled_at")
        .values_list("sampled_at", "maxrss_kb", "pool_peak_kb", "pid")
    )
    if not rows:
        return None
    # Only this run of the worker: a restarted one starts small again under a new pid.
    # (Rows from before pids were stored fall back on when the worker came online.)
    if rows[-1][3] is not None:
        rows = [row for row in rows if row[3] == rows[-1][3]]
    elif worker.online_at:
        rows = [row for row in rows if row[0] >= worker.online_at] or rows
    pool = [(at, peak) for at, _, peak, _ in rows if peak is not None]
    in_process = worker.pool in IN_PROCESS_POOLS
    if pool:
        where = (
            f"its main process, where the {worker.pool} pool runs tasks"
            if in_process
            else "its largest pool process"
        )
        return Trend(f"peak RSS of {where} (VmHWM, from tasks_admin.poolmemory)", pool)
    if in_process:
        # Second best: on Linux a process's maxrss starts at the peak of whatever launched
        # it (the kernel carries it across fork and exec), so growth below that is hidden.
        return Trend(
            f"peak RSS of its main process, where the {worker.pool} pool runs tasks "
            "(inspect stats rusage.maxrss)",
            [(at, maxrss) for at, maxrss, _, _ in rows],
        )
    return None


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
        trend = memory_trend(worker, ctx.since)
        if trend is None or len(trend.points) < MIN_SAMPLES:
            continue
        samples = trend.points
        first, last = samples[0][1], samples[-1][1]
        grown_mb = (last - first) / 1024
        # Two rises at least: one is a big task (peak RSS never comes down), not a leak.
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
                    f"The {trend.figure} went from {first / 1024:.0f} MB "
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
