"""One task's story for the task page: the row, its timeline, its lineage.

Every lineage list reads at most LINEAGE_CAP rows through one of the partial indexes
(parent, group, root) and counts at most LINEAGE_COUNT_CAP; nothing scans the history.
"""

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import CharField, F, QuerySet, Value

from tasks_admin.models import DeadLetter, TaskEvent, TaskRecord
from tasks_admin.redaction import redact_repr, redacted_names
from tasks_admin.selectors.deadletters import deadletters_of_task
from tasks_admin.services.replay import RETRYABLE_STATES

TABLE = "tasks_admin_taskrecord"
LINEAGE_CAP = 50
LINEAGE_COUNT_CAP = 1_000
EVENT_CAP = 500

LINEAGE_COLUMNS = ("task_id", "name", "state", "first_seen_at")
# Timeline fields shown first, in this order; the rest follow alphabetically.
EVENT_FIELD_ORDER = (
    "name",
    "retries",
    "exception",
    "traceback",
    "result",
    "runtime",
    "signum",
    "terminated",
    "expired",
    "requeue",
    "args",
    "kwargs",
    "eta",
    "expires",
    "queue",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
    "group",
)
EVENT_FIELD_HIDDEN = frozenset({"pid", "utcoffset"})


@dataclass(frozen=True)
class TimelineEntry:
    type: str
    event_at: dt.datetime
    hostname: str
    # Seconds since the task's first event.
    offset: float
    fields: list[tuple[str, str]]


@dataclass
class Related:
    """Up to LINEAGE_CAP related tasks, and how many there are (capped)."""

    rows: list[TaskRecord]
    total: int = 0
    cap: int = LINEAGE_COUNT_CAP

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)

    @property
    def total_display(self) -> str:
        return f"{self.cap:,}+" if self.total > self.cap else f"{self.total:,}"


@dataclass
class Lineage:
    root_id: str
    root: TaskRecord | None
    parent_id: str
    parent: TaskRecord | None
    children: Related
    group: Related
    workflow: Related
    replay_of_id: str
    replay_of: TaskRecord | None
    replays: Related

    @property
    def empty(self) -> bool:
        return not (
            self.root_id
            or self.parent_id
            or self.children.rows
            or self.group.rows
            or self.workflow.rows
            or self.replay_of_id
            or self.replays.rows
        )


@dataclass
class TaskStory:
    task: TaskRecord
    timeline: list[TimelineEntry]
    timeline_capped: bool
    lineage: Lineage
    time_fields: list[tuple[str, dt.datetime | None]] = field(default_factory=list)
    # The argument reprs as shown (CONSOLE_REDACT_ARGS applied); the row keeps the real ones.
    args_shown: str = ""
    kwargs_shown: str = ""
    # Its dead letters (captured original messages), newest first; whether Retry applies.
    deadletters: list[DeadLetter] = field(default_factory=list)
    retryable: bool = False


TIME_FIELDS = (
    ("Sent", "sent_at"),
    ("Received", "received_at"),
    ("Started", "started_at"),
    ("Succeeded", "succeeded_at"),
    ("Failed", "failed_at"),
    ("Retried", "retried_at"),
    ("Revoked", "revoked_at"),
    ("Rejected", "rejected_at"),
    ("Lost", "lost_at"),
)


def task_story(task_id: str) -> TaskStory | None:
    """Everything the task page shows, or None for an id the console never saw."""
    task = (
        TaskRecord.objects.filter(pk=task_id)
        .defer("event_keys", "last_event_ts", "last_event_clock")
        .first()
    )
    if task is None:
        return None
    timeline, capped = _timeline(task_id)
    names = redacted_names()
    return TaskStory(
        task=task,
        timeline=timeline,
        timeline_capped=capped,
        lineage=_lineage(task),
        time_fields=[(label, getattr(task, column)) for label, column in TIME_FIELDS],
        args_shown=redact_repr(task.args, names),
        kwargs_shown=redact_repr(task.kwargs, names),
        deadletters=deadletters_of_task(task_id),
        retryable=task.state in RETRYABLE_STATES,
    )


