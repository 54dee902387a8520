"""Retry without a captured message: rebuilt only from complete plain-literal reprs."""

import datetime as dt

import pytest
from django.utils import timezone
from kombu import Connection

from tasks_admin import services
from tasks_admin.models import AuditEntry, TaskRecord
from tasks_admin.roles import Actor, Role
from tasks_admin.services.replay import rebuild_arguments
from tests import factories
from tests.integration.conftest import BROKERS

pytestmark = pytest.mark.django_db


class _User:
    username = "ada"


OPERATOR = Actor(user=_User(), role=Role.OPERATOR, source="api", address="10.0.0.9")


def task(state: str = "FAILURE", **fields) -> TaskRecord:
    at = timezone.now() - dt.timedelta(minutes=1)
    fields.setdefault("name", "demo.add")
    return TaskRecord.objects.create(
        task_id=factories.new_task_id(),
        state=state,
        first_seen_at=at,
        last_event_at=at,
        updated_at=at,
        **fields,
    )


def test_complete_plain_literal_reprs_are_rebuilt():
    row = task(args="(1, [2, 'x'], None)", kwargs="{'a': {'b': True}}")
    assert rebuild_arguments(row) == ([1, [2, "x"], None], {"a": {"b": True}})


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ("(" + "1, " * 400 + "1)", "Celery cut it at 1024"),
        ("([1, [2, [3, [...]]]],)", "shortened by Celery"),
        ("(Decimal('1.5'),)", "not a plain Python literal"),
        ("({1, 2},)", "JSON cannot carry"),
        ("", "never recorded"),
    ],
)
def test_incomplete_or_non_literal_reprs_are_refused_with_the_reason(args, why):
    row = task(args=args, kwargs="{}")
    with pytest.raises(services.ActionConflict, match=why) as error:
        services.task_retry(actor=OPERATOR, task_id=row.task_id)
    assert "tasks_admin.deadletter.install(app)" in error.value.detail
    entry = AuditEntry.objects.get(action="task.retry")
    assert (entry.outcome, entry.targets) == ("failed", [row.task_id])


@pytest.mark.parametrize("state", ["STARTED", "RECEIVED", "PENDING", "SUCCESS", "RETRY"])
def test_running_queued_and_succeeded_tasks_are_not_retried(state):
    row = task(state, args="(1, 2)", kwargs="{}")
    with pytest.raises(services.ActionConflict, match=f"is {state}"):
        services.task_retry(actor=OPERATOR, task_id=row.task_id)


def test_an_unknown_task_is_not_found():
    with pytest.raises(services.ActionNotFound):
        services.task_retry(actor=OPERATOR, task_id="no-such-task")


def test_a_viewer_may_not_retry():
    row = task(args="(1, 2)", kwargs="{}")
    viewer = Actor(user=_User(), role=Role.VIEWER, source="api")
    with pytest.raises(services.ActionRefused):
        services.task_retry(actor=viewer, task_id=row.task_id)
    assert AuditEntry.objects.get().outcome == "refused"


def test_a_rebuilt_retry_is_marked_and_linked(settings):
    queue = f"rebuilt-{factories.new_task_id()[:8]}"
    row = task(args="(1, 2)", kwargs="{}", queue="default")

    result = services.task_retry(actor=OPERATOR, task_id=row.task_id, queue=queue)

    assert result.data["source"] == "rebuilt"
    assert "REBUILT" in result.detail
    new = TaskRecord.objects.get(task_id=result.data["task_id"])
    assert (new.state, new.replay_of, new.queue) == ("PENDING", row.task_id, queue)
    with Connection(BROKERS["redis"]) as conn:
        message = conn.SimpleQueue(queue, no_ack=True).get(timeout=2)
    assert message.payload[:2] == [[1, 2], {}]
    assert (message.headers["replay_of"], message.headers["replay_rebuilt"]) == (row.task_id, True)


def test_a_captured_message_is_republished_with_retries_reset_and_chord_stripped():
    queue = f"captured-{factories.new_task_id()[:8]}"
    row = task(args="(1, 2)", kwargs="{}")
    letter = factories.dead_letter(
        row.task_id,
        name="demo.add",
        args=[1, 2],
        kwargs={},
        embed={"callbacks": [{"task": "demo.next"}], "chord": {"task": "demo.body"}},
        headers={
            "id": row.task_id,
            "task": "demo.add",
            "retries": 3,
            "group": "g-1",
            "group_index": 2,
            "root_id": row.task_id,
            "eta": "2020-01-01T00:00:00+00:00",
            "x-death": [{"queue": "x"}],
        },
        queue=queue,
        routing_key=queue,
    )

    result = services.task_retry(actor=OPERATOR, task_id=row.task_id)

    new_id = result.data["task_id"]
    assert (result.data["source"], result.data["dead_letter"]) == ("captured", letter.pk)
    with Connection(BROKERS["redis"]) as conn:
        message = conn.SimpleQueue(queue, no_ack=True).get(timeout=2)
    headers = message.headers
    assert (headers["id"], headers["retries"], headers["eta"], headers["group"]) == (
        new_id,
        0,
        None,
        None,
    )
    assert headers["root_id"] == new_id
    assert "x-death" not in headers
    assert message.payload == [
        [1, 2],
        {},
        {"callbacks": [{"task": "demo.next"}], "chord": None},
    ]
    letter.refresh_from_db()
    assert (letter.state, letter.replayed_as, letter.replayed_by) == ("replayed", new_id, "ada")


def test_a_broker_that_does_not_answer_is_a_503_and_nothing_changes(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens
    letter = factories.dead_letter()

    with pytest.raises(services.ActionUnavailable, match="nothing was published") as error:
        services.deadletter_replay(actor=OPERATOR, ids=[letter.pk])

    assert error.value.status == 503
    letter.refresh_from_db()
    assert letter.state == "new"
    assert not TaskRecord.objects.exists()
    assert AuditEntry.objects.get(action="deadletter.replay").outcome == "failed"


def test_a_dead_letter_is_replayed_once_and_the_second_attempt_says_as_what():
    queue = f"once-{factories.new_task_id()[:8]}"
    letter = factories.dead_letter(queue=queue, routing_key=queue)
    first = services.deadletter_replay(actor=OPERATOR, ids=[letter.pk])
    new_id = first.data["replayed"][str(letter.pk)]

    with pytest.raises(services.ActionConflict, match=f"already replayed as {new_id}"):
        services.deadletter_replay(actor=OPERATOR, ids=[letter.pk, 999_999])

    with Connection(BROKERS["redis"]) as conn:
        simple = conn.SimpleQueue(queue, no_ack=True)
        assert simple.get(timeout=2).headers["id"] == new_id
        with pytest.raises(simple.Empty):
            simple.get(timeout=0.5)
    assert TaskRecord.objects.filter(replay_of=letter.task_id).count() == 1
