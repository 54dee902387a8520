"""The workers list and the worker page against the real database."""

import datetime as dt
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskRecord, WorkerRecord
from tests import factories
from tests.pages.markup import ESCAPED, HOSTILE, is_partial, text_of

pytestmark = pytest.mark.django_db


def worker(hostname: str = "celery@w1", *, online=True, **fields) -> WorkerRecord:
    now = timezone.now()
    defaults = {
        "first_seen_at": now - dt.timedelta(hours=2),
        "online_at": now - dt.timedelta(hours=1),
        "last_heartbeat_at": now - dt.timedelta(seconds=1),
        "updated_at": now,
        "sw_ident": "py-celery",
        "sw_ver": "5.5.3",
        "pool": "prefork",
        "concurrency": 8,
        "queues": ["default", "emails"],
        "active": 2,
        "processed": 4321,
        "loadavg": [1.5, 1.25, 1.0],
    }
    return WorkerRecord.objects.create(
        hostname=hostname, is_online=online, **{**defaults, **fields}
    )


def started_task(hostname: str, *, name: str = "demo.slow", at: float | None = None) -> str:
    """A task the worker received and started, as the collector stores it."""
    task_id = factories.new_task_id()
    at = at or time.time()
    BatchWriter(max_chars=65536).write(
        [
            factories.event(
                "task-received",
                task_id,
                at=at,
                hostname=hostname,
                name=name,
                args="()",
                kwargs="{}",
                retries=0,
                root_id=task_id,
                parent_id=None,
            ),
            factories.event("task-started", task_id, at=at + 0.01, hostname=hostname),
        ]
    )
    return task_id


