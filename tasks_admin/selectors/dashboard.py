"""The dashboard's numbers: current tables (workers, queues) and per-minute rollups only.

Nothing here reads task history, so the page costs the same with ten tasks or ten million:
every query is bounded by the number of workers, queues, task names and minutes in a day.
"""

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import Sum

from tasks_admin import histogram
from tasks_admin.models import TaskMinuteRollup
from tasks_admin.selectors import queues as queue_selectors
from tasks_admin.selectors import workers as worker_selectors

HOUR_MINUTES = 60
DAY_MINUTES = 24 * 60
DAY_BUCKET_MINUTES = 15
# Tables on the dashboard are a glance; the workers and queues pages list everything.
TABLE_LIMIT = 50
RUNTIME_NAMES_LIMIT = 50
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


@dataclass(frozen=True)
class Windows:
    """The last hour and day as whole minutes, the current (partial) minute included."""

    now: dt.datetime
    current_minute: dt.datetime
    hour_start: dt.datetime
    day_start: dt.datetime


def windows(now: dt.datetime) -> Windows:
    current = now.replace(second=0, microsecond=0)
    return Windows(
        now=now,
        current_minute=current,
        hour_start=current - dt.timedelta(minutes=HOUR_MINUTES - 1),
        day_start=current - dt.timedelta(minutes=DAY_MINUTES - 1),
    )


