"""The dashboard against the real database: rollups, current workers and queues, no history."""

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_admin import histogram
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import (
    QueueRecord,
    QueueSample,
    TaskMinuteRollup,
    TaskRecord,
    WorkerRecord,
)
from tasks_admin.selectors.dashboard import seconds_text
from tests import factories
from tests.pages.markup import ESCAPED, HOSTILE, is_partial, json_of, text_of

pytestmark = pytest.mark.django_db


def minutes_ago(n: int) -> dt.datetime:
    return timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=n)


def rollup(name: str, minute: dt.datetime, runtimes=(), **counts) -> TaskMinuteRollup:
    return TaskMinuteRollup.objects.create(
        name=name,
        minute=minute,
        runtime_count=len(runtimes),
        runtime_sum=sum(runtimes),
        runtime_hist=histogram.from_runtimes(runtimes) if runtimes else [],
        **counts,
    )


def worker(hostname: str, *, online=True, **fields) -> WorkerRecord:
    now = timezone.now()
    return WorkerRecord.objects.create(
        hostname=hostname,
        is_online=online,
        first_seen_at=now - dt.timedelta(hours=1),
        online_at=now - dt.timedelta(hours=1),
        last_heartbeat_at=now,
        updated_at=now,
        **fields,
    )


def queue(name: str, depth: int, consumers: int | None = 1) -> QueueRecord:
    now = timezone.now()
    return QueueRecord.objects.create(
        name=name, depth=depth, consumers=consumers, sampled_at=now, first_seen_at=now
    )


