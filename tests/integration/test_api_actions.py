"""The /api/v1 actions against real brokers and real Celery workers, on Redis and
RabbitMQ: retry a dead letter a worker captured, revoke a queued task, control a
worker, purge a queue, all over HTTP with bearer tokens."""

import json
from collections.abc import Iterator

import pytest
from celery import states
from django.contrib.auth.models import Group
from django.test import Client
from django_celery_results.models import TaskResult

from tasks_admin import services
from tasks_admin.collector.brokers import queue_depths
from tasks_admin.models import AuditEntry, DeadLetter, TaskEvent, TaskRecord
from tasks_admin.roles import GROUP_NAMES, Actor, Role
from tasks_admin.services.broker import broker_connection, celery_app
from tests.api.helpers import forget_broker_connections
from tests.integration.conftest import Cluster, wait_for
from tests.integration.test_actions import declare, seen, worker
from tests.integration.test_deadletters import (
    deadletter_env,  # noqa: F401 (a fixture)
    nested_catalog,
    start_worker,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def brokered(cluster, settings, monkeypatch) -> Iterator[Cluster]:
    """The console's services publish to the cluster's broker (settings and environment)."""
    settings.CELERY_BROKER_URL = cluster.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", cluster.broker_url)
    forget_broker_connections()
    yield cluster
    forget_broker_connections()


def api(django_user_model, role: Role):
    """A client posting JSON with a bearer token of ``role``."""
    user = django_user_model.objects.create_user(f"api-{role.label}", password="not-used-1")
    if role is not Role.VIEWER:
        user.groups.add(Group.objects.get_or_create(name=GROUP_NAMES[role])[0])
    _, raw = services.api_token_create(
        actor=Actor(user=user, role=role, source="command"), name="it", role=role
    )
    client = Client(headers={"Authorization": f"Bearer {raw}"})

    def post(path: str, body: dict | None = None):
        return client.post(path, body or {}, content_type="application/json")

    return post


@pytest.mark.usefixtures("deadletter_env")
def test_a_dead_letter_captured_by_a_worker_is_retried_over_the_api_with_its_arguments(
    brokered, django_user_model
):
    brokered.collector()
    start_worker(brokered)
    catalog = nested_catalog()
    sent = brokered.sender().send_task(
        "demo.publish_catalog", (catalog,), {"fail_unless_replayed": True}, queue=brokered.queue
    )
    letter = wait_for(lambda: DeadLetter.objects.filter(task_id=sent.id).first())
    wait_for(lambda: TaskRecord.objects.filter(task_id=sent.id, state=states.FAILURE).exists())
    post = api(django_user_model, Role.OPERATOR)

    response = post(f"/api/v1/tasks/{sent.id}/retry/")

    assert response.status_code == 200, response.content
    result = response.json()["result"]
    new_id = result["task_id"]
    assert result == {
        "task_id": new_id,
        "replay_of": sent.id,
        "source": "captured",
        "dead_letter": letter.pk,
        "queue": brokered.queue,
    }
    replay = wait_for(
        lambda: TaskRecord.objects.filter(task_id=new_id, state=states.SUCCESS).first(), 40
    )
    assert replay.replay_of == sent.id
    received = json.loads(TaskResult.objects.get(task_id=new_id).result)
    assert received["catalog"] == catalog
    entry = AuditEntry.objects.get(action="task.retry")
    assert (entry.source, entry.outcome, entry.targets) == ("api", "succeeded", [sent.id])
    # The letter is replayed now: replaying it again over the API is a conflict.
    again = post(f"/api/v1/dead-letters/{letter.pk}/replay/")
    assert again.status_code == 409
    assert f"replayed as {new_id}" in again.json()["detail"]


def test_a_queued_task_revoked_over_the_api_never_runs(brokered, django_user_model):
    brokered.collector("--no-pollers")
    # Online but not consuming the task's queue: it holds the revoke for the newcomer.
    _, holder = worker(brokered, "holder", f"other-{brokered.suffix}")
    declare(brokered, brokered.queue)
    sent = brokered.sender().send_task("demo.add", (2, 3), queue=brokered.queue)
    seen(sent.id, states.PENDING)
    post = api(django_user_model, Role.OPERATOR)

    response = post(f"/api/v1/tasks/{sent.id}/revoke/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"]["task_id"] == sent.id
    assert list(body["result"]["replies"]) == [holder]
    assert "1 worker acknowledged" in body["detail"]
    worker(brokered, "late", brokered.queue, mingle=True)
    row = seen(sent.id, states.REVOKED)
    assert row.started_at is None
    assert not TaskEvent.objects.filter(task_id=sent.id, type="task-started").exists()
    # Worker control answers with the worker's own reply (admin only).
    admin = api(django_user_model, Role.ADMIN)
    grown = admin(f"/api/v1/workers/{holder}/control/", {"command": "pool_grow", "n": 1})
    assert grown.status_code == 200, grown.content
    assert grown.json()["result"] == {
        "hostname": holder,
        "command": "pool_grow",
        "arguments": {"n": 1},
        "reply": {"ok": "pool will grow"},
    }
    refused = admin(
        f"/api/v1/workers/{holder}/control/", {"command": "autoscale", "max": 4, "min": 1}
    )
    assert refused.status_code == 409
    assert "Autoscale not enabled" in refused.json()["detail"]


def test_a_queue_purged_over_the_api_is_empty_and_the_answer_says_how_many_went(
    brokered, django_user_model
):
    declare(brokered, brokered.queue)
    sender = brokered.sender()
    for i in range(5):
        sender.send_task("demo.add", (i, 1), queue=brokered.queue)
    app = celery_app()
    with broker_connection() as conn:
        assert queue_depths(app, [brokered.queue], connection=conn)[brokered.queue][0] == 5
    post = api(django_user_model, Role.ADMIN)

    mistyped = post(f"/api/v1/queues/{brokered.queue}/purge/", {"confirm": "it-"})
    assert mistyped.status_code == 400
    response = post(f"/api/v1/queues/{brokered.queue}/purge/", {"confirm": brokered.queue})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "detail": f"Purged 5 messages from queue {brokered.queue}.",
        "result": {"queue": brokered.queue, "purged": 5},
    }
    with broker_connection() as conn:
        assert queue_depths(app, [brokered.queue], connection=conn)[brokered.queue][0] == 0
    outcomes = list(
        AuditEntry.objects.filter(action="queue.purge")
        .order_by("id")
        .values_list("outcome", "source")
    )
    assert outcomes == [("failed", "api"), ("succeeded", "api")]
