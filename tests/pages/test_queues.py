"""The queues page: latest depth and consumers, and the trend of the last hour from samples."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_admin.models import QueueRecord, QueueSample
from tests.pages.markup import ESCAPED, HOSTILE, is_partial, text_of

pytestmark = pytest.mark.django_db


def queue(name: str, depth: int, consumers: int | None = 2, samples=()) -> QueueRecord:
    """A queue with samples given as (minutes ago, depth)."""
    now = timezone.now()
    for minutes, sampled_depth in samples:
        QueueSample.objects.create(
            queue=name,
            sampled_at=now - dt.timedelta(minutes=minutes),
            depth=sampled_depth,
            consumers=consumers,
        )
    return QueueRecord.objects.create(
        name=name, depth=depth, consumers=consumers, sampled_at=now, first_seen_at=now
    )


def get(client, *, htmx=False) -> str:
    response = client.get("/queues/", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200
    return response.content.decode()


def test_queues_page_is_a_full_page_and_an_htmx_partial(client):
    queue("default", 3)
    page = get(client)
    assert "<html" in page and 'id="queues-table"' in page
    partial = get(client, htmx=True)
    assert is_partial(partial) and 'id="queues-table"' in partial and "default" in partial


def test_each_queue_shows_depth_consumers_change_low_and_peak_of_the_last_hour(client):
    queue("default", 40, consumers=3, samples=[(55, 10), (30, 70), (2, 35)])
    queue("emails", 0, consumers=0, samples=[(5, 4)])
    table = text_of(get(client), "queues-table")
    assert "40 messages waiting in 2 queues" in table
    assert "default 40 3 +30 10 70" in table
    assert "emails 0 0 -4 4 4" in table


def test_samples_older_than_an_hour_are_not_part_of_the_trend(client):
    queue("default", 5, samples=[(90, 9000), (30, 5)])
    table = text_of(get(client), "queues-table")
    assert "default 5 2 0 5 5" in table
    assert "9,000" not in table and "9000" not in table


def test_the_trend_keeps_the_last_sample_of_each_minute(client):
    now = timezone.now().replace(second=30, microsecond=0) - dt.timedelta(minutes=3)
    for seconds, depth in ((0, 100), (10, 1), (20, 7)):
        QueueSample.objects.create(
            queue="default", sampled_at=now + dt.timedelta(seconds=seconds), depth=depth
        )
    QueueRecord.objects.create(name="default", depth=7, sampled_at=now, first_seen_at=now)
    table = text_of(get(client), "queues-table")
    assert "default 7 — 0 7 7" in table


def test_a_queue_without_samples_says_so(client):
    queue("quiet", 0)
    assert "quiet 0 2 no samples" in text_of(get(client), "queues-table")


def test_the_sparkline_is_svg_without_script(client):
    queue("default", 4, samples=[(50, 1), (25, 8), (1, 4)])
    html = get(client)
    assert '<svg class="spark"' in html and "<polyline points=" in html


def test_queues_page_runs_the_same_queries_for_many_queues(client):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            get(client)
        return len(ctx.captured_queries)

    queue("q0", 1, samples=[(1, 1)])
    few = count_queries()
    for i in range(1, 25):
        queue(f"q{i}", i, samples=[(10, i), (1, i)])
    assert count_queries() == few


def test_a_hostile_queue_name_is_text(client):
    queue(HOSTILE, 3, samples=[(1, 3)])
    for htmx in (False, True):
        html = get(client, htmx=htmx)
        assert HOSTILE not in html
        assert ESCAPED in html
