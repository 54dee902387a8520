import datetime as dt
import time
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from tasks_admin import broadcast
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskRecord
from tasks_admin.selectors import task_facts
from tasks_admin.selectors import tasks as task_selectors
from tests import factories
from tests.live.conftest import communicator, connected, group_send, run
from tests.pages.markup import ESCAPED, HOSTILE

pytestmark = pytest.mark.django_db(transaction=True)


def _store(*task_events: list[dict]) -> None:
    BatchWriter(max_chars=65536).write([e for events in task_events for e in events])


def test_anonymous_connection_is_closed_as_signed_out() -> None:
    async def body() -> None:
        ws = communicator("/ws/dashboard/", cookie=None)
        await ws.connect(timeout=10)
        closed = await ws.receive_output(timeout=10)
        assert closed == {"type": "websocket.close", "code": 4401}

    run(body)


def test_connection_from_another_site_is_refused(session_cookie: str) -> None:
    async def body() -> None:
        ws = communicator("/ws/dashboard/", session_cookie, origin=False)
        ok, _ = await ws.connect(timeout=10)
        assert not ok

    run(body)


def test_dashboard_gets_a_snapshot_then_the_group_pushes_and_unregisters_on_close(
    session_cookie: str, watch_set
) -> None:
    async def body() -> None:
        ws, snapshot = await connected("/ws/dashboard/", session_cookie)
        for fragment in ("dashboard-cards", "dashboard-charts", "dashboard-workers"):
            assert f'id="{fragment}"' in snapshot
        assert [m.split(" ")[0] for m in watch_set()] == [broadcast.DASHBOARD]
        await group_send(broadcast.DASHBOARD, broadcast.push('<div id="dashboard-cards">7</div>'))
        assert await ws.receive_from(timeout=5) == '<div id="dashboard-cards">7</div>'
        await group_send(broadcast.WORKERS, broadcast.push('<div id="workers-table"></div>'))
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        assert watch_set() == set()

    run(body)


def test_task_page_snapshot_renders_hostile_values_as_text(session_cookie: str, watch_set) -> None:
    task_id = factories.new_task_id()
    _store(factories.succeeded_task(task_id, name=HOSTILE))

    async def body() -> None:
        ws, snapshot = await connected(
            f"/ws/task/?{urlencode({'task_id': task_id})}", session_cookie
        )
        assert snapshot.startswith('<div id="task-head"') and '<div id="task-body">' in snapshot
        assert ESCAPED in snapshot and HOSTILE not in snapshot
        (member,) = watch_set()
        assert member.startswith(broadcast.task_group(task_id)) and member.endswith(task_id)
        await ws.disconnect()

    run(body)


def test_task_list_relays_its_own_rows_and_counts_new_matching_tasks(session_cookie: str) -> None:
    now = time.time()
    shown = factories.new_task_id()
    _store(factories.succeeded_task(shown, name="demo.add", at=now - 60))
    top = TaskRecord.objects.get(pk=shown)
    cursor = task_selectors.Cursor(top.first_seen_at, top.task_id).encode()
    query = urlencode({"name": "demo.add", "newer_than": cursor})

    def facts(task_id: str, name: str, seen: float, row: str) -> dict:
        return {
            "task_id": task_id,
            "state": "SUCCESS",
            "name": name,
            "worker": "celery@w1",
            "queue": "default",
            "first_seen_at": seen,
            "has_started": True,
            "has_runtime": True,
            "text": "(1, 2)",
            "row": row,
        }

    async def body() -> None:
        ws, snapshot = await connected(f"/ws/tasks/?{query}", session_cookie)
        assert f'data-task-id="{shown}"' in snapshot
        assert 'id="tasks-new"' in snapshot and "No new tasks." in snapshot
        changes = [
            facts(shown, "demo.add", top.first_seen_at.timestamp(), "<tr id='shown'></tr>"),
            facts("new-1", "demo.add", now, "<tr id='new-1'></tr>"),
            facts("new-other", "demo.mul", now, "<tr id='other'></tr>"),
            facts("old-unshown", "demo.add", now - 3600, "<tr id='old'></tr>"),
        ]
        await group_send(broadcast.TASKS, broadcast.tasks_changed(changes))
        frame = await ws.receive_from(timeout=5)
        assert frame.startswith("<tr id='shown'></tr>")
        assert "1 new task — show" in frame
        assert "new-1" not in frame and "other" not in frame and "old" not in frame
        # The same task again is not counted twice; nothing to say means no frame.
        await group_send(broadcast.TASKS, broadcast.tasks_changed(changes[1:3]))
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    run(body)


def test_task_list_snapshot_counts_tasks_that_arrived_after_the_page(session_cookie: str) -> None:
    old, newer = factories.new_task_id(), factories.new_task_id()
    _store(factories.succeeded_task(old, at=time.time() - 120))
    top = TaskRecord.objects.get(pk=old)
    _store(factories.succeeded_task(newer, at=time.time()))
    cursor = task_selectors.Cursor(top.first_seen_at, top.task_id).encode()

    async def body() -> None:
        path = f"/ws/tasks/?{urlencode({'newer_than': cursor})}"
        ws, snapshot = await connected(path, session_cookie)
        assert "1 new task — show" in snapshot
        await ws.disconnect()

    run(body)


def test_task_list_with_a_bad_filter_is_closed_with_a_reason_code(session_cookie: str) -> None:
    async def body() -> None:
        ws = communicator("/ws/tasks/?state=NOPE", session_cookie)
        await ws.connect(timeout=10)
        assert await ws.receive_output(timeout=10) == {"type": "websocket.close", "code": 4400}

    run(body)


def test_matches_agrees_with_the_sql_filters() -> None:
    at = timezone.now() - dt.timedelta(minutes=5)
    task = TaskRecord(
        task_id="abcd-1234",
        name="demo.add",
        state="FAILURE",
        worker="celery@w1",
        queue="q1",
        first_seen_at=at,
        last_event_at=at,
        args="('Needle',)",
        kwargs="{}",
        result="",
        exception="",
    )
    facts = task_facts.task_facts(task)
    yes = [
        task_selectors.TaskFilters(states=("FAILURE",), name="demo.add"),
        task_selectors.TaskFilters(worker="celery@w1", queue="q1"),
        task_selectors.TaskFilters(since=at - dt.timedelta(seconds=1)),
    ]
    no = [
        task_selectors.TaskFilters(states=("SUCCESS",)),
        task_selectors.TaskFilters(name="demo.mul"),
        task_selectors.TaskFilters(until=at - dt.timedelta(seconds=1)),
        task_selectors.TaskFilters(sort="started"),
    ]
    assert all(task_facts.matches(f, "list", facts) for f in yes)
    assert not any(task_facts.matches(f, "list", facts) for f in no)
    text = task_selectors.TaskFilters(search="needle")
    assert task_facts.matches(text, "text", facts)
    assert not task_facts.matches(task_selectors.TaskFilters(search="hay"), "text", facts)
    assert task_facts.matches(task_selectors.TaskFilters(search="abcd"), "prefix", facts)
