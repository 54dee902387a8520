"""Revoke and terminate one task, and bulk revoke or retry what a task-list filter matches.

A revoke is a broadcast to the workers online now: each adds the id to its revoked set
and discards the message when it reaches them (the message stays in the broker until
then). On Redis the broadcast is pub/sub, so a worker that is offline never hears it; a
revoke nobody acknowledged is reported as not done rather than as done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import states
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from tasks_admin.collector.merge import LOST
from tasks_admin.models import BulkRun, TaskRecord
from tasks_admin.roles import Actor
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.selectors.tasks import TaskFilters
from tasks_admin.services.base import (
    ActionConflict,
    ActionError,
    ActionInvalid,
    ActionNotFound,
    ActionResult,
    ActionUnavailable,
    perform,
)
from tasks_admin.services.broker import (
    CONTROL_TIMEOUT,
    broadcast,
    replies_by_worker,
    reply_text,
)

logger = logging.getLogger(__name__)

# States after which nothing is left to revoke or terminate.
FINAL_STATES = frozenset({states.SUCCESS, states.FAILURE, states.REVOKED, states.REJECTED})
# The states each bulk action applies to (intersected with the filter's own states).
BULK_STATES: dict[str, tuple[str, ...]] = {
    # Not STARTED: a revoke does not stop a running task (terminate does, one by one).
    "revoke": (states.PENDING, states.RECEIVED, states.RETRY),
    "retry": (states.FAILURE, states.REVOKED, LOST),
}
# Signals a terminate may send (names as the worker's ``signal`` module spells them).
SIGNALS = ("SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2")
# Ids per revoke broadcast / per progress update of a bulk run.
BULK_CHUNK = 100
# Per-task errors kept on a bulk run for the page.
BULK_ERRORS_KEPT = 20


def task_revoke(*, actor: Actor, task_id: str) -> ActionResult:
    """Revoke a queued, scheduled or retrying task: workers discard it when it reaches them.

    ActionNotFound for an id the console never saw, ActionConflict for a finished task,
    ActionUnavailable when no worker acknowledged the revoke (nobody would discard it).
    """

    def run() -> ActionResult:
        task = _task(task_id)
        if task.state in FINAL_STATES:
            raise ActionConflict(f"Task {task_id} is already {task.state}: nothing to revoke.")
        replies = _broadcast_revoke([task_id])
        note = (
            " It was running: a revoke does not stop a running task; terminate does."
            if task.state == states.STARTED
            else " A worker discards it when the message reaches it."
        )
        return ActionResult(
            f"Revoked task {task_id}: {_acknowledged(replies)}.{note}",
            {"task_id": task_id, "replies": replies},
        )

    return perform(actor, "task.revoke", targets=[task_id], run=run)


def task_terminate(*, actor: Actor, task_id: str, signal: str = "SIGTERM") -> ActionResult:
    """Revoke a task and signal the pool process running it (``signal``, default SIGTERM).

    The worker then reports it REVOKED. ActionInvalid for a signal not in SIGNALS.
    """
    params = {"signal": signal}

    def run() -> ActionResult:
        name = _signal_name(signal)
        task = _task(task_id)
        if task.state in FINAL_STATES:
            raise ActionConflict(f"Task {task_id} is already {task.state}: nothing to terminate.")
        replies = _broadcast_revoke([task_id], terminate=True, signal=name)
        # A worker running it answers "terminate: <ids>", the others "terminate: tasks unknown".
        running_on = [
            host
            for host, reply in replies.items()
            if task_id in reply_text(reply).removeprefix("terminate: ").split(", ")
        ]
        if running_on:
            detail = f"Sent {name} to task {task_id} on {', '.join(running_on)}."
        else:
            detail = (
                f"No worker was running task {task_id}; it is flagged revoked, "
                "so it will not start."
            )
        return ActionResult(
            detail,
            {"task_id": task_id, "signal": name, "terminated_on": running_on, "replies": replies},
        )

    return perform(actor, "task.terminate", targets=[task_id], params=params, run=run)


def tasks_bulk(
    *,
    actor: Actor,
    action: str,
    filters: TaskFilters,
    dry_run: bool = False,
    cap: int | None = None,
    query: str = "",
    wait: bool = True,
) -> ActionResult:
    """Revoke or retry (``action``: "revoke" or "retry", else ActionInvalid) every task the
    task list shows for ``filters``, in the states the action applies to (BULK_STATES), at
    most ``cap`` (never above settings.CONSOLE_BULK_MAX).

    ``dry_run`` only counts (``data["count"]``, capped at cap + 1). Otherwise a BulkRun row
    (``data["run_id"]``) is updated after every chunk of BULK_CHUNK tasks; with
    ``wait=False`` the work continues in a thread after this returns, and the row says how
    it ends. A set larger than the cap is refused as a whole (narrow the filter), so what
    runs is exactly what the dry run counted. ``query`` is the list's query string, kept on
    the run and in the audit entry.
    """
    params = {"action": action, "query": query, "dry_run": dry_run, "cap": cap}

    def run() -> ActionResult:
        limit = _bulk_cap(cap)
        if action not in BULK_STATES:
            raise ActionInvalid(f"Unknown bulk action {action!r}: use revoke or retry.")
        retry = _task_retry() if action == "retry" else None
        if action == "retry" and retry is None:
            raise ActionUnavailable(
                "Bulk retry needs the retry action, which this console does not have yet."
            )
        ids = task_selectors.matching_task_ids(
            filters, only_states=BULK_STATES[action], limit=limit + 1
        )
        allowed = "/".join(BULK_STATES[action])
        if dry_run:
            shown = f"more than {limit:,}" if len(ids) > limit else f"{len(ids):,}"
            return ActionResult(
                f"{shown} task{'s' if len(ids) != 1 else ''} in {allowed} match; "
                f"a bulk {action} may touch at most {limit:,}.",
                {"count": min(len(ids), limit + 1), "over_cap": len(ids) > limit, "cap": limit},
            )
        if not ids:
            raise ActionInvalid(f"No task in {allowed} matches this filter: nothing to {action}.")
        if len(ids) > limit:
            raise ActionInvalid(
                f"More than {limit:,} tasks match; a bulk {action} may touch at most {limit:,}. "
                "Narrow the filter (state, name, queue or time range)."
            )
        bulk = BulkRun.objects.create(
            username=actor.username, action=action, query=query, total=len(ids)
        )
        if wait:
            _bulk_execute(bulk, actor, action, ids)
            bulk.refresh_from_db()
            return ActionResult(
                bulk.detail,
                {"run_id": bulk.pk, "count": len(ids), "status": bulk.status, "ids": ids},
            )
        thread = threading.Thread(
            target=_bulk_in_thread,
            args=(bulk.pk, actor, action, ids),
            name=f"bulk-{bulk.pk}",
            daemon=True,
        )
        # The thread reads the row on its own connection: only once it is committed.
        transaction.on_commit(thread.start)
        return ActionResult(
            f"Bulk {action} of {len(ids):,} tasks started (run {bulk.pk}).",
            {"run_id": bulk.pk, "count": len(ids), "status": bulk.status, "ids": ids},
        )

    # Targets: the ids acted on are in the result; the filter is in the params.
    return perform(actor, "tasks.bulk", targets=[query or "(all tasks)"], params=params, run=run)


def _bulk_cap(cap: int | None) -> int:
    ceiling = int(settings.CONSOLE_BULK_MAX)
    if cap is None:
        return ceiling
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ActionInvalid(f"cap must be a whole number of at least 1, not {cap!r}.")
    return min(cap, ceiling)


def _task_retry() -> Callable[..., ActionResult] | None:
    # The retry service lives in another module (services/replay.py); looked up at call
    # time so this module works with or without it.
    from tasks_admin import services

    return getattr(services, "task_retry", None)


def _bulk_in_thread(run_id: int, actor: Actor, action: str, ids: list[str]) -> None:
    try:
        bulk = BulkRun.objects.get(pk=run_id)
        _bulk_execute(bulk, actor, action, ids)
    except Exception:
        logger.exception("bulk run %s failed", run_id)
    finally:
        close_old_connections()
        connection.close()


def _bulk_execute(bulk: BulkRun, actor: Actor, action: str, ids: list[str]) -> None:
    """Act chunk by chunk, saving progress after each; never raises (the row says why)."""
    try:
        for start in range(0, len(ids), BULK_CHUNK):
            chunk = ids[start : start + BULK_CHUNK]
            if action == "revoke":
                _broadcast_revoke(chunk)
                bulk.succeeded += len(chunk)
            else:
                retry = _task_retry()
                assert retry is not None
                for task_id in chunk:
                    try:
                        retry(actor=actor, task_id=task_id)
                        bulk.succeeded += 1
                    except ActionError as error:
                        bulk.failed += 1
                        if len(bulk.errors) < BULK_ERRORS_KEPT:
                            bulk.errors.append({"task_id": task_id, "error": error.detail})
            bulk.done += len(chunk)
            bulk.updated_at = timezone.now()
            bulk.save(update_fields=["done", "succeeded", "failed", "errors", "updated_at"])
    except Exception as error:
        detail = (
            error.detail if isinstance(error, ActionError) else f"{type(error).__name__}: {error}"
        )
        _finish(
            bulk, BulkRun.Status.FAILED, f"Stopped after {bulk.done:,} of {bulk.total:,}: {detail}"
        )
        return
    verb = "Revoked" if action == "revoke" else "Retried"
    if bulk.failed:
        _finish(
            bulk,
            BulkRun.Status.PARTIAL,
            f"{verb} {bulk.succeeded:,} of {bulk.total:,} tasks; "
            f"{bulk.failed:,} refused or failed.",
        )
    else:
        _finish(bulk, BulkRun.Status.SUCCEEDED, f"{verb} {bulk.succeeded:,} tasks.")


def _finish(bulk: BulkRun, status: str, detail: str) -> None:
    bulk.status, bulk.detail = status, detail
    bulk.finished_at = bulk.updated_at = timezone.now()
    bulk.save()


def _task(task_id: str) -> TaskRecord:
    if not task_id or "\x00" in task_id or len(task_id) > 255:
        raise ActionNotFound(f"No task with id {task_id!r}.")
    task = TaskRecord.objects.filter(pk=task_id).only("task_id", "state").first()
    if task is None:
        raise ActionNotFound(f"No task with id {task_id!r} has been seen by the console.")
    return task


def _signal_name(signal: str) -> str:
    name = (signal or "").strip().upper()
    if name and not name.startswith("SIG"):
        name = f"SIG{name}"
    if name not in SIGNALS:
        raise ActionInvalid(f"Unknown signal {signal!r}; use one of {', '.join(SIGNALS)}.")
    return name


def _broadcast_revoke(
    task_ids: list[str], *, terminate: bool = False, signal: str | None = None
) -> dict[str, Any]:
    """Broadcast one revoke for ``task_ids``; the replies by worker. ActionUnavailable when
    no worker answered: then no worker holds the revoke and the tasks would still run."""
    replies = broadcast(
        "revoke",
        arguments={"task_id": task_ids, "terminate": terminate, "signal": signal or "SIGTERM"},
        timeout=CONTROL_TIMEOUT,
    )
    merged = replies_by_worker(replies)
    if not merged:
        raise ActionUnavailable(
            "No worker answered the revoke, so none will discard the task: start a worker "
            "(with --statedb to keep revokes over restarts) and revoke again."
        )
    return merged


def _acknowledged(replies: dict[str, Any]) -> str:
    hosts = sorted(replies)
    shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    return f"{len(hosts)} worker{'s' if len(hosts) != 1 else ''} acknowledged ({shown})"
