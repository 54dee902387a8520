"""The tasks page: filters in the URL, search, sorts, keyset pages, "N new tasks"."""

import datetime as dt
import html as htmllib
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskRecord
from tasks_admin.selectors import tasks as task_selectors
from tests import factories
from tests.pages.markup import ESCAPED, HOSTILE, is_partial, text_of

pytestmark = pytest.mark.django_db


def task(task_id: str | None = None, *, ago: dt.timedelta | None = None, at=None, **fields):
    if at is None:
        at = timezone.now() - (dt.timedelta(minutes=1) if ago is None else ago)
    fields.setdefault("state", "SUCCESS")
    return TaskRecord.objects.create(
        task_id=task_id or factories.new_task_id(),
        first_seen_at=at,
        last_event_at=at,
        updated_at=at,
        **fields,
    )


def get(client, query: str = "", *, htmx=False, status=200) -> str:
    response = client.get(f"/tasks/{query}", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == status, response.content.decode()[:2000]
    return response.content.decode()


def row_ids(page: str) -> list[str]:
    return [htmllib.unescape(i) for i in re.findall(r'<tr id="[^"]*" data-task-id="([^"]*)"', page)]


def link(page: str, rel_or_text: str) -> str:
    """The href of the first link whose markup contains ``rel_or_text``."""
    for match in re.finditer(r"<a ([^>]*)>(.*?)</a>", page, re.S):
        if rel_or_text in match.group(0):
            href = re.search(r'href="([^"]*)"', match.group(1))
            assert href
            return htmllib.unescape(href.group(1))
    raise AssertionError(f"no link with {rel_or_text!r}")


def test_tasks_page_is_a_full_page_with_a_get_form_that_htmx_submits(client):
    t = task(name="demo.add")
    page = get(client)
    assert "<html" in page and '<form class="filters task-filters" method="get"' in page
    assert 'hx-target="#task-results"' in page and 'hx-push-url="true"' in page
    assert row_ids(page) == [t.task_id]
    assert f'href="/tasks/{t.task_id}/"' in page


def test_htmx_request_gets_only_the_results_partial(client):
    t = task(name="demo.add")
    response = client.get("/tasks/?name=demo.add", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and is_partial(body)
    assert "<form" not in body and row_ids(body) == [t.task_id]
    assert "HX-Request" in response["Vary"]


def test_the_filter_state_is_read_back_from_the_url_into_the_form(client):
    page = get(client, "?state=failure&name=demo.add&worker=w1&queue=q1&from=1h&sort=runtime")
    assert 'value="FAILURE" checked' in page
    assert 'name="name" value="demo.add"' in page and 'name="worker" value="w1"' in page
    assert 'name="queue" value="q1"' in page and 'name="from" value="1h"' in page
    assert '<option value="runtime" selected>' in page


def test_state_filter_keeps_one_or_several_states(client):
    ok = task(state="SUCCESS")
    bad = task(state="FAILURE")
    retry = task(state="RETRY")
    assert row_ids(get(client, "?state=FAILURE", htmx=True)) == [bad.task_id]
    both = get(client, "?state=FAILURE&state=retry", htmx=True)
    assert set(row_ids(both)) == {bad.task_id, retry.task_id}
    assert ok.task_id not in both


def test_several_states_come_back_merged_newest_first(client):
    rows = [
        task(state=("FAILURE", "RETRY", "SUCCESS")[i % 3], ago=dt.timedelta(seconds=i))
        for i in range(9)
    ]
    page = get(client, "?state=FAILURE&state=RETRY", htmx=True)
    assert row_ids(page) == [r.task_id for r in rows if r.state != "SUCCESS"]


@pytest.mark.parametrize("column", ["name", "worker", "queue"])
def test_name_worker_and_queue_filters_match_exactly(client, column):
    wanted = task(**{column: "alpha"})
    task(**{column: "alphabet"})
    task(**{column: "beta"})
    assert row_ids(get(client, f"?{column}=alpha", htmx=True)) == [wanted.task_id]


def test_time_range_takes_relative_and_iso_times(client):
    now = timezone.now()
    recent = task(at=now - dt.timedelta(minutes=30))
    older = task(at=now - dt.timedelta(hours=3))
    oldest = task(at=now - dt.timedelta(days=3))
    assert row_ids(get(client, "?from=1h", htmx=True)) == [recent.task_id]
    assert row_ids(get(client, "?from=2d&to=2h", htmx=True)) == [older.task_id]
    since = (now - dt.timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    until = (now - dt.timedelta(days=2)).isoformat()
    query = f"?from={since}&to={until.replace('+', '%2B')}"
    assert row_ids(get(client, query, htmx=True)) == [oldest.task_id]


def test_search_by_exact_task_id_shows_that_task_whatever_else(client):
    wanted = task("3f2c9e1a-0000-4000-8000-000000000001", state="SUCCESS")
    task("3f2c9e1a-0000-4000-8000-000000000002")
    page = get(client, f"?search={wanted.task_id}", htmx=True)
    assert row_ids(page) == [wanted.task_id]
    assert "Exact task id match" in page


def test_search_by_task_id_prefix_uses_the_id_range(client):
    a = task("abcd1234-1", ago=dt.timedelta(minutes=2))
    b = task("abcd1234-2", ago=dt.timedelta(minutes=1))
    task("abce0000-1")
    task("zzzz", args="('abcd1234',)")
    page = get(client, "?search=abcd1234", htmx=True)
    assert row_ids(page) == [b.task_id, a.task_id]
    assert "whose id starts with" in page
    # The same text, read as text, finds the task whose args hold it.
    as_text = get(client, "?search=abcd1234&match=text", htmx=True)
    assert row_ids(as_text) == ["zzzz"]


def test_a_prefix_with_like_wildcards_matches_them_literally(client):
    task("a%b_c-1")
    task("axbyc-1")
    assert row_ids(get(client, "?search=a%25b_c&match=id", htmx=True)) == ["a%b_c-1"]


@pytest.mark.parametrize("column", ["args", "kwargs", "result", "exception"])
def test_text_search_finds_text_in_args_kwargs_result_and_exception(client, column):
    wanted = task(**{column: "order for Customer-42, please"})
    task(args="(1, 2)", kwargs="{'customer': 41}", result="'ok'")
    page = get(client, "?search=customer-42", htmx=True)
    assert row_ids(page) == [wanted.task_id]
    assert "match for" in text_of(page, "task-results-count")


def test_text_search_takes_percent_and_underscore_literally(client):
    wanted = task(args="('100%_done',)")
    task(args="('100 x done',)")
    assert row_ids(get(client, "?search=100%25_d", htmx=True)) == [wanted.task_id]


def test_text_search_reads_the_last_24_hours_unless_given_a_range(client):
    recent = task(args="('needle',)", ago=dt.timedelta(hours=2))
    old = task(args="('needle',)", ago=dt.timedelta(days=3))
    page = get(client, "?search=needle", htmx=True)
    assert row_ids(page) == [recent.task_id]
    assert "the last 24 hours" in page
    assert row_ids(get(client, "?search=needle&from=7d", htmx=True)) == [
        recent.task_id,
        old.task_id,
    ]


def test_text_search_reads_a_capped_window_and_offers_to_continue(client, monkeypatch):
    monkeypatch.setattr(task_selectors, "SCAN_CAP", 5)
    now = timezone.now()
    rows = [task(args=f"('needle {i}',)", at=now - dt.timedelta(minutes=i)) for i in range(8)]
    page = get(client, "?search=needle", htmx=True)
    assert row_ids(page) == [r.task_id for r in rows[:5]]
    assert "newest 5 tasks" in page
    older = link(page, "continue with older tasks")
    # The window's oldest row starts the next window (a tie there is shown twice, never lost).
    assert row_ids(get(client, older.removeprefix("/tasks/"), htmx=True)) == [
        r.task_id for r in rows[4:]
    ]


@pytest.mark.parametrize("sort", ["received", "started", "runtime"])
def test_each_sort_orders_the_list(client, sort):
    now = timezone.now()
    a = task(at=now - dt.timedelta(minutes=3), started_at=now - dt.timedelta(minutes=1), runtime=1)
    b = task(at=now - dt.timedelta(minutes=2), started_at=now - dt.timedelta(minutes=2), runtime=3)
    c = task(at=now - dt.timedelta(minutes=1), started_at=now - dt.timedelta(minutes=3), runtime=2)
    expected = {
        "received": [c, b, a],
        "started": [a, b, c],
        "runtime": [b, c, a],
    }[sort]
    assert row_ids(get(client, f"?sort={sort}", htmx=True)) == [t.task_id for t in expected]


def test_runtime_sort_leaves_out_tasks_without_a_runtime_and_says_so(client):
    done = task(runtime=0.5)
    task(state="STARTED", runtime=None)
    page = get(client, "?sort=runtime", htmx=True)
    assert row_ids(page) == [done.task_id]
    assert "Tasks without a runtime are left out" in page


def walk(client, query: str) -> list[list[str]]:
    pages = []
    url = f"/tasks/{query}"
    for _ in range(20):
        response = client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200
        body = response.content.decode()
        pages.append(row_ids(body))
        if 'rel="next"' not in body:
            return pages
        url = link(body, 'rel="next"')
    raise AssertionError("too many pages")


def test_pages_follow_each_other_without_gaps_or_duplicates_across_equal_times(client):
    now = timezone.now().replace(microsecond=0)
    # Groups of 7 tasks share a moment, so page boundaries fall inside a tie.
    rows = [
        task(f"t-{i:04d}", at=now - dt.timedelta(seconds=i // 7), name="pager") for i in range(130)
    ]
    expected = [
        r.task_id for r in sorted(rows, key=lambda r: (-r.first_seen_at.timestamp(), r.task_id))
    ]
    pages = walk(client, "?name=pager")
    assert [len(p) for p in pages] == [50, 50, 30]
    assert [i for p in pages for i in p] == expected


def test_runtime_pages_follow_each_other_across_equal_runtimes(client):
    rows = [task(f"r-{i:04d}", runtime=float(i // 9)) for i in range(60)]
    pages = walk(client, "?sort=runtime")
    expected = [r.task_id for r in sorted(rows, key=lambda r: (-r.runtime, r.task_id))]
    assert [len(p) for p in pages] == [50, 10]
    assert [i for p in pages for i in p] == expected


def test_text_search_pages_follow_each_other(client):
    now = timezone.now().replace(microsecond=0)
    rows = [
        task(f"s-{i:04d}", at=now - dt.timedelta(seconds=i // 4), args="('needle',)")
        for i in range(70)
    ]
    for i in range(30):
        task(f"x-{i:04d}", at=now - dt.timedelta(seconds=i), args="('hay',)")
    pages = walk(client, "?search=needle")
    assert [len(p) for p in pages] == [50, 20]
    assert [i for p in pages for i in p] == [r.task_id for r in rows]


def test_the_first_page_links_back_from_later_pages(client):
    for i in range(60):
        task(f"p-{i:04d}", ago=dt.timedelta(seconds=i))
    second = client.get(link(get(client, htmx=True), 'rel="next"'), headers={"HX-Request": "true"})
    assert "« First page" in second.content.decode()


def test_the_total_is_exact_below_the_cap_and_capped_above_it(client, monkeypatch):
    monkeypatch.setattr(task_selectors, "COUNT_CAP", 30)
    for i in range(31):
        task(ago=dt.timedelta(seconds=i), name="many")
    for i in range(30):
        task(ago=dt.timedelta(seconds=i), name="some")
    assert "30+ tasks" in text_of(get(client, "?name=many", htmx=True), "task-results-count")
    assert "30 tasks" in text_of(get(client, "?name=some", htmx=True), "task-results-count")


def test_a_capped_total_is_reused_for_a_while_and_a_total_under_the_cap_never(client, monkeypatch):
    monkeypatch.setattr(task_selectors, "COUNT_CAP", 3)
    for i in range(5):
        task(ago=dt.timedelta(seconds=i), name="many")
    task(name="few")

    def counts(query: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            get(client, query, htmx=True)
        return sum("count(*)" in q["sql"] for q in queries.captured_queries)

    assert counts("?name=many") == 1
    assert counts("?name=many") == 0  # "3+" reused
    assert "3+ tasks" in text_of(get(client, "?name=many", htmx=True), "task-results-count")
    assert counts("?name=few") == 1
    assert counts("?name=few") == 1  # under the cap: counted every time
    monkeypatch.setattr(task_selectors, "CAPPED_TOTAL_SECONDS", 0.0)
    task_selectors.forget_capped_totals()
    TaskRecord.objects.filter(name="many").delete()
    assert counts("?name=many") == 1
    assert "3+" not in get(client, "?name=many", htmx=True)


def test_the_total_reads_ten_thousand_plus_beyond_the_default_cap():
    page = task_selectors.TaskPage("list", task_selectors.TaskFilters(), [], 10_001, None, None)
    assert page.total_display == "10,000+"
    assert task_selectors.TaskPage("list", page.filters, [], 9_999, None, None).total_display == (
        "9,999"
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?state=EXPLODED", "Unknown state “EXPLODED”"),
        ("?from=yesterday-ish", "is not a time"),
        ("?to=2025-13-45", "is not a time"),
        ("?from=1h&to=2h", "“To” is before “from”"),
        ("?sort=color", "Unknown sort “color”"),
        ("?cursor=garbage", "position in the list is not valid"),
        ("?sort=runtime&cursor=nan~x", "position in the list is not valid"),
        ("?from=999999w", "is not a time"),
        ("?name=a%00b", "Null characters are not allowed"),
    ],
)
def test_bad_input_is_a_form_error_with_http_400(client, query, message):
    partial = get(client, query, htmx=True, status=400)
    assert message in htmllib.unescape(partial) and is_partial(partial)
    page = get(client, query, status=400)
    assert message in htmllib.unescape(page) and "<form" in page


def test_new_tasks_that_match_are_counted_against_the_list_top(client):
    task(name="watched", ago=dt.timedelta(minutes=5))
    page = get(client, "?name=watched", htmx=True)
    newer_url = htmllib.unescape(re.search(r'hx-get="([^"]*newer_than[^"]*)"', page).group(1))
    task(name="watched", ago=dt.timedelta(seconds=10))
    task(name="watched", ago=dt.timedelta(seconds=5))
    task(name="other", ago=dt.timedelta(seconds=5))
    response = client.get(newer_url, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200 and is_partial(body)
    assert "2 new tasks" in body
    assert link(body, "new tasks") == "/tasks/?name=watched"


def test_new_tasks_count_stops_at_its_cap(client, monkeypatch):
    monkeypatch.setattr(task_selectors, "NEWER_CAP", 3)
    page = get(client, htmx=True)
    newer_url = htmllib.unescape(re.search(r'hx-get="([^"]*newer_than[^"]*)"', page).group(1))
    for i in range(5):
        task(ago=dt.timedelta(seconds=i))
    body = client.get(newer_url, headers={"HX-Request": "true"}).content.decode()
    assert "3+ new tasks" in body


def test_new_tasks_of_a_text_search_must_match_the_text(client):
    task(args="('needle',)", ago=dt.timedelta(minutes=5))
    page = get(client, "?search=needle", htmx=True)
    newer_url = htmllib.unescape(re.search(r'hx-get="([^"]*newer_than[^"]*)"', page).group(1))
    task(args="('needle',)", ago=dt.timedelta(seconds=3))
    task(args="('hay',)", ago=dt.timedelta(seconds=3))
    body = client.get(newer_url, headers={"HX-Request": "true"}).content.decode()
    assert "1 new task " in body


def test_count_newer_counts_tasks_at_the_same_moment_with_a_smaller_id():
    at = timezone.now()
    task("b", at=at)
    task("a", at=at)
    task("c", at=at)
    top = task_selectors.Cursor(at, "b")
    assert task_selectors.count_newer(task_selectors.TaskFilters(), top) == 1


def test_a_bad_new_tasks_cursor_is_a_400(client):
    body = get(client, "?newer_than=soon", htmx=True, status=400)
    assert "position in the list is not valid" in body


def test_hostile_task_data_is_escaped_on_the_page_and_the_partial(client):
    task(
        HOSTILE.replace("/", "-"),
        name=HOSTILE,
        args=HOSTILE,
        kwargs=HOSTILE,
        result=HOSTILE,
        exception=HOSTILE,
        worker=HOSTILE,
        queue=HOSTILE,
    )
    for body in (get(client), get(client, htmx=True), get(client, "?search=alert", htmx=True)):
        assert HOSTILE not in body and "<script>alert" not in body
        assert ESCAPED in body


def test_hostile_search_text_is_escaped(client):
    body = get(client, f"?search={HOSTILE} x")
    assert "<script>alert" not in body and ESCAPED in body


def test_rows_written_by_the_collector_show_on_the_list(client):
    events = factories.succeeded_task(name="demo.add") + factories.failed_task()
    BatchWriter(max_chars=65536).write(events)
    page = get(client, "?state=SUCCESS", htmx=True)
    assert row_ids(page) == [events[0]["uuid"]]
    assert "demo.add" in page and "(1, 2)" in page and "0.250 s" in page


@pytest.mark.parametrize("path", ["/tasks/", "/tasks/?state=FAILURE", "/tasks/abc/"])
def test_anonymous_users_are_sent_to_sign_in(path):
    from django.test import Client

    for headers in ({}, {"HX-Request": "true"}):
        response = Client().get(path, headers=headers)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_a_capped_total_of_a_relative_range_is_reused_as_the_range_moves(client, monkeypatch):
    monkeypatch.setattr(task_selectors, "COUNT_CAP", 3)
    for i in range(5):
        task(ago=dt.timedelta(seconds=i), name="many")
    step = task_selectors.CAPPED_TOTAL_SECONDS
    start_of_step = timezone.now().timestamp() // step * step
    since = dt.datetime.fromtimestamp(start_of_step, dt.UTC) - dt.timedelta(hours=1)
    filters = task_selectors.TaskFilters(since=since)
    with CaptureQueriesContext(connection) as queries:
        first = task_selectors.task_page(filters)
        moved = task_selectors.task_page(
            task_selectors.TaskFilters(since=since + dt.timedelta(seconds=1))
        )
        next_step = task_selectors.task_page(
            task_selectors.TaskFilters(
                since=since + dt.timedelta(seconds=task_selectors.CAPPED_TOTAL_SECONDS)
            )
        )
    counted = [q["sql"] for q in queries.captured_queries if "count(*)" in q["sql"]]
    assert first.total_capped and moved.total_capped and next_step.total_capped
    assert len(counted) == 2  # the first range, then the next step; not the moved one
