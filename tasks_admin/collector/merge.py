"""Events to task rows: Celery's merge rules, made independent of arrival order.

Events arrive late, twice and out of order, and a retry reuses the task id. Celery's own
``State`` folds events in arrival order, so two collectors that saw the same events in a
different order could disagree. Here a task's row is always the fold of its *distinct*
events (deduplicated by a stable key) in a *canonical* order (event time, then Lamport
clock, then lifecycle rank), using Celery's rules for each step:

- a new state replaces the current one unless it logically happened before it
  (``celery.states.precedence``); a happened-before RECEIVED only contributes its
  ``merge_rules`` fields, so a late STARTED never overwrites SUCCESS;
- RETRY always applies, and anything applies after RETRY.

Two deliberate additions, where Celery's ``State`` leaves a task looking alive forever:
``task-rejected`` without requeue marks the task REJECTED, and the collector's own
``task-lost`` (STARTED on a worker that went offline) marks it LOST; anything that happens
after LOST applies, as after RETRY.

The writer folds new events onto the stored row when they all sort after the row's last
event, and otherwise refolds the task from its full event log, so the result depends only
on the set of events: replaying a batch, or receiving it in any order, changes nothing.
"""

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from typing import Any

from celery import states

LOST = "LOST"

EVENT_STATE = {
    "task-sent": states.PENDING,
    "task-received": states.RECEIVED,
    "task-started": states.STARTED,
    "task-succeeded": states.SUCCESS,
    "task-failed": states.FAILURE,
    "task-retried": states.RETRY,
    "task-revoked": states.REVOKED,
    "task-rejected": states.REJECTED,
    "task-lost": LOST,
}

# Ties in event time are broken by where the event sits in a task's life.
TYPE_RANK = {
    "task-sent": 0,
    "task-received": 1,
    "task-started": 2,
    "task-retried": 3,
    "task-rejected": 4,
    "task-revoked": 5,
    "task-failed": 6,
    "task-succeeded": 7,
    "task-lost": 8,
}
UNKNOWN_RANK = 9

# Per-state time columns. received/sent keep the first; the rest the latest (per attempt).
TIME_COLUMN = {
    "task-sent": "sent_at",
    "task-received": "received_at",
    "task-started": "started_at",
    "task-succeeded": "succeeded_at",
    "task-failed": "failed_at",
    "task-retried": "retried_at",
    "task-revoked": "revoked_at",
    "task-rejected": "rejected_at",
    "task-lost": "lost_at",
}
KEEP_FIRST = frozenset({"sent_at", "received_at"})

# Celery's Task.merge_rules: what a happened-before RECEIVED may still contribute.
RECEIVED_MERGE_FIELDS = frozenset(
    {"name", "args", "kwargs", "parent_id", "root_id", "retries", "eta", "expires"}
)
# Events emitted by the worker running the task (task-sent's hostname is the publisher's).
WORKER_SIDE = frozenset(
    {
        "task-received",
        "task-started",
        "task-succeeded",
        "task-failed",
        "task-retried",
        "task-revoked",
        "task-rejected",
    }
)
# Fields of the common envelope that become columns of the event log, not row fields.
ENVELOPE = frozenset({"type", "uuid", "timestamp", "hostname", "clock", "local_received"})

TEXT_COLUMNS = ("name", "args", "kwargs", "result", "exception", "traceback")
ID_COLUMNS = ("root_id", "parent_id", "group_id", "queue", "exchange", "routing_key")

# Every column of TaskRecord the writer stores, in COPY order.
COLUMNS = (
    "task_id",
    "name",
    "state",
    "first_seen_at",
    "last_event_at",
    "sent_at",
    "received_at",
    "started_at",
    "succeeded_at",
    "failed_at",
    "retried_at",
    "revoked_at",
    "rejected_at",
    "lost_at",
    "runtime",
    "retries",
    "worker",
    "queue",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
    "group_id",
    "eta",
    "expires",
    "args",
    "kwargs",
    "result",
    "exception",
    "exception_type",
    "traceback",
    "revoke_signal",
    "reconciled",
    "replay_of",
    "event_keys",
    "last_event_ts",
    "last_event_clock",
    "updated_at",
)