def _timeline(task_id: str) -> tuple[list[TimelineEntry], bool]:
    # Raw SQL: the log's ``fields`` column is json (not jsonb), which psycopg hands back
    # already decoded, and Django's JSONField would decode it a second time.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT type, event_at, hostname, fields::text FROM {TaskEvent._meta.db_table} "
            "WHERE task_id = %s ORDER BY event_at, clock, id LIMIT %s",
            [task_id, EVENT_CAP + 1],
        )
        events = cursor.fetchall()
    capped = len(events) > EVENT_CAP
    events = events[:EVENT_CAP]
    start = events[0][1] if events else None
    names = redacted_names()
    entries = []
    for type_, event_at, hostname, fields_text in events:
        fields = json.loads(fields_text) if fields_text else {}
        if not isinstance(fields, dict):
            fields = {}
        keys = [k for k in EVENT_FIELD_ORDER if k in fields]
        keys += sorted(k for k in fields if k not in EVENT_FIELD_ORDER)
        shown = [
            (key, _shown(key, fields[key], names))
            for key in keys
            if key not in EVENT_FIELD_HIDDEN and fields[key] not in (None, "")
        ]
        offset = (event_at - start).total_seconds() if start else 0.0
        entries.append(TimelineEntry(type_, event_at, hostname, offset, shown))
    return entries, capped


def _shown(key: str, value: Any, names: frozenset[str]) -> str:
    text = _field_text(value)
    return redact_repr(text, names) if key in ("args", "kwargs") else text


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _lineage(task: TaskRecord) -> Lineage:
    tasks = TaskRecord.objects.exclude(pk=task.task_id)
    # A retry is published by the task itself: Celery records the task as its own parent.
    parent_id = task.parent_id if task.parent_id != task.task_id else ""
    root_id = task.root_id if task.root_id != task.task_id else ""
    # The conditions repeat the partial indexes' predicates so that PostgreSQL uses them.
    sets = {
        "children": tasks.filter(parent_id=task.task_id).exclude(parent_id=""),
        "workflow": tasks.filter(root_id=root_id or task.task_id)
        .exclude(root_id="")
        .exclude(root_id=F("task_id")),
        "replays": tasks.filter(replay_of=task.task_id).exclude(replay_of=""),
    }
    if task.group_id:
        sets["group"] = tasks.filter(group_id=task.group_id).exclude(group_id="")
    named = [task_id for task_id in (root_id, parent_id, task.replay_of) if task_id]
    found = _first_rows_of(
        {**sets, "named": TaskRecord.objects.filter(pk__in=named)} if named else sets
    )
    related = {kind: _related(found[kind], queryset) for kind, queryset in sets.items()}
    by_id = {row.task_id: row for row in found["named"]}
    return Lineage(
        root_id=root_id,
        root=by_id.get(root_id),
        parent_id=parent_id,
        parent=by_id.get(parent_id),
        children=related["children"],
        group=related.get("group", Related(rows=[], total=0, cap=LINEAGE_COUNT_CAP)),
        workflow=related["workflow"],
        replay_of_id=task.replay_of,
        replay_of=by_id.get(task.replay_of),
        replays=related["replays"],
    )


def _first_rows_of(sets: dict[str, QuerySet[TaskRecord]]) -> dict[str, list[TaskRecord]]:
    """The first LINEAGE_CAP + 1 rows of each set, in one round trip (UNION ALL).

    No ORDER BY in SQL: a big workflow would be sorted whole for 50 rows. The partial
    indexes yield rows roughly in insertion order anyway.
    """
    parts = [
        queryset.only(*LINEAGE_COLUMNS)
        .annotate(lineage_set=Value(kind, output_field=CharField()))
        .order_by()[: LINEAGE_CAP + 1]
        for kind, queryset in sets.items()
    ]
    found: dict[str, list[TaskRecord]] = {kind: [] for kind in sets}
    found.setdefault("named", [])
    for row in parts[0].union(*parts[1:], all=True):
        found[row.lineage_set].append(row)
    return found


def _related(rows: list[TaskRecord], queryset: QuerySet[TaskRecord]) -> Related:
    """Up to LINEAGE_CAP of ``rows``, oldest first, and how many ``queryset`` holds (capped)."""
    total = len(rows)
    if total > LINEAGE_CAP:
        rows = rows[:LINEAGE_CAP]
        total = queryset.values("pk")[: LINEAGE_COUNT_CAP + 1].count()
    rows.sort(key=lambda r: (r.first_seen_at, r.task_id))
    return Related(rows=rows, total=total, cap=LINEAGE_COUNT_CAP)