def get_dashboard(client, *, htmx=False):
    response = client.get("/", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200
    return response.content.decode()


def test_dashboard_is_a_full_page_for_a_browser(client):
    html = get_dashboard(client)
    assert "<html" in html
    assert 'id="dashboard-body"' in html
    assert "vendor/uplot/uPlot.iife.min.js" in html
    assert "console/charts.js" in html


def test_dashboard_htmx_request_gets_only_its_partial(client):
    html = get_dashboard(client, htmx=True)
    assert is_partial(html)
    assert 'id="dashboard-body"' in html
    assert 'id="dashboard-cards"' in html


def test_succeeded_and_failed_counts_add_up_the_rollups_of_the_last_hour_and_day(client):
    rollup("demo.add", minutes_ago(5), succeeded=3, failed=1)
    rollup("demo.mul", minutes_ago(58), succeeded=2)
    rollup("demo.add", minutes_ago(61), succeeded=7, failed=2)  # the day only
    rollup("demo.add", minutes_ago(60 * 23), succeeded=10, failed=4)
    rollup("demo.add", minutes_ago(60 * 25), succeeded=100, failed=50)  # older than a day
    html = get_dashboard(client)
    assert text_of(html, "stat-succeeded-hour").startswith("5 ")
    assert text_of(html, "stat-failed-hour").startswith("1 ")
    assert text_of(html, "stat-succeeded-day").startswith("22 ")
    assert text_of(html, "stat-failed-day").startswith("7 ")


def test_tasks_the_collector_wrote_are_counted_as_succeeded_and_failed(client):
    now = time.time()
    events = factories.succeeded_task(at=now - 30) + factories.succeeded_task(at=now - 20)
    events += factories.failed_task(at=now - 10)
    BatchWriter(max_chars=65536).write(events)
    assert TaskRecord.objects.count() == 3
    html = get_dashboard(client)
    assert text_of(html, "stat-succeeded-hour").startswith("2 ")
    assert text_of(html, "stat-failed-hour").startswith("1 ")


def test_workers_online_and_offline_running_tasks_and_queued_messages(client):
    worker("celery@a", active=3)
    worker("celery@b", active=4)
    worker("celery@gone", online=False, active=5)  # its last heartbeat's count is stale
    queue("default", 7)
    queue("emails", 5)
    html = get_dashboard(client)
    assert text_of(html, "stat-workers-online").startswith("2 ")
    assert text_of(html, "stat-workers-offline").startswith("1 ")
    assert text_of(html, "stat-active").startswith("7 ")
    assert text_of(html, "stat-queued") == "12 queued in 2 queues"


def test_workers_table_shows_status_active_processed_and_load(client):
    worker("celery@a", active=3, processed=1234, loadavg=[0.5, 0.25, 0.125])
    worker("celery@gone", online=False)
    table = text_of(get_dashboard(client), "dashboard-workers")
    assert "celery@a online" in table
    assert "3 1,234 0.50 0.25 0.12" in table
    assert "celery@gone offline" in table
    assert table.index("celery@a") < table.index("celery@gone")


def test_runtime_percentiles_per_task_name_come_from_the_rollup_histograms(client):
    fast = [0.1] * 90 + [2.0] * 10
    rollup("demo.add", minutes_ago(3), runtimes=fast, succeeded=100)
    rollup("demo.add", minutes_ago(120), runtimes=[30.0] * 100, succeeded=100)
    html = get_dashboard(client)
    hour = histogram.from_runtimes(fast)
    day = histogram.add(histogram.from_runtimes(fast), histogram.from_runtimes([30.0] * 100))
    expected_hour = [seconds_text(histogram.percentile(hour, q)) for q in (0.5, 0.95, 0.99)]
    expected_day = [seconds_text(histogram.percentile(day, q)) for q in (0.5, 0.95, 0.99)]
    assert expected_hour[0].endswith(" ms") and expected_hour[1].endswith(" s")
    row = text_of(html, "dashboard-runtimes")
    assert f"demo.add 100 0 {' '.join(expected_hour)} 200 0 {' '.join(expected_day)}" in row


def test_chart_data_holds_a_point_per_minute_of_the_hour_and_per_15_minutes_of_the_day(client):
    latest = minutes_ago(1)
    rollup("demo.add", latest, succeeded=4, failed=1)
    rollup("demo.add", minutes_ago(10), succeeded=6)
    rollup("demo.add", minutes_ago(600), failed=3)
    html = get_dashboard(client)
    hour = json_of(html, "chart-data-hour")
    day = json_of(html, "chart-data-day")
    assert len(hour["t"]) == 60 and hour["step"] == 60
    assert len(day["t"]) == 96 and day["step"] == 900
    assert (sum(hour["succeeded"]), sum(hour["failed"])) == (10, 1)
    assert (sum(day["succeeded"]), sum(day["failed"])) == (10, 4)
    at = hour["t"].index(int(latest.timestamp()))
    assert (hour["succeeded"][at], hour["failed"][at], hour["failure_rate"][at]) == (4, 1, 20.0)
    assert hour["failure_rate"][0] is None  # nothing finished: a gap, not 0 %


def test_chart_numbers_are_in_a_table_for_readers_without_javascript(client):
    rollup("demo.add", minutes_ago(2), succeeded=41, failed=1)
    panel = text_of(get_dashboard(client), "chart-panel-hour")
    assert "41 succeeded 1 failed failure rate 2.4 %" in panel
    assert "41 1 2.4 %" in panel


def test_queue_trend_is_the_change_in_depth_over_the_last_hour(client):
    now = timezone.now()
    queue("default", 10)
    for minutes, depth in ((120, 500), (50, 2), (20, 6), (1, 9)):
        QueueSample.objects.create(
            queue="default", sampled_at=now - dt.timedelta(minutes=minutes), depth=depth
        )
    html = get_dashboard(client)
    table = text_of(html, "dashboard-queues")
    assert "default 10 1 +8" in table  # 10 now, 2 an hour ago (the 2 h old 500 is ignored)
    assert "<polyline points=" in html


def test_dashboard_runs_a_fixed_number_of_queries_whatever_the_rows(client):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            get_dashboard(client)
        return len(ctx.captured_queries)

    worker("celery@one")
    queue("q0", 1)
    rollup("n0", minutes_ago(1), runtimes=[0.1], succeeded=1)
    few = count_queries()
    now = timezone.now()
    for i in range(1, 30):
        worker(f"celery@w{i}", active=i)
        queue(f"q{i}", i)
        QueueSample.objects.create(queue=f"q{i}", sampled_at=now, depth=i)
        rollup(f"n{i}", minutes_ago(i), runtimes=[0.1 * i], succeeded=i)
    # The first read of a whole hour sums its histograms once (one more query), then
    # they come from the cache.
    assert count_queries() <= few + 1
    assert count_queries() == few
    assert few <= 11


def test_hostile_names_are_shown_as_text_on_the_dashboard(client):
    rollup(HOSTILE, minutes_ago(1), runtimes=[0.2], succeeded=1)
    worker(HOSTILE, loadavg=[HOSTILE])
    queue(HOSTILE, 3)
    QueueSample.objects.create(queue=HOSTILE, sampled_at=timezone.now(), depth=3)
    for htmx in (False, True):
        html = get_dashboard(client, htmx=htmx)
        assert HOSTILE not in html
        assert "alert(1)</script>" not in html
        assert html.count(ESCAPED) >= 3  # task name, worker hostname, queue name
