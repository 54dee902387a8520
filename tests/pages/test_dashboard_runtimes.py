"""Runtime percentiles per task name: whole hours are cached, yet always current."""

import datetime as dt
import random

import pytest
from django.core.cache import cache
from django.utils import timezone

from tasks_admin import histogram
from tasks_admin.models import TaskMinuteRollup
from tasks_admin.selectors import dashboard

pytestmark = pytest.mark.django_db


def add_rollup(name: str, minute: dt.datetime, runtimes: list[float], failed: int = 0) -> None:
    TaskMinuteRollup.objects.create(
        name=name,
        minute=minute,
        succeeded=len(runtimes),
        failed=failed,
        runtime_count=len(runtimes),
        runtime_sum=sum(runtimes),
        runtime_hist=histogram.from_runtimes(runtimes) if runtimes else [],
    )


def naive(w: dashboard.Windows) -> dict[str, tuple]:
    """Every minute of the day summed in Python: what runtimes() must equal."""
    out: dict[str, dashboard.TaskRuntimes] = {}
    for r in TaskMinuteRollup.objects.filter(minute__gte=w.day_start):
        task = out.setdefault(r.name, dashboard.TaskRuntimes(name=r.name))
        for stats in (task.day, task.hour) if r.minute >= w.hour_start else (task.day,):
            stats.succeeded += r.succeeded
            stats.failed += r.failed
            histogram.add(stats.hist, r.runtime_hist or histogram.empty())
    return {name: _shape(t) for name, t in out.items() if t.day.succeeded or t.day.failed}


def _shape(t: dashboard.TaskRuntimes) -> tuple:
    return tuple((s.succeeded, s.failed, tuple(s.hist)) for s in t.windows)


def selected(w: dashboard.Windows) -> dict[str, tuple]:
    return {t.name: _shape(t) for t in dashboard.runtimes(w)}


def test_runtimes_equal_the_sum_of_every_minute_of_the_day_at_any_time_of_the_hour():
    rng = random.Random(3)
    base = timezone.now().replace(second=0, microsecond=0)
    for offset in range(0, 26 * 60, 7):
        for name in ("a.fast", "b.slow"):
            runtimes = [rng.lognormvariate(-2 if name == "a.fast" else 2, 1) for _ in range(3)]
            add_rollup(name, base - dt.timedelta(minutes=offset), runtimes, failed=offset % 3)
    cache.clear()
    for minute in (0, 1, 29, 59, 60, 61, 121):
        w = dashboard.windows(base - dt.timedelta(minutes=minute) + dt.timedelta(seconds=30))
        assert selected(w) == naive(w)  # cold: hours summed and cached
        assert selected(w) == naive(w)  # warm: hours from the cache


def test_a_late_change_to_a_cached_hour_shows_at_once():
    now = timezone.now()
    old = now.replace(second=0, microsecond=0) - dt.timedelta(hours=5)
    add_rollup("late.task", old, [0.01] * 10)
    w = dashboard.windows(now)
    before = selected(w)["late.task"]
    row = TaskMinuteRollup.objects.get(name="late.task")
    slow = histogram.from_runtimes([50.0] * 30)
    row.runtime_hist = histogram.add(list(row.runtime_hist), slow)
    row.succeeded += 30
    row.runtime_count += 30
    row.runtime_sum += 1500.0
    row.save()
    after = selected(w)["late.task"]
    assert after != before
    assert after == naive(w)["late.task"]
    assert histogram.percentile(list(after[1][2]), 0.95) > 40
