"""A task as live pushes carry it (plain values), and the task list's filters in Python.

The collector sends each changed task's facts once per tick; every open task list decides
with ``matches`` and ``is_newer`` whether the task is a row it shows or one of its
"N new tasks", with no database query per list.
"""

import datetime as dt
from typing import Any

from tasks_admin.models import TaskRecord
from tasks_admin.redaction import redacted_names
from tasks_admin.selectors.tasks import TEXT_COLUMNS, Cursor, TaskFilters, TaskRow

# Text search in live updates reads this much of each column (Celery cuts args and kwargs
# reprs at 1024 characters anyway; results and exceptions can be longer).
FACT_TEXT_CHARS = 4096


def task_facts(task: TaskRecord) -> dict[str, Any]:
    """What ``matches`` needs of a task, as plain values (they travel in live messages).

    The text is what text search reads, lower-cased and cut at FACT_TEXT_CHARS per column.
    """
    text = "\x1f".join((getattr(task, c) or "")[:FACT_TEXT_CHARS] for c in TEXT_COLUMNS)
    started_at = task.started_at.timestamp() if task.started_at is not None else None
    return {
        "task_id": task.task_id,
        "state": task.state,
        "name": task.name,
        "worker": task.worker,
        "queue": task.queue,
        "first_seen_at": task.first_seen_at.timestamp(),
        "has_started": started_at is not None,
        "has_runtime": task.runtime is not None,
        "text": text.lower(),
        # The rest of a list row (task_row.html), for the web process to render it.
        "started_at": started_at,
        "runtime": task.runtime,
        "retries": task.retries,
        "args": task.args,
        "kwargs": task.kwargs,
    }


def row_from_facts(facts: dict[str, Any]) -> TaskRow:
    """The task list's row of a task, rebuilt from ``task_facts``."""
    started_at = facts["started_at"]
    return TaskRow.shown(
        facts["task_id"],
        facts["name"],
        facts["state"],
        dt.datetime.fromtimestamp(facts["first_seen_at"], dt.UTC),
        dt.datetime.fromtimestamp(started_at, dt.UTC) if started_at else None,
        facts["runtime"],
        facts["retries"],
        facts["worker"],
        facts["queue"],
        facts["args"],
        facts["kwargs"],
        names=redacted_names(),
    )


def matches(filters: TaskFilters, mode: str, facts: dict[str, Any]) -> bool:
    """Whether a task (``task_facts``) belongs to the list ``filters`` (in ``mode``, see
    search_mode) shows: the SQL conditions above, evaluated in Python."""
    if mode == "id":
        return facts["task_id"] == filters.search
    if filters.states and facts["state"] not in filters.states:
        return False
    for column in ("name", "worker", "queue"):
        wanted = getattr(filters, column)
        if wanted and facts[column] != wanted:
            return False
    seen = facts["first_seen_at"]
    if filters.since is not None and seen < filters.since.timestamp():
        return False
    if filters.until is not None and seen > filters.until.timestamp():
        return False
    if mode == "prefix" and not facts["task_id"].startswith(filters.search):
        return False
    if mode == "text" and filters.search.replace("\x1f", "").lower() not in facts["text"]:
        return False
    if filters.sort == "started" and not facts["has_started"]:
        return False
    return not (filters.sort == "runtime" and not facts["has_runtime"])


def is_newer(facts: dict[str, Any], cursor: Cursor) -> bool:
    """Received after ``cursor`` in the list's order (later, or as late with a smaller id)."""
    top = cursor.value.timestamp() if isinstance(cursor.value, dt.datetime) else cursor.value
    seen = facts["first_seen_at"]
    return seen > top or (seen == top and facts["task_id"] < cursor.task_id)