_EXCEPTION_TYPE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*[(:]")


def new_row(task_id: str) -> dict[str, Any]:
    """The row of a task no event has touched yet (Celery's PENDING)."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        task_id=task_id,
        state=states.PENDING,
        retries=0,
        reconciled=False,
        event_keys=[],
        last_event_ts=0.0,
        last_event_clock=0,
    )
    for column in (*TEXT_COLUMNS, *ID_COLUMNS, "worker", "exception_type", "revoke_signal"):
        row[column] = ""
    row["replay_of"] = ""
    return row


def event_key(event: dict[str, Any]) -> int:
    """A stable 64-bit identity: the same event delivered twice gets the same key."""
    identity = "\x1f".join(
        (
            str(event.get("uuid", "")),
            str(event.get("type", "")),
            str(event.get("hostname", "")),
            str(event.get("clock", "")),
            f"{float(event.get('timestamp') or 0.0):.6f}",
            str(event.get("source", "")),
        )
    )
    digest = hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def sort_key(event: dict[str, Any]) -> tuple[float, int, int, int]:
    return (
        event["timestamp"],
        event.get("clock") or 0,
        TYPE_RANK.get(event["type"], UNKNOWN_RANK),
        event["_key"],
    )


def wins(new: str, current: str) -> bool:
    """Celery's rule: does ``new`` replace ``current`` (rather than happen before it)?"""
    if new == states.RETRY or current in (states.RETRY, LOST):
        return True
    return states.precedence(new) <= states.precedence(current)


def utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def exception_type(exception: str) -> str:
    match = _EXCEPTION_TYPE.match(exception or "")
    return match.group(1)[:255] if match else ""


def _iso(value: Any) -> dt.datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _field_updates(event: dict[str, Any]) -> dict[str, Any]:
    """The row fields an event carries, converted to column values."""
    updates: dict[str, Any] = {}
    for column in ("name", "args", "kwargs", "root_id", "parent_id", "queue", "exchange"):
        value = event.get(column)
        if value is not None:
            updates[column] = str(value)
    if event.get("routing_key") is not None:
        updates["routing_key"] = str(event["routing_key"])
    if event.get("group") is not None:
        updates["group_id"] = str(event["group"])
    if "retries" in event:
        with contextlib.suppress(TypeError, ValueError):
            updates["retries"] = int(event["retries"] or 0)
    for column in ("eta", "expires"):
        if column in event:
            updates[column] = _iso(event[column])
    type_ = event["type"]
    if type_ == "task-succeeded":
        updates["result"] = "" if event.get("result") is None else str(event["result"])
        with contextlib.suppress(KeyError, TypeError, ValueError):
            updates["runtime"] = float(event["runtime"])
    elif type_ in ("task-failed", "task-retried"):
        exception = "" if event.get("exception") is None else str(event["exception"])
        updates["exception"] = exception
        updates["exception_type"] = exception_type(exception)
        updates["traceback"] = "" if event.get("traceback") is None else str(event["traceback"])
    elif type_ == "task-revoked":
        signum = event.get("signum")
        updates["revoke_signal"] = "" if signum in (None, "", False) else str(signum)[:32]
    if type_ in WORKER_SIDE and event.get("hostname"):
        updates["worker"] = str(event["hostname"])
    return updates


def apply_event(row: dict[str, Any], event: dict[str, Any]) -> None:
    """Fold one event onto ``row`` in place (Celery's ``Task.event``, plus REJECTED/LOST).

    ``event`` must already be normalised (float ``timestamp``, ``_key`` set).
    """
    type_ = event["type"]
    when = utc(event["timestamp"])
    row["event_keys"].append(event["_key"])
    row["last_event_ts"] = event["timestamp"]
    row["last_event_clock"] = event.get("clock") or 0
    if row["first_seen_at"] is None or when < row["first_seen_at"]:
        row["first_seen_at"] = when
    if row["last_event_at"] is None or when > row["last_event_at"]:
        row["last_event_at"] = when

    state = EVENT_STATE.get(type_)
    if state is None:
        return  # custom task-* events go to the timeline only
    column = TIME_COLUMN[type_]
    if column not in KEEP_FIRST or row[column] is None:
        row[column] = when

    current = row["state"]
    updates = _field_updates(event)
    if type_ == "task-lost":
        applies = current == states.STARTED
    elif type_ == "task-rejected" and not event.get("requeue"):
        applies = current in (states.PENDING, states.RECEIVED, states.STARTED, states.RETRY)
    else:
        applies = wins(state, current)
    if applies:
        row["state"] = state
        row["reconciled"] = event.get("source") == "backend"
    elif state == states.RECEIVED:
        updates = {k: v for k, v in updates.items() if k in RECEIVED_MERGE_FIELDS}
    row.update(updates)


def fold(row: dict[str, Any], events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Apply normalised events in canonical order, skipping ones already folded in."""
    seen = set(row["event_keys"])
    for event in sorted(events, key=sort_key):
        if event["_key"] in seen:
            continue
        seen.add(event["_key"])
        apply_event(row, event)
    return row


def needs_refold(row: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    """True when some new event sorts at or before the last one folded into ``row``."""
    if not row["event_keys"]:
        return False
    last = (row["last_event_ts"], row["last_event_clock"])
    seen = set(row["event_keys"])
    return any(
        (e["timestamp"], e.get("clock") or 0) <= last for e in events if e["_key"] not in seen
    )
