"""The failures page: failed tasks grouped by name and exception type over a window."""

import datetime as dt
import html as htmllib
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskRecord
from tests import factories
from tests.pages.markup import ESCAPED, HOSTILE, is_partial, text_of

pytestmark = pytest.mark.django_db


def failed(name: str, exception_type: str, *, ago: dt.timedelta, state="FAILURE") -> TaskRecord:
    at = timezone.now() - ago
    return TaskRecord.objects.create(
        task_id=factories.new_task_id(),
        name=name,
        state=state,
        first_seen_at=at,
        last_event_at=at + dt.timedelta(seconds=1),
        received_at=at,
        failed_at=at + dt.timedelta(seconds=1) if state == "FAILURE" else None,
        exception=f"{exception_type}('boom')",
        exception_type=exception_type,
        updated_at=at,
    )


def get(client, query: str = "", *, htmx=False) -> str:
    response = client.get(f"/failures/{query}", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200
    return response.content.decode()


def test_failures_page_is_a_full_page_and_an_htmx_partial(client):
    failed("demo.fail", "ValueError", ago=dt.timedelta(minutes=5))
    page = get(client)
    assert "<html" in page and 'id="failures-table"' in page and '<select name="window">' in page
    partial = get(client, "?window=week", htmx=True)
    assert is_partial(partial) and 'id="failures-table"' in partial
    assert "<select" not in partial and "demo.fail" in partial


def test_failures_are_grouped_by_task_name_and_exception_type_with_counts(client):
    for _ in range(3):
        failed("demo.fail", "ValueError", ago=dt.timedelta(hours=2))
    for _ in range(2):
        failed("demo.fail", "KeyError", ago=dt.timedelta(hours=3))
    failed("demo.other", "ValueError", ago=dt.timedelta(hours=4))
    failed("demo.fail", "ValueError", ago=dt.timedelta(days=3))  # outside the default day
    failed("demo.fail", "ValueError", ago=dt.timedelta(minutes=1), state="SUCCESS")
    html = get(client)
    table = text_of(html, "failures-table")
    assert "Last day: 6 failed tasks in 3 groups" in table
    first, second, third = (
        table.index("demo.fail ValueError 3"),
        table.index("demo.fail KeyError 2"),
        table.index("demo.other ValueError 1"),
    )
    assert first < second < third


def test_the_window_can_be_the_last_hour_or_week(client):
    failed("demo.fail", "ValueError", ago=dt.timedelta(minutes=10))
    failed("demo.fail", "ValueError", ago=dt.timedelta(hours=5))
    failed("demo.fail", "ValueError", ago=dt.timedelta(days=6))
    failed("demo.fail", "ValueError", ago=dt.timedelta(days=8))
    assert "demo.fail ValueError 1" in text_of(get(client, "?window=hour"), "failures-table")
    assert "demo.fail ValueError 2" in text_of(get(client, "?window=day"), "failures-table")
    week = get(client, "?window=week")
    assert "demo.fail ValueError 3" in text_of(week, "failures-table")
    assert '<option value="week" selected>' in week
    assert "Last day:" in text_of(get(client, "?window=forever"), "failures-table")


def test_first_and_last_seen_are_the_oldest_and_newest_failure_of_the_group(client):
    old = failed("demo.fail", "ValueError", ago=dt.timedelta(hours=20))
    failed("demo.fail", "ValueError", ago=dt.timedelta(hours=10))
    new = failed("demo.fail", "ValueError", ago=dt.timedelta(hours=1))
    html = get(client)
    stamps = [t.split('"', 1)[0] for t in html.split('<time datetime="')[1:]]
    assert old.failed_at.isoformat() in stamps
    assert new.failed_at.isoformat() in stamps
    assert stamps.index(old.failed_at.isoformat()) < stamps.index(new.failed_at.isoformat())


def test_each_group_links_to_the_task_list_filtered_to_it(client):
    task = failed("demo.fail", "ValueError", ago=dt.timedelta(minutes=5))
    html = get(client)
    href = html.split('<a href="/tasks/?', 1)[1].split('"', 1)[0]
    query = parse_qs(htmllib.unescape(href))
    since = dt.datetime.fromisoformat(query.pop("from")[0])
    assert query == {"state": ["FAILURE"], "name": ["demo.fail"], "search": ["ValueError"]}
    # The default window (a day) reaches the tasks page, whose text search is time-bounded.
    assert dt.timedelta(hours=23) < timezone.now() - since < dt.timedelta(hours=25)

    listed = client.get(f"/tasks/?{htmllib.unescape(href)}").content.decode()
    assert f'data-task-id="{task.task_id}"' in listed


def test_failures_the_collector_wrote_are_grouped(client):
    now = time.time()
    events = [e for i in range(3) for e in factories.failed_task(at=now - i, name="demo.fail")]
    BatchWriter(max_chars=65536).write(events)
    assert "demo.fail ValueError 3" in text_of(get(client), "failures-table")


def test_hostile_task_name_and_exception_type_are_text_and_the_link_is_encoded(client):
    failed(HOSTILE, HOSTILE, ago=dt.timedelta(minutes=5))
    for htmx in (False, True):
        html = get(client, htmx=htmx)
        assert HOSTILE not in html
        assert html.count(ESCAPED) == 2
        href = html.split('<a href="/tasks/?', 1)[1].split('"', 1)[0]
        query = parse_qs(urlsplit("?" + htmllib.unescape(href)).query)
        query.pop("from")
        assert query == {"state": ["FAILURE"], "name": [HOSTILE], "search": [HOSTILE]}
