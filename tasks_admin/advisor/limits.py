"""Time limits: workers without them running long tasks, and tasks past their limit."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count

from tasks_admin.advisor.base import (
    CRITICAL,
    WARNING,
    Context,
    Finding,
    inspected,
    seconds,
    setting,
)
from tasks_admin.advisor.window import EMPTY, worker_windows
from tasks_admin.models import TaskRecord


def _limit(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _longest_runs(ctx: Context, hostname: str) -> tuple[float, str, int]:
    """(longest runtime or running time in the window, its task name, how many over)."""
    long_seconds = ctx.long_task_seconds
    window = worker_windows(ctx).get(hostname, EMPTY)
    best = (window.longest_runtime, window.longest_name)
    running = (
        TaskRecord.objects.filter(worker=hostname, state="STARTED")
        .exclude(started_at=None)
        .order_by("started_at")
        .values_list("started_at", "name")
        .first()
    )
    if running and running[0] is not None:
        elapsed = (ctx.now - running[0]).total_seconds()
        if elapsed > best[0]:
            best = (elapsed, running[1])
    over = window.over_long
    over += TaskRecord.objects.filter(
        worker=hostname,
        state="STARTED",
        started_at__lt=ctx.now - dt.timedelta(seconds=long_seconds),
    ).count()
    return best[0], best[1], over


def no_time_limit(ctx: Context) -> list[Finding]:
    findings = []
    for worker in ctx.online_workers():
        if not inspected(worker):
            continue
        hard = _limit(setting(worker, "task_time_limit"))
        soft = _limit(setting(worker, "task_soft_time_limit"))
        if hard or soft:
            continue
        longest, name, over = _longest_runs(ctx, worker.hostname)
        if longest <= ctx.long_task_seconds:
            continue
        findings.append(
            Finding(
                check="no_time_limit",
                subject=worker.hostname,
                severity=WARNING,
                title=f"{worker.hostname} has no time limit and runs tasks for {seconds(longest)}",
                evidence=(
                    "inspect conf: task_time_limit and task_soft_time_limit are not set. "
                    f"{over} task(s) ran longer than {seconds(ctx.long_task_seconds)} in the "
                    f"last {seconds(ctx.window.total_seconds())}; the longest, {name or '?'}, "
                    f"{seconds(longest)}."
                ),
                why=(
                    "A task stuck on a network call without a timeout holds its pool slot "
                    "forever; enough of them and the worker stops consuming, with no error."
                ),
                fix=(
                    "Set task_soft_time_limit (raises SoftTimeLimitExceeded so the task can "
                    "clean up) and a slightly larger task_time_limit (kills the process), "
                    "globally or per task; give network calls their own timeouts."
                ),
            )
        )
    return findings


def stuck_tasks(ctx: Context) -> list[Finding]:
    """Tasks STARTED for longer than their worker's hard (or soft) time limit."""
    findings = []
    for worker in ctx.online_workers():
        if not inspected(worker):
            continue
        limit = _limit(setting(worker, "task_time_limit")) or _limit(
            setting(worker, "task_soft_time_limit")
        )
        if limit is None:
            continue
        cutoff = ctx.now - dt.timedelta(seconds=limit)
        stuck = (
            TaskRecord.objects.filter(
                worker=worker.hostname, state="STARTED", started_at__lt=cutoff
            )
            .values("name")
            .annotate(count=Count("task_id"))
            .order_by("-count")
        )
        rows = list(stuck)
        if not rows:
            continue
        oldest = (
            TaskRecord.objects.filter(
                worker=worker.hostname, state="STARTED", started_at__lt=cutoff
            )
            .order_by("started_at")
            .values_list("task_id", "name", "started_at")
            .first()
        )
        assert oldest is not None
        total = sum(row["count"] for row in rows)
        names = ", ".join(f"{row['name'] or '?'} x{row['count']}" for row in rows[:10])
        findings.append(
            Finding(
                check="stuck_tasks",
                subject=worker.hostname,
                severity=CRITICAL,
                title=(
                    f"{total} task(s) on {worker.hostname} STARTED longer than the "
                    f"{seconds(limit)} limit"
                ),
                evidence=(
                    f"Time limit {seconds(limit)} (inspect conf); still STARTED: {names}. "
                    f"Oldest: {oldest[1] or '?'} [{oldest[0]}], started "
                    f"{seconds((ctx.now - (oldest[2] or ctx.now)).total_seconds())} ago."
                ),
                why=(
                    "The limit did not stop them: the pool cannot enforce it (threads, gevent, "
                    "eventlet and solo ignore hard limits), or the task swallows "
                    "SoftTimeLimitExceeded, or its events were lost. Each holds a slot."
                ),
                fix=(
                    "Use the prefork pool where hard limits matter, do not catch "
                    "SoftTimeLimitExceeded without re-raising, and revoke with terminate the "
                    "tasks listed (Tasks page, state STARTED)."
                ),
            )
        )
    return findings


CHECKS = [no_time_limit, stuck_tasks]
