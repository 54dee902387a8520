"""Second sources of truth: final states from the result backend, and tasks lost with workers.

Events are best effort (Redis pub/sub drops a slow subscriber, nobody listens while the
collector is down), so a task can look STARTED forever. This poller turns two other facts
into synthetic events, fed to the writer like broker events:

- django-celery-results says the task finished (``"source": "backend"``);
- the task was STARTED on a worker that has since gone offline (``task-lost``,
  ``"source": "collector"``).

The writer's merge is idempotent (same synthetic event, same key), so emitting one twice
is harmless; the queries below still avoid re-emitting what the rows already say.
"""

import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from celery import states
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django_celery_results.models import TaskResult

from tasks_admin.collector.pollers.base import Lag, Poller
from tasks_admin.models import TaskRecord, WorkerRecord

log = logging.getLogger(__name__)

Emit = Callable[[list[dict[str, Any]]], None]

FINAL_EVENT = {
    states.SUCCESS: "task-succeeded",
    states.FAILURE: "task-failed",
    states.REVOKED: "task-revoked",
}


def exception_repr(result: str | None) -> str:
    """``ValueError('msg')`` from the JSON django-celery-results stores for a failure.

    The backend keeps ``{"exc_type", "exc_message", "exc_module"}``, with the exception's
    args in ``exc_message``; events carry ``repr(exc)``, which this rebuilds.
    """
    try:
        data = json.loads(result or "")
    except ValueError:
        return result or ""
    if not isinstance(data, dict) or "exc_type" not in data:
        return result or ""
    args = data.get("exc_message")
    if not isinstance(args, list | tuple):
        args = [] if args is None else [args]
    return f"{data['exc_type']}({', '.join(repr(arg) for arg in args)})"


def _revoke_reason(result: str | None) -> str:
    # mark_as_revoked stores TaskRevokedError(reason): 'revoked', 'terminated' or 'expired'.
    try:
        args = json.loads(result or "").get("exc_message")
    except (ValueError, AttributeError):
        return ""
    if isinstance(args, list) and args:
        args = args[0]
    return args if isinstance(args, str) else ""


def backend_event(row: TaskResult) -> dict[str, Any]:
    """The synthetic final event for one TaskResult row in a final state."""
    event: dict[str, Any] = {
        "type": FINAL_EVENT[row.status],
        "uuid": row.task_id,
        "timestamp": row.date_done.timestamp(),
        "clock": 0,
        # celery-types' stub of TaskResult predates the worker column.
        "hostname": row.worker or "",  # type: ignore[attr-defined]
        "local_received": time.time(),
        "source": "backend",
    }
    if row.task_name:
        event["name"] = row.task_name
    if row.status == states.SUCCESS:
        # The backend keeps the result as JSON text; shown as is, like an event's repr.
        event["result"] = row.result or ""
    elif row.status == states.FAILURE:
        event["exception"] = exception_repr(row.result)
        event["traceback"] = row.traceback or ""
    else:
        reason = _revoke_reason(row.result)
        event.update(terminated=reason == "terminated", expired=reason == "expired", signum=None)
    return event


class ReconcilePoller(Poller):
    """Emit the final events the collector missed, and ``task-lost`` for orphaned tasks.

    Backend rows are read in (date_done, id) order from an in-memory watermark (an hour
    back at start), at most ``batch_size`` per step, skipping the last ``grace`` seconds:
    the worker saves the result before it sends the event, so a fresh row usually has its
    real event still on the way. ``lag`` (the writer's backlog in seconds) widens that.
    """

    name = "reconcile"

    def __init__(
        self,
        emit: Emit,
        *,
        interval: float,
        lookback: float = 3600.0,
        grace: float = 60.0,
        batch_size: int = 1000,
        lag: Lag | None = None,
    ) -> None:
        super().__init__(interval=interval)
        self.emit = emit
        self.grace = grace
        self.lag = lag
        self.batch_size = batch_size
        self.watermark: tuple[dt.datetime, int] = (
            timezone.now() - dt.timedelta(seconds=lookback),
            0,
        )
        self.emitted_backend = 0
        self.emitted_lost = 0

    def poll(self) -> bool:
        found = self._reconcile_backend()
        found = self._find_lost() or found
        return found

    def _reconcile_backend(self) -> bool:
        since, since_id = self.watermark
        # A backlog in the writer holds real final events too: wait for them as well.
        behind = self.lag() if self.lag else 0.0
        until = timezone.now() - dt.timedelta(seconds=self.grace + behind)
        # Served by the date_done index; the status filter is applied to the range.
        rows = list(
            TaskResult.objects.filter(
                status__in=FINAL_EVENT, date_done__gte=since, date_done__lt=until
            )
            .exclude(date_done=since, id__lte=since_id)
            .order_by("date_done", "id")
            .only(
                "id", "task_id", "status", "date_done", "task_name", "worker", "result", "traceback"
            )[: self.batch_size]
        )
        if not rows:
            return False
        self.watermark = (rows[-1].date_done, rows[-1].id)
        if len(rows) == self.batch_size:
            self.again_soon()
        # By primary key: only tasks whose row does not already say the same.
        known = dict(
            TaskRecord.objects.filter(task_id__in=[row.task_id for row in rows]).values_list(
                "task_id", "state"
            )
        )
        events = [backend_event(row) for row in rows if known.get(row.task_id) != row.status]
        if events:
            self.emit(events)
            self.emitted_backend += len(events)
            log.info("reconciled %d tasks from the result backend", len(events))
        return bool(events)

    def _find_lost(self) -> bool:
        offline_at = WorkerRecord.objects.filter(hostname=OuterRef("worker")).values("offline_at")
        # The (state, -first_seen_at) index gives the STARTED tasks: only those running
        # now or orphaned, a small set however long the history. A worker that went
        # offline after the task started and is back online (a restart) lost it too.
        lost = list(
            TaskRecord.objects.filter(
                state=states.STARTED, lost_at__isnull=True, started_at__isnull=False
            )
            .exclude(worker="")
            .annotate(offline_at=Subquery(offline_at[:1]))
            .filter(offline_at__gt=F("started_at"))
            .values_list("task_id", "worker", "offline_at")[: self.batch_size]
        )
        if not lost:
            return False
        # No again_soon() at a full batch: until the writer stores these as LOST, the same
        # query returns them; the next batch waits an interval.
        now = time.time()
        self.emit(
            [
                {
                    "type": "task-lost",
                    "uuid": task_id,
                    "timestamp": offline_at.timestamp(),
                    "hostname": worker,
                    "clock": 0,
                    "local_received": now,
                    "source": "collector",
                }
                for task_id, worker, offline_at in lost
            ]
        )
        self.emitted_lost += len(lost)
        log.info("marked %d tasks lost with their workers", len(lost))
        return True
