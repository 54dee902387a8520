"""Per-minute rollups per task name, kept in step with the task rows they summarise.

A row *contributes* to the rollups according to its current state (received in the minute
it was received, succeeded with its runtime in the minute it succeeded, ...). Each batch
adds contributions(new row) - contributions(old row), so rollups always equal the sum
over tasks, however often or in whatever order events arrive.

The same deltas, summed per name, go to the running totals (TaskNameTotal) that /metrics
reads, in the same statement batch and transaction.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from celery import states

from tasks_admin import histogram

COUNTS = ("received", "started", "succeeded", "failed", "retried", "revoked", "sent", "rejected")
FINAL_COUNT = {
    states.SUCCESS: ("succeeded", "succeeded_at"),
    states.FAILURE: ("failed", "failed_at"),
    states.REVOKED: ("revoked", "revoked_at"),
}
# Every column a delta adds to, in the order of Delta.values().
COLUMNS = (
    *COUNTS,
    "runtime_count",
    "runtime_sum",
    "runtime_hist",
    "queue_wait_count",
    "queue_wait_sum",
    "queue_wait_hist",
)
ROLLUP_TABLE = "tasks_admin_taskminuterollup"
TOTAL_TABLE = "tasks_admin_tasknametotal"
# ON CONFLICT ... DO UPDATE SET for a table aliased ``r``: add the new row to the old one.
ADD_EXCLUDED = ", ".join(
    f"{c} = console_array_add(r.{c}, EXCLUDED.{c})"
    if c.endswith("_hist")
    else f"{c} = r.{c} + EXCLUDED.{c}"
    for c in COLUMNS
)
_PLACEHOLDERS = ", ".join("%s::bigint[]" if c.endswith("_hist") else "%s" for c in COLUMNS)
ROLLUPS_UPSERT = (
    f"INSERT INTO {ROLLUP_TABLE} AS r (name, minute, {', '.join(COLUMNS)}) "
    f"VALUES (%s, %s, {_PLACEHOLDERS}) ON CONFLICT (name, minute) DO UPDATE SET {ADD_EXCLUDED}"
)
# Parameters: (name, *Delta.values()).
TOTALS_UPSERT = (
    f"INSERT INTO {TOTAL_TABLE} AS r (name, {', '.join(COLUMNS)}) "
    f"VALUES (%s, {_PLACEHOLDERS}) ON CONFLICT (name) DO UPDATE SET {ADD_EXCLUDED}"
)

Key = tuple[str, dt.datetime]


class Delta:
    __slots__ = (
        "counts",
        "hist",
        "runtime_count",
        "runtime_sum",
        "wait_count",
        "wait_hist",
        "wait_sum",
    )

    def __init__(self) -> None:
        self.counts = dict.fromkeys(COUNTS, 0)
        self.runtime_count = 0
        self.runtime_sum = 0.0
        self.hist: list[int] | None = None
        self.wait_count = 0
        self.wait_sum = 0.0
        self.wait_hist: list[int] | None = None

    def is_zero(self) -> bool:
        return (
            not any(self.counts.values())
            and self.runtime_count == 0
            and (self.hist is None or not any(self.hist))
            and self.wait_count == 0
            and (self.wait_hist is None or not any(self.wait_hist))
        )

    def add(self, other: "Delta") -> None:
        for key, value in other.counts.items():
            self.counts[key] += value
        self.runtime_count += other.runtime_count
        self.runtime_sum += other.runtime_sum
        if other.hist is not None:
            self.hist = histogram.add(self.hist or histogram.empty(), other.hist)
        self.wait_count += other.wait_count
        self.wait_sum += other.wait_sum
        if other.wait_hist is not None:
            self.wait_hist = histogram.add(self.wait_hist or histogram.empty(), other.wait_hist)

    def values(self) -> tuple[Any, ...]:
        return (
            *(self.counts[c] for c in COUNTS),
            self.runtime_count,
            self.runtime_sum,
            self.hist or [],
            self.wait_count,
            self.wait_sum,
            self.wait_hist or [],
        )


def minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def queue_wait(row: dict[str, Any]) -> float | None:
    """Seconds from publish (task-sent) to start, for the tasks that have a queue wait.

    Publish to start, as celery-exporter's ``celery_task_queue_wait_time`` measures it:
    ``received_at`` is when a worker prefetched the message, so started - received would
    leave out the time in the broker queue, which is what grows in a backlog. So it needs
    task-sent events (``task_send_sent_event``). Left out, as celery-exporter does: tasks
    with an ETA or countdown (the delay was asked for) and retried tasks (the row keeps the
    first send but the latest start, so the backoff would count). A task counts once it has
    finished, so its contribution never changes afterwards and the exported histogram only
    ever grows, as Prometheus requires. Negative waits (clock skew between the publisher
    and the worker) count as 0.
    """
    if row["state"] not in FINAL_COUNT or row["retries"] or row["eta"] is not None:
        return None
    if row["sent_at"] is None or row["started_at"] is None:
        return None
    return max((row["started_at"] - row["sent_at"]).total_seconds(), 0.0)


def _contribute(deltas: dict[Key, Delta], row: dict[str, Any], sign: int) -> None:
    name = row["name"] or ""
    if row["sent_at"] is not None:
        deltas[(name, minute(row["sent_at"]))].counts["sent"] += sign
    if row["received_at"] is not None:
        deltas[(name, minute(row["received_at"]))].counts["received"] += sign
    if row["started_at"] is not None:
        deltas[(name, minute(row["started_at"]))].counts["started"] += sign
    if row["retries"] and row["retried_at"] is not None:
        deltas[(name, minute(row["retried_at"]))].counts["retried"] += sign * row["retries"]
    # Tasks with a task-rejected, requeued or not (celery-exporter counts both), rather than
    # tasks in REJECTED: a requeued task never shows REJECTED, and a later event can move a
    # task out of REJECTED, which would lower the counter. rejected_at is never unset.
    if row["rejected_at"] is not None:
        deltas[(name, minute(row["rejected_at"]))].counts["rejected"] += sign
    final = FINAL_COUNT.get(row["state"])
    if final and row[final[1]] is not None:
        bucket = deltas[(name, minute(row[final[1]]))]
        bucket.counts[final[0]] += sign
        if row["state"] == states.SUCCESS and row["runtime"] is not None:
            bucket.runtime_count += sign
            bucket.runtime_sum += sign * row["runtime"]
            if bucket.hist is None:
                bucket.hist = histogram.empty()
            bucket.hist[histogram.bucket_of(row["runtime"])] += sign
    wait = queue_wait(row)
    if wait is not None:
        bucket = deltas[(name, minute(row["started_at"]))]
        bucket.wait_count += sign
        bucket.wait_sum += sign * wait
        if bucket.wait_hist is None:
            bucket.wait_hist = histogram.empty()
        bucket.wait_hist[histogram.bucket_of(wait)] += sign


def delta(changed: Iterable[tuple[dict[str, Any] | None, dict[str, Any]]]) -> dict[Key, Delta]:
    deltas: dict[Key, Delta] = defaultdict(Delta)
    for old, new in changed:
        if old is not None:
            _contribute(deltas, old, -1)
        _contribute(deltas, new, +1)
    return {key: d for key, d in deltas.items() if not d.is_zero()}


def per_name(deltas: dict[Key, Delta]) -> dict[str, Delta]:
    totals: dict[str, Delta] = defaultdict(Delta)
    for (name, _), d in deltas.items():
        totals[name].add(d)
    return totals


def apply(cursor: Any, deltas: dict[Key, Delta]) -> None:
    """Add the deltas to the rollups and their per-name sums to the running totals.

    Rows are locked in sorted order (rollups by (name, minute), then totals by name), so
    writers sharing names wait for each other but never deadlock.
    """
    if not deltas:
        return
    cursor.executemany(
        ROLLUPS_UPSERT, [(name, at, *d.values()) for (name, at), d in sorted(deltas.items())]
    )
    cursor.executemany(
        TOTALS_UPSERT, [(name, *d.values()) for name, d in sorted(per_name(deltas).items())]
    )
