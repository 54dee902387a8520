"""Queue reads: the latest depth per queue (QueueRecord) and its trend over the last hour.

The trend reads QueueSample through its (queue, sampled_at) index, one point per minute
(the last sample of that minute), so a queue sampled every few seconds still costs at most
60 points; the sparkline is plain SVG drawn here, so it needs no JavaScript.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Sum
from django.db.models.functions import TruncMinute

from tasks_admin.models import QueueRecord, QueueSample

TREND_WINDOW = dt.timedelta(hours=1)
# One page of queues; past this, the rest are counted, not listed.
PAGE_LIMIT = 500
SPARK_WIDTH = 120
SPARK_HEIGHT = 24


@dataclass(frozen=True)
class QueueRow:
    queue: QueueRecord
    # (minute, depth at the end of that minute), oldest first, over the last hour.
    points: list[tuple[dt.datetime, int]] = field(default_factory=list)
    spark: str = ""  # SVG polyline points, in a SPARK_WIDTH x SPARK_HEIGHT box

    @property
    def delta(self) -> int | None:
        """Depth now minus depth an hour ago (the oldest point of the window)."""
        if not self.points:
            return None
        return self.queue.depth - self.points[0][1]

    @property
    def peak(self) -> int | None:
        return max((depth for _, depth in self.points), default=None)

    @property
    def low(self) -> int | None:
        return min((depth for _, depth in self.points), default=None)


@dataclass(frozen=True)
class QueueTotals:
    queues: int
    depth: int


def queue_totals() -> QueueTotals:
    totals = QueueRecord.objects.aggregate(queues=Count("pk"), depth=Sum("depth"))
    return QueueTotals(queues=totals["queues"], depth=totals["depth"] or 0)


def sparkline(points: list[tuple[dt.datetime, int]], *, start: dt.datetime) -> str:
    """Polyline points placing each sample by its time in the window, depth scaled to the peak."""
    if not points:
        return ""
    span = TREND_WINDOW.total_seconds()
    top = max(max(depth for _, depth in points), 1)
    coords = []
    for at, depth in points:
        x = min(max((at - start).total_seconds() / span, 0.0), 1.0) * SPARK_WIDTH
        y = SPARK_HEIGHT - 1 - depth / top * (SPARK_HEIGHT - 2)
        coords.append((x, y))
    if len(coords) == 1:  # one sample: a short flat stroke, so it is visible
        x, y = coords[0]
        coords = [(max(x - 3, 0.0), y), (min(x + 3, float(SPARK_WIDTH)), y)]
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)


def trends(names: list[str], *, now: dt.datetime) -> dict[str, list[tuple[dt.datetime, int]]]:
    """The last sample of each minute of the last hour, per queue; one query."""
    if not names:
        return {}
    rows = (
        QueueSample.objects.filter(queue__in=names, sampled_at__gte=now - TREND_WINDOW)
        .annotate(bucket=TruncMinute("sampled_at"))
        .order_by("queue", "bucket", "-sampled_at")
        .distinct("queue", "bucket")
        .values_list("queue", "bucket", "depth")
    )
    points: dict[str, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for queue, bucket, depth in rows:
        points[queue].append((bucket, depth))
    return points


def queue_rows(*, now: dt.datetime, limit: int | None = None) -> list[QueueRow]:
    """Queues by name with their trend: two queries, whatever the number of queues."""
    queues = QueueRecord.objects.order_by("name")
    if limit is not None:
        queues = queues[:limit]
    records = list(queues)
    points = trends([q.name for q in records], now=now)
    start = now - TREND_WINDOW
    return [
        QueueRow(
            queue=q,
            points=points.get(q.name, []),
            spark=sparkline(points.get(q.name, []), start=start),
        )
        for q in records
    ]