def get(client, url: str, *, htmx=False) -> str:
    response = client.get(url, headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == 200
    return response.content.decode()


def test_workers_page_is_a_full_page_and_an_htmx_partial(client):
    worker()
    page = get(client, "/workers/")
    assert "<html" in page and 'id="workers-table"' in page
    partial = get(client, "/workers/", htmx=True)
    assert is_partial(partial)
    assert 'id="workers-table"' in partial and "celery@w1" in partial


def test_workers_table_shows_status_heartbeat_version_pool_queues_and_counts(client):
    worker("celery@w1")
    worker("celery@old", online=False, sw_ver="5.4.0", queues=[])
    html = get(client, "/workers/")
    table = text_of(html, "workers-table")
    assert "1 online, 1 offline; 2 tasks running." in table
    assert "celery@w1 online" in table
    assert "py-celery 5.5.3 prefork 8 default emails 2 4,321 1.50 1.25 1.00" in table
    assert "celery@old offline" in table
    assert table.index("celery@w1") < table.index("celery@old")
    assert f'href="{reverse("tasks_admin:worker", args=["celery@w1"])}"' in html


def test_a_worker_whose_heartbeats_stopped_is_flagged(client):
    worker(last_heartbeat_at=timezone.now() - dt.timedelta(seconds=30), heartbeat_freq=2.0)
    html = get(client, "/workers/")
    assert 'class="fail" title="No heartbeat for longer than twice its interval"' in html


def test_worker_page_is_a_full_page_and_an_htmx_partial(client):
    worker()
    page = get(client, "/workers/celery@w1/")
    assert "<html" in page and 'id="worker-body"' in page
    partial = get(client, "/workers/celery@w1/", htmx=True)
    assert is_partial(partial) and 'id="worker-body"' in partial


def test_worker_page_shows_every_field_of_the_worker(client):
    worker(registered=["demo.add", "demo.slow"], pid=4242)
    body = text_of(get(client, "/workers/celery@w1/"), "worker-body")
    for expected in (
        "py-celery 5.5.3",
        "prefork, concurrency 8",
        "Queues consumed default emails",
        "Active 2",
        "Processed 4,321",
        "Load average 1.50 1.25 1.00",
        "PID 4242",
        "Registered tasks (2) demo.add demo.slow",
    ):
        assert expected in body


def test_worker_page_lists_the_tasks_it_is_running_now(client):
    worker("celery@w1")
    worker("celery@w2")
    running = started_task("celery@w1", name="demo.slow")
    elsewhere = started_task("celery@w2", name="demo.other")
    finished = factories.succeeded_task(name="demo.done")
    BatchWriter(max_chars=65536).write(finished)  # ran on celery@worker-1, the default
    done_here = factories.new_task_id()
    BatchWriter(max_chars=65536).write(
        [
            factories.event(
                "task-received",
                done_here,
                at=time.time(),
                hostname="celery@w1",
                name="demo.quick",
                args="()",
                kwargs="{}",
                retries=0,
            ),
            factories.event("task-started", done_here, at=time.time(), hostname="celery@w1"),
            factories.event(
                "task-succeeded",
                done_here,
                at=time.time(),
                hostname="celery@w1",
                result="1",
                runtime=0.01,
            ),
        ]
    )
    assert TaskRecord.objects.get(task_id=running).state == "STARTED"
    html = get(client, "/workers/celery@w1/")
    started = text_of(html, "worker-started")
    assert f"demo.slow {running} STARTED" in started
    assert elsewhere not in started and done_here not in started
    recent = text_of(html, "worker-recent")
    assert running in recent and done_here in recent and elsewhere not in recent
    assert f'href="{reverse("tasks_admin:task", args=[running])}"' in html


def test_worker_page_lists_reserved_tasks_from_inspect_escaped(client):
    worker()
    assert "Not inspected yet." in text_of(get(client, "/workers/celery@w1/"), "worker-reserved")
    waiting = {"task_id": "r-1", "name": HOSTILE, "args": "(1,)", "kwargs": "{}", "queue": "q"}
    WorkerRecord.objects.filter(hostname="celery@w1").update(
        reserved=[waiting], reserved_count=3, inspected_at=timezone.now()
    )
    html = get(client, "/workers/celery@w1/")
    reserved = text_of(html, "worker-reserved")
    assert f"r-1 {HOSTILE} (1,) {{}} q" in reserved and "Showing 1 of 3." in reserved
    assert HOSTILE not in html and f'href="{reverse("tasks_admin:task", args=["r-1"])}"' in html


def test_inspect_json_is_shown_escaped_and_folded(client):
    worker(stats={"broker": {"hostname": "<b>redis</b>"}}, conf={"task_routes": HOSTILE})
    html = get(client, "/workers/celery@w1/")
    inspect = text_of(html, "worker-inspect")
    assert '"hostname": "<b>redis</b>"' in inspect  # the text, as the worker reported it
    assert "<b>redis</b>" not in html and HOSTILE not in html
    assert "&lt;b&gt;redis&lt;/b&gt;" in html and ESCAPED in html
    assert "<details" in html


def test_an_unknown_worker_is_not_found(client):
    assert client.get("/workers/celery@nobody/").status_code == 404


def test_a_hostile_hostname_is_text_on_the_list_and_its_own_page(client):
    worker(HOSTILE, queues=[HOSTILE])
    started_task(HOSTILE, name=HOSTILE)
    listing = get(client, "/workers/")
    url = reverse("tasks_admin:worker", args=[HOSTILE])
    assert HOSTILE not in listing and ESCAPED in listing
    page = get(client, url)
    assert HOSTILE not in page
    assert page.count(ESCAPED) >= 4  # title, heading, queue, task name
    assert HOSTILE in text_of(page, "worker-started")


def test_a_task_id_no_url_can_carry_is_listed_without_a_link(client):
    worker()
    now = timezone.now()
    TaskRecord.objects.create(
        task_id="odd/id",
        name="demo.slow",
        state="STARTED",
        worker="celery@w1",
        first_seen_at=now,
        last_event_at=now,
        updated_at=now,
    )
    started = text_of(get(client, "/workers/celery@w1/"), "worker-started")
    assert "demo.slow odd/id STARTED" in started
