"""Per-minute rollups per task name, kept in step with the task rows they summarise.

A row *contributes* to the rollups according to its current state (received in the minute
it was received, succeeded with its runtime in the minute it succeeded, ...). Each batch
adds contributions(new row) - contributions(old row), so rollups always equal the sum
over tasks, however often or in whatever order events arrive.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from celery import states

from tasks_admin import histogram

COUNTS = ("received", "started", "succeeded", "failed", "retried", "revoked")
FINAL_COUNT = {
    states.SUCCESS: ("succeeded", "succeeded_at"),
    states.FAILURE: ("failed", "failed_at"),
    states.REVOKED: ("revoked", "revoked_at"),
}

Key = tuple[str, dt.datetime]


class Delta:
    __slots__ = ("counts", "hist", "runtime_count", "runtime_sum")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(COUNTS, 0)
        self.runtime_count = 0
        self.runtime_sum = 0.0
        self.hist: list[int] | None = None

    def is_zero(self) -> bool:
        return (
            not any(self.counts.values())
            and self.runtime_count == 0
            and (self.hist is None or not any(self.hist))
        )


def minute(at: dt.datetime) -> dt.datetime:
    return at.replace(second=0, microsecond=0)


def _contribute(deltas: dict[Key, Delta], row: dict[str, Any], sign: int) -> None:
    name = row["name"] or ""
    if row["received_at"] is not None:
        deltas[(name, minute(row["received_at"]))].counts["received"] += sign
    if row["started_at"] is not None:
        deltas[(name, minute(row["started_at"]))].counts["started"] += sign
    if row["retries"] and row["retried_at"] is not None:
        deltas[(name, minute(row["retried_at"]))].counts["retried"] += sign * row["retries"]
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


def delta(changed: Iterable[tuple[dict[str, Any] | None, dict[str, Any]]]) -> dict[Key, Delta]:
    deltas: dict[Key, Delta] = defaultdict(Delta)
    for old, new in changed:
        if old is not None:
            _contribute(deltas, old, -1)
        _contribute(deltas, new, +1)
    return {key: d for key, d in deltas.items() if not d.is_zero()}


def apply(cursor: Any, deltas: dict[Key, Delta]) -> None:
    if not deltas:
        return
    rows = [
        (
            name,
            at,
            *(d.counts[c] for c in COUNTS),
            d.runtime_count,
            d.runtime_sum,
            d.hist or [],
        )
        for (name, at), d in sorted(deltas.items())
    ]
    counts = ", ".join(COUNTS)
    added = ", ".join(f"{c} = r.{c} + EXCLUDED.{c}" for c in (*COUNTS, "runtime_count"))
    cursor.executemany(
        f"INSERT INTO tasks_admin_taskminuterollup AS r (name, minute, {counts}, "
        "runtime_count, runtime_sum, runtime_hist) "
        f"VALUES (%s, %s, {', '.join(['%s'] * len(COUNTS))}, %s, %s, %s::bigint[]) "
        f"ON CONFLICT (name, minute) DO UPDATE SET {added}, "
        "runtime_sum = r.runtime_sum + EXCLUDED.runtime_sum, "
        "runtime_hist = console_array_add(r.runtime_hist, EXCLUDED.runtime_hist)",
        rows,
    )
