"""The task page: every field, the timeline with retries, lineage, escaping, 404."""

import datetime as dt
import html as htmllib
import re

import pytest
from django.utils import timezone

from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskRecord
from tasks_admin.selectors import task_story as task_selectors
from tests import factories
from tests.pages.markup import ESCAPED, HOSTILE, is_partial

pytestmark = pytest.mark.django_db


def write(events: list[dict]) -> None:
    BatchWriter(max_chars=65536).write(events)


def task(task_id: str, *, ago: dt.timedelta = dt.timedelta(minutes=1), **fields) -> TaskRecord:
    at = timezone.now() - ago
    fields.setdefault("state", "SUCCESS")
    return TaskRecord.objects.create(
        task_id=task_id, first_seen_at=at, last_event_at=at, updated_at=at, **fields
    )


def get(client, task_id: str, *, htmx=False, status=200) -> str:
    response = client.get(f"/tasks/{task_id}/", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code == status
    return response.content.decode()


def links(body: str) -> list[str]:
    return [htmllib.unescape(h) for h in re.findall(r'href="/tasks/([^"/]+)/"', body)]


def test_task_page_is_a_full_page_and_an_htmx_partial(client):
    events = factories.succeeded_task(name="demo.add")
    write(events)
    task_id = events[0]["uuid"]
    page = get(client, task_id)
    assert "<html" in page and 'id="task-body"' in page and "demo.add" in page
    partial = get(client, task_id, htmx=True)
    assert is_partial(partial) and "demo.add" in partial and 'id="task-page"' not in partial
    assert "Timeline" in partial


def test_task_page_shows_every_field(client):
    now = timezone.now()
    t = task(
        "full-1",
        name="demo.everything",
        state="FAILURE",
        worker="celery@w1",
        queue="hipri",
        exchange="ex",
        routing_key="rk.1",
        retries=2,
        runtime=1.5,
        root_id="root-1",
        parent_id="parent-1",
        group_id="group-1",
        args="(1, 2)",
        kwargs="{'x': 'y'}",
        result="",
        exception="ValueError('bad input')",
        exception_type="ValueError",
        traceback="Traceback (most recent call last):\nValueError: bad input",
        revoke_signal="SIGTERM",
        replay_of="orig-1",
        sent_at=now,
        received_at=now,
        started_at=now,
        failed_at=now,
        eta=now,
        expires=now,
    )
    page = htmllib.unescape(get(client, t.task_id))
    for text in (
        "demo.everything",
        "FAILURE",
        "celery@w1",
        "hipri",
        "rk.1",
        "1.500000 s",
        "root-1",
        "parent-1",
        "group-1",
        "orig-1",
        "(1, 2)",
        "{'x': 'y'}",
        "ValueError('bad input')",
        "ValueError: bad input",
        "SIGTERM",
    ):
        assert text in page, text
    assert 'href="/workers/celery@w1/"' in page
    assert "event_keys" not in page and "last_event_clock" not in page


def test_a_reconciled_task_says_its_final_state_came_from_the_result_backend(client):
    t = task("rec-1", reconciled=True)
    assert "final state from the result backend" in get(client, t.task_id)


def test_long_values_are_folded_and_have_a_copy_button(client):
    t = task("long-1", args="('" + "x" * 1000 + "',)", kwargs="{}")
    page = get(client, t.task_id)
    assert '<details class="fold">' in page and 'id="task-args"' in page
    assert 'data-copy="task-args"' in page and "data-js-only hidden" in page
    assert 'src="/static/console/tasks.js"' in page


def test_the_timeline_shows_every_event_of_a_retried_task_in_order(client):
    events = factories.retried_then_succeeded_task()
    write(events)
    task_id = events[0]["uuid"]
    page = get(client, task_id, htmx=True)
    types = re.findall(r"<code>(task-[a-z]+)</code>", page)
    assert types == [
        "task-received",
        "task-started",
        "task-received",
        "task-retried",
        "task-started",
        "task-succeeded",
    ]
    assert "ConnectionError(&#x27;boom&#x27;)" in page and "<dt>retries</dt>" in page
    assert "<dt>runtime</dt><dd><code>0.1</code>" in page
    assert "2.100" in page  # the success, 2.1 s after the first event
    assert TaskRecord.objects.get(pk=task_id).retries == 1


def test_a_retry_is_not_listed_as_its_own_parent_or_child(client):
    events = factories.retried_then_succeeded_task()
    write(events)
    task_id = events[0]["uuid"]
    assert TaskRecord.objects.get(pk=task_id).parent_id == task_id  # what Celery records
    story = task_selectors.task_story(task_id)
    assert story.lineage.parent_id == "" and story.lineage.children.rows == []


def test_lineage_of_a_chain_links_root_parent_children_and_workflow(client):
    task("chain-a", root_id="chain-a", ago=dt.timedelta(minutes=3), name="step.a")
    task("chain-b", root_id="chain-a", parent_id="chain-a", ago=dt.timedelta(minutes=2))
    task("chain-c", root_id="chain-a", parent_id="chain-b", ago=dt.timedelta(minutes=1))
    middle = get(client, "chain-b")
    lineage = middle[middle.index('class="panel lineage"') :]
    assert "chain-a" in links(lineage) and "chain-c" in links(lineage)
    assert "Root" in lineage and "Parent" in lineage and "Children" in lineage
    story = task_selectors.task_story("chain-b")
    assert story.lineage.root.task_id == "chain-a" and story.lineage.parent.task_id == "chain-a"
    assert [r.task_id for r in story.lineage.children.rows] == ["chain-c"]
    assert [r.task_id for r in story.lineage.workflow.rows] == ["chain-c"]
    root = task_selectors.task_story("chain-a")
    assert root.lineage.root_id == "" and [r.task_id for r in root.lineage.children.rows] == [
        "chain-b"
    ]
    assert [r.task_id for r in root.lineage.workflow.rows] == ["chain-b", "chain-c"]


def test_group_siblings_are_listed_with_a_capped_more_note(client, monkeypatch):
    monkeypatch.setattr(task_selectors, "LINEAGE_CAP", 3)
    monkeypatch.setattr(task_selectors, "LINEAGE_COUNT_CAP", 4)
    for i in range(6):
        task(f"g-{i}", group_id="grp", ago=dt.timedelta(seconds=10 - i))
    story = task_selectors.task_story("g-0")
    assert len(story.lineage.group.rows) == 3 and story.lineage.group.more
    assert story.lineage.group.total_display == "4+"
    page = get(client, "g-0")
    assert "Group siblings" in page and "3 of 4+ shown" in page


def test_replays_and_the_original_are_linked(client):
    task("orig-9", state="FAILURE")
    task("replay-9", replay_of="orig-9")
    original = get(client, "orig-9")
    assert "Replays" in original and "replay-9" in links(original)
    replay = get(client, "replay-9")
    assert "Replay of" in replay and "orig-9" in links(replay)


def test_a_parent_the_console_never_saw_is_named_without_a_link(client):
    task("orphan-1", parent_id="ghost-1", root_id="ghost-1")
    page = get(client, "orphan-1")
    assert "ghost-1" in page and "(not recorded)" in page and "ghost-1" not in links(page)


def test_an_unknown_task_is_a_404_page_and_a_404_partial(client):
    page = get(client, "no-such-task", status=404)
    assert "<html" in page and "no-such-task" in page and "no record of task" in page
    partial = get(client, "no-such-task", htmx=True, status=404)
    assert is_partial(partial) and "no record of task" in partial


def test_a_nul_in_the_id_is_a_404_not_a_500(client):
    assert "no record" in get(client, "a%00b", status=404)


def test_hostile_task_data_is_escaped_on_the_page_and_the_partial(client):
    task_id = factories.new_task_id()
    host = HOSTILE
    write(
        [
            factories.event(
                "task-received",
                task_id,
                at=timezone.now().timestamp() - 2,
                hostname=host,
                name=HOSTILE,
                args=HOSTILE,
                kwargs=HOSTILE,
                retries=0,
            ),
            factories.event(
                "task-failed",
                task_id,
                at=timezone.now().timestamp() - 1,
                hostname=host,
                exception=HOSTILE,
                traceback=HOSTILE,
                result=HOSTILE,
            ),
        ]
    )
    TaskRecord.objects.filter(pk=task_id).update(result=HOSTILE, group_id=HOSTILE)
    task("sibling-1", group_id=HOSTILE, name=HOSTILE)
    for body in (get(client, task_id), get(client, task_id, htmx=True)):
        assert "<script>alert" not in body
        assert body.count(ESCAPED) >= 8  # name, args, kwargs, result, exception, worker, ...
    row = TaskRecord.objects.get(pk=task_id)
    assert (row.name, row.worker, row.exception) == (HOSTILE, HOSTILE, HOSTILE)


def test_anonymous_users_are_sent_to_sign_in_from_a_task_page():
    from django.test import Client

    task("private-1")
    for headers in ({}, {"HX-Request": "true"}):
        response = Client().get("/tasks/private-1/", headers=headers)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_task_controls_are_rendered_for_the_user_and_never_in_pushed_fragments(
    client, django_user_model
):
    from django.contrib.auth.models import Group

    from tasks_admin import fragments
    from tasks_admin.roles import GROUP_NAMES, Role

    events = factories.succeeded_task()
    write(events[:3])  # sent, received, started: running
    task_id = events[0]["uuid"]
    url = f"/task-controls/?task_id={task_id}"
    assert "Terminate" not in client.get(url).content.decode()  # the signed-in viewer
    operator = django_user_model.objects.create_user("op", password="not-used-1")
    operator.groups.add(Group.objects.create(name=GROUP_NAMES[Role.OPERATOR]))
    client.force_login(operator)
    controls = client.get(url).content.decode()
    assert 'id="task-controls" data-state="STARTED"' in controls and "Terminate" in controls
    assert "csrfmiddlewaretoken" in controls
    assert "<form" not in fragments.task(task_id)
    assert client.get("/task-controls/?task_id=nope").status_code == 404
