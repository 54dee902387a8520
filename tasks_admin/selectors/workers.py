"""Worker reads: the current WorkerRecord table, and one worker's tasks from the history.

The list never loads the inspect JSON (stats, conf, registered): only the worker page
shows it, for one row.
"""

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from celery import states
from django.db.models import Count, Q, QuerySet, Sum

from tasks_admin.collector.pollers.workers import HEARTBEAT_EXPIRE_FACTOR
from tasks_admin.models import TaskRecord, WorkerRecord

# Enough for the tasks a worker runs at once (its concurrency) with room to spare; the
# full history is one click away on the tasks page, filtered by worker.
STARTED_CAP = 100
RECENT_CAP = 20
TASK_LIST_FIELDS = (
    "task_id",
    "name",
    "state",
    "first_seen_at",
    "received_at",
    "started_at",
    "runtime",
    "retries",
    "queue",
)


@dataclass(frozen=True)
class WorkerRow:
    worker: WorkerRecord
    # Online by the collector's last word, yet its heartbeats stopped: the liveness poller
    # is about to mark it offline (or the collector itself is behind).
    heartbeat_late: bool

    @property
    def load(self) -> str:
        values = self.worker.loadavg if isinstance(self.worker.loadavg, list) else []
        return " ".join(_load_value(v) for v in values[:3])


@dataclass(frozen=True)
class WorkerCounts:
    online: int
    offline: int
    # Sum of `active` from the online workers' heartbeats.
    active: int


@dataclass(frozen=True)
class WorkerDetail:
    row: WorkerRow
    stats_json: str
    conf_json: str
    started: list[TaskRecord]
    started_capped: bool
    recent: list[TaskRecord]


def _load_value(value: Any) -> str:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return "?"


def _is_late(worker: WorkerRecord, now: dt.datetime) -> bool:
    if not worker.is_online or worker.last_heartbeat_at is None:
        return False
    allowed = dt.timedelta(seconds=(worker.heartbeat_freq or 2.0) * HEARTBEAT_EXPIRE_FACTOR)
    return now > worker.last_heartbeat_at + allowed


def _listed() -> QuerySet[WorkerRecord]:
    return WorkerRecord.objects.defer("stats", "conf", "registered").order_by(
        "-is_online", "hostname"
    )


def worker_rows(*, now: dt.datetime, limit: int | None = None) -> list[WorkerRow]:
    """Online workers first, then by hostname."""
    workers = _listed()
    if limit is not None:
        workers = workers[:limit]
    return [WorkerRow(worker=w, heartbeat_late=_is_late(w, now)) for w in workers]


def worker_counts() -> WorkerCounts:
    totals = WorkerRecord.objects.aggregate(
        online=Count("pk", filter=Q(is_online=True)),
        offline=Count("pk", filter=Q(is_online=False)),
        active=Sum("active", filter=Q(is_online=True)),
    )
    return WorkerCounts(
        online=totals["online"], offline=totals["offline"], active=totals["active"] or 0
    )


def _pretty_json(value: Any) -> str:
    if not value:
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def worker_detail(hostname: str, *, now: dt.datetime) -> WorkerDetail | None:
    worker = WorkerRecord.objects.filter(hostname=hostname).first()
    if worker is None:
        return None
    # STARTED rows are few (what runs now, plus any whose end was never seen), so the
    # planner answers this from the (state, -first_seen_at) index; the cap bounds it anyway.
    started = list(
        TaskRecord.objects.filter(state=states.STARTED, worker=hostname)
        .only(*TASK_LIST_FIELDS)
        .order_by("-first_seen_at")[: STARTED_CAP + 1]
    )
    recent = list(
        TaskRecord.objects.filter(worker=hostname)
        .only(*TASK_LIST_FIELDS)
        .order_by("-first_seen_at")[:RECENT_CAP]
    )
    return WorkerDetail(
        row=WorkerRow(worker=worker, heartbeat_late=_is_late(worker, now)),
        stats_json=_pretty_json(worker.stats),
        conf_json=_pretty_json(worker.conf),
        started=started[:STARTED_CAP],
        started_capped=len(started) > STARTED_CAP,
        recent=recent,
    )