@dataclass
class Bucket:
    start: dt.datetime
    received: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Failed as a share of finished tasks, in percent; None when none finished."""
        return 100.0 * self.failed / self.done if self.done else None

    @property
    def label(self) -> str:
        # Plain text, not the time partial: the tables hold 156 rows and render on every load.
        return self.start.strftime("%Y-%m-%d %H:%M")


@dataclass
class Series:
    """Equal buckets covering a window, oldest first, for a chart and its table."""

    minutes: int  # width of one bucket
    buckets: list[Bucket]

    @classmethod
    def empty(cls, *, start: dt.datetime, count: int, minutes: int) -> "Series":
        step = dt.timedelta(minutes=minutes)
        return cls(minutes=minutes, buckets=[Bucket(start=start + i * step) for i in range(count)])

    def add(self, offset: int, received: int, succeeded: int, failed: int) -> None:
        """Count a minute ``offset`` minutes after the window's start into its bucket."""
        if offset < 0:
            return
        # A worker clock ahead of ours puts a few minutes in the future: count them now.
        bucket = self.buckets[min(offset // self.minutes, len(self.buckets) - 1)]
        bucket.received += received
        bucket.succeeded += succeeded
        bucket.failed += failed

    @property
    def totals(self) -> Bucket:
        total = Bucket(start=self.buckets[0].start)
        for b in self.buckets:
            total.received += b.received
            total.succeeded += b.succeeded
            total.failed += b.failed
        return total

    def chart_data(self) -> dict[str, Any]:
        """Numbers only (rendered with json_script): uPlot wants x as unix seconds."""
        return {
            "step": self.minutes * 60,
            "t": [int(b.start.timestamp()) for b in self.buckets],
            "succeeded": [b.succeeded for b in self.buckets],
            "failed": [b.failed for b in self.buckets],
            "failure_rate": [
                None if b.failure_rate is None else round(b.failure_rate, 2) for b in self.buckets
            ],
        }


# Minutes since the day's start, so 1,440 rows come back as small integers.
THROUGHPUT_SQL = """
SELECT (extract(epoch FROM minute - %(start)s) / 60)::int,
       sum(received)::bigint, sum(succeeded)::bigint, sum(failed)::bigint
FROM tasks_admin_taskminuterollup
WHERE minute >= %(start)s
GROUP BY 1
"""


def throughput(w: Windows) -> tuple[Series, Series]:
    """Per-minute series over the last hour and 15-minute buckets over the day: one query."""
    hour = Series.empty(start=w.hour_start, count=HOUR_MINUTES, minutes=1)
    day = Series.empty(
        start=w.day_start, count=DAY_MINUTES // DAY_BUCKET_MINUTES, minutes=DAY_BUCKET_MINUTES
    )
    hour_offset = DAY_MINUTES - HOUR_MINUTES
    with connection.cursor() as cursor:
        cursor.execute(THROUGHPUT_SQL, {"start": w.day_start})
        for offset, received, succeeded, failed in cursor.fetchall():
            day.add(offset, received, succeeded, failed)
            hour.add(offset - hour_offset, received, succeeded, failed)
    return hour, day


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class RuntimeStats:
    succeeded: int = 0
    failed: int = 0
    hist: list[int] = field(default_factory=histogram.empty)

    @property
    def percentiles(self) -> list[str]:
        """p50, p95, p99 as text; approximate (histogram bucket midpoints, about 12 %)."""
        return [seconds_text(histogram.percentile(self.hist, q)) for _, q in PERCENTILES]


@dataclass
class TaskRuntimes:
    name: str
    hour: RuntimeStats = field(default_factory=RuntimeStats)
    day: RuntimeStats = field(default_factory=RuntimeStats)

    @property
    def windows(self) -> tuple[RuntimeStats, RuntimeStats]:
        return (self.hour, self.day)


# Whole hours of the day window are summed once and cached (see runtimes()).
HOUR_CACHE_SECONDS = 25 * 3600
HOUR_CACHE_PREFIX = "console:runtime-hour:v1"
_HIST_SUMS = ", ".join(f"sum(runtime_hist[{i + 1}])::bigint" for i in range(histogram.SIZE))
# The whole UTC hour of a minute, whatever the session's time zone.
_HOUR = "date_bin('1 hour', minute, TIMESTAMPTZ '2000-01-01 00:00+00')"

# Minutes that no cached hour covers: the window's partial first and last hours, and the
# whole last hour (its own percentiles). in_cache says whether a cached hour also holds it.
LIVE_SQL = f"""
SELECT name, minute >= %(hour_start)s AS in_hour,
       minute >= %(cached_from)s AND minute < %(cached_to)s AS in_cache,
       sum(succeeded)::bigint, sum(failed)::bigint, {_HIST_SUMS}
FROM tasks_admin_taskminuterollup
WHERE (minute >= %(day_start)s AND minute < %(cached_from)s) OR minute >= %(live_from)s
GROUP BY 1, 2, 3
"""
# What identifies an hour's contents, per name: cheap sums, no histogram subscripts. Any
# change to an hour's rollups (a late event, a refold) changes one of them.
FINGERPRINT_SQL = f"""
SELECT name, {_HOUR}, count(*), sum(succeeded)::bigint, sum(failed)::bigint,
       sum(runtime_count)::bigint, sum(runtime_sum)
FROM tasks_admin_taskminuterollup
WHERE minute >= %(cached_from)s AND minute < %(cached_to)s
GROUP BY 1, 2
"""
HOUR_HIST_SQL = f"""
SELECT name, {_HOUR}, {_HIST_SUMS}
FROM tasks_admin_taskminuterollup
WHERE minute >= %(start)s AND minute < %(end)s
GROUP BY 1, 2
"""


def _hour_key(hour: int, fingerprint: list[tuple[Any, ...]]) -> str:
    digest = hashlib.blake2b(repr((hour, sorted(fingerprint))).encode(), digest_size=16)
    return f"{HOUR_CACHE_PREFIX}:{hour}:{digest.hexdigest()}"


def _cached_hours(start: dt.datetime, end: dt.datetime) -> list[tuple[str, int, int, list[int]]]:
    """(name, succeeded, failed, histogram) per name and whole hour in [start, end).

    Summing 84 histogram buckets over a day of minutes per name is most of the dashboard's
    cost; a whole hour is summed once and cached (one entry per hour) under a fingerprint
    of its rows, so a late change to an old minute is seen at once, and a read costs a
    cheap grouped scan without histogram subscripts.
    """
    if start >= end:
        return []
    params = {"cached_from": start, "cached_to": end}
    by_hour: dict[int, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(FINGERPRINT_SQL, params)
        for name, hour, *fingerprint in cursor.fetchall():
            by_hour.setdefault(_hour_number(hour), []).append((name, *fingerprint))
    keys = {_hour_key(hour, rows): hour for hour, rows in by_hour.items()}
    found = cache.get_many(list(keys))
    missing = sorted(hour for key, hour in keys.items() if key not in found)
    if missing:
        sums: dict[int, dict[str, list[int]]] = {hour: {} for hour in missing}
        with connection.cursor() as cursor:
            cursor.execute(
                HOUR_HIST_SQL,
                {
                    "start": max(start, _hour_start(missing[0])),
                    "end": min(end, _hour_start(missing[-1] + 1)),
                },
            )
            for name, hour, *buckets in cursor.fetchall():
                if _hour_number(hour) in sums:
                    sums[_hour_number(hour)][name] = [int(b or 0) for b in buckets]
        fresh = {key: sums[hour] for key, hour in keys.items() if hour in sums}
        cache.set_many(fresh, HOUR_CACHE_SECONDS)
        found.update(fresh)
    out = []
    for key, hour in keys.items():
        hists = found[key]
        for name, _, succeeded, failed, *_ in by_hour[hour]:
            if name in hists:
                out.append((name, int(succeeded or 0), int(failed or 0), hists[name]))
    return out


def _hour_number(at: dt.datetime) -> int:
    return int(at.timestamp()) // 3600


def _hour_start(hour: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(hour * 3600, dt.UTC)


def runtimes(w: Windows) -> list[TaskRuntimes]:
    """Counts and summed runtime histograms per task name, last hour and day.

    The day is its whole hours (cached per name and hour, see _cached_hours) plus the
    minutes around them; the last hour is always read from its minutes.
    """
    cached_from = w.day_start.replace(minute=0) + (
        dt.timedelta(hours=1) if w.day_start.minute else dt.timedelta()
    )
    cached_to = max(w.current_minute.replace(minute=0), cached_from)
    by_name: dict[str, TaskRuntimes] = {}
    for name, succeeded, failed, hist in _cached_hours(cached_from, cached_to):
        stats = by_name.setdefault(name, TaskRuntimes(name=name)).day
        stats.succeeded += succeeded
        stats.failed += failed
        histogram.add(stats.hist, hist)
    with connection.cursor() as cursor:
        cursor.execute(
            LIVE_SQL,
            {
                "day_start": w.day_start,
                "hour_start": w.hour_start,
                "cached_from": cached_from,
                "cached_to": cached_to,
                # Two index ranges: before the cached hours, and from the earlier of the
                # last hour's start and the cached hours' end.
                "live_from": min(cached_to, w.hour_start),
            },
        )
        for name, in_hour, in_cache, succeeded, failed, *buckets in cursor.fetchall():
            task = by_name.setdefault(name, TaskRuntimes(name=name))
            hist = [b or 0 for b in buckets]
            windows_hit = [task.hour] if in_hour else []
            if not in_cache:
                windows_hit.append(task.day)
            for stats in windows_hit:
                stats.succeeded += succeeded or 0
                stats.failed += failed or 0
                histogram.add(stats.hist, hist)
    tasks = [t for t in by_name.values() if t.day.succeeded or t.day.failed]
    tasks.sort(key=lambda t: (-(t.day.succeeded + t.day.failed), t.name))
    return tasks


@dataclass
class Dashboard:
    windows: Windows
    workers: worker_selectors.WorkerCounts
    queues: queue_selectors.QueueTotals
    hour: Series
    day: Series
    runtimes: list[TaskRuntimes]
    runtimes_more: int
    worker_rows: list[worker_selectors.WorkerRow]
    queue_rows: list[queue_selectors.QueueRow]
    table_limit: int = TABLE_LIMIT

    @property
    def workers_more(self) -> int:
        return max(self.workers.online + self.workers.offline - len(self.worker_rows), 0)

    @property
    def queues_more(self) -> int:
        return max(self.queues.queues - len(self.queue_rows), 0)


def dashboard(*, now: dt.datetime, with_runtimes: bool = True) -> Dashboard:
    """Everything the dashboard shows, in eight queries whatever the size of the history
    (nine when whole hours of runtime histograms are summed for the cache).

    ``with_runtimes=False`` leaves out the per-name runtime percentiles, the costlier part,
    which the live push refreshes less often than the rest.
    """
    w = windows(now)
    hour, day = throughput(w)
    names = runtimes(w) if with_runtimes else []
    return Dashboard(
        windows=w,
        workers=worker_selectors.worker_counts(),
        queues=queue_selectors.queue_totals(),
        hour=hour,
        day=day,
        runtimes=names[:RUNTIME_NAMES_LIMIT],
        runtimes_more=max(len(names) - RUNTIME_NAMES_LIMIT, 0),
        worker_rows=worker_selectors.worker_rows(now=now, limit=TABLE_LIMIT),
        queue_rows=queue_selectors.queue_rows(now=now, limit=TABLE_LIMIT),
    )


@dataclass
class NameTotals:
    """Counts and the summed runtime histogram of one task name over a window."""

    name: str
    counts: dict[str, int] = field(default_factory=dict)
    hist: list[int] = field(default_factory=histogram.empty)
    runtime_sum: float = 0.0

    def add(self, other: "NameTotals") -> None:
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        histogram.add(self.hist, other.hist)
        self.runtime_sum += other.runtime_sum


ROLLUP_COUNTS = ("received", "started", "succeeded", "failed", "retried", "revoked")


def name_totals(
    *, since: dt.datetime | None, until: dt.datetime | None = None, name: str | None = None
) -> list[NameTotals]:
    """Per task name, rollup counts and runtime histograms of the minutes in
    ``[since, until)``: one query over the rollups (never the history), busiest first."""
    buckets = {f"b{i}": Sum(f"runtime_hist__{i}") for i in range(histogram.SIZE)}
    rows = TaskMinuteRollup.objects.all()
    if since is not None:
        rows = rows.filter(minute__gte=since)
    if until is not None:
        rows = rows.filter(minute__lt=until)
    if name is not None:
        rows = rows.filter(name=name)
    grouped = (
        rows.values("name")
        .annotate(
            **{f"{c}_sum": Sum(c) for c in ROLLUP_COUNTS},
            runtime_total=Sum("runtime_sum"),
            **buckets,
        )
        .order_by()
    )
    result = []
    for row in grouped:
        r = cast(Mapping[str, Any], row)
        result.append(
            NameTotals(
                name=r["name"],
                counts={c: int(r[f"{c}_sum"] or 0) for c in ROLLUP_COUNTS},
                hist=[int(r[f"b{i}"] or 0) for i in range(histogram.SIZE)],
                runtime_sum=float(r["runtime_total"] or 0.0),
            )
        )
    result.sort(key=lambda t: (-(t.counts["succeeded"] + t.counts["failed"]), t.name))
    return result
