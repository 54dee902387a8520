"""Failed tasks grouped by task name and exception type over a recent window.

``WHERE state = 'FAILURE' AND first_seen_at >= since GROUP BY name, exception_type`` reads
only the window's failures, through the (state, -first_seen_at) index.
"""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from celery import states
from django.db.models import Count, Max, Min
from django.db.models.functions import Coalesce
from django.urls import reverse

from tasks_admin.models import TaskRecord

WINDOWS: dict[str, tuple[str, dt.timedelta]] = {
    "hour": ("Last hour", dt.timedelta(hours=1)),
    "day": ("Last day", dt.timedelta(days=1)),
    "week": ("Last week", dt.timedelta(days=7)),
}
DEFAULT_WINDOW = "day"
GROUPS_LIMIT = 200


@dataclass(frozen=True)
class FailureGroup:
    name: str
    exception_type: str
    count: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    since: dt.datetime

    @property
    def tasks_url(self) -> str:
        """The tasks page filtered to these failures (its filter names: state, name, search)."""
        query = {"state": states.FAILURE, "name": self.name}
        if self.exception_type:
            query["search"] = self.exception_type
        # The tasks page searches text within a time range (24 h by default): give it this
        # page's window, which is on first_seen_at as there.
        query["from"] = self.since.isoformat()
        return f"{reverse('tasks_admin:tasks')}?{urlencode(query)}"


@dataclass(frozen=True)
class Failures:
    window: str
    label: str
    since: dt.datetime
    groups: list[FailureGroup]
    more: bool

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups)


def window_or_default(value: str | None) -> str:
    return value if value in WINDOWS else DEFAULT_WINDOW


def failure_groups(*, window: str, now: dt.datetime, limit: int = GROUPS_LIMIT) -> Failures:
    label, span = WINDOWS[window]
    since = now - span
    # When it failed; a row the result backend reconciled may lack failed_at.
    failed_at = Coalesce("failed_at", "last_event_at")
    rows = (
        TaskRecord.objects.filter(state=states.FAILURE, first_seen_at__gte=since)
        .values("name", "exception_type")
        .annotate(count=Count("pk"), first_at=Min(failed_at), last_at=Max(failed_at))
        .order_by("-count", "-last_at", "name", "exception_type")[: limit + 1]
    )
    groups = [FailureGroup(**row, since=since) for row in rows]
    return Failures(
        window=window,
        label=label,
        since=since,
        groups=groups[:limit],
        more=len(groups) > limit,
    )
