"""Dead letters end to end: the worker hook, the collector's drain, retry and replay."""

import contextlib
import json
import signal

import pytest
from celery import states
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_celery_results.models import TaskResult
from kombu import Connection, Exchange, Queue

from tasks_admin import services
from tasks_admin.collector.pollers.deadletters import CRASH_BEFORE_ACK_ENV
from tasks_admin.models import CollectorStatus, DeadLetter, TaskRecord, WorkerRecord
from tasks_admin.roles import Actor, Role
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def nested_catalog() -> dict:
    """Nested arguments far past Celery's 1024-character repr, with awkward values."""
    return {
        "source": "partner-\u00e9\u00e8-<b>&",
        "products": [
            {
                "sku": f"SKU-{n:04d}",
                "tags": ["a", "b", {"deep": {"deeper": {"deepest": [n, n * 1.5, None, True]}}}],
                "price_cents": 1999 + n,
            }
            for n in range(40)
        ],
    }


@pytest.fixture
def deadletter_env(cluster, monkeypatch):
    """Per-test dead-letter queue for the workers' hook and the collector's drain."""
    name = f"dl-{cluster.suffix}"
    monkeypatch.setenv("CELERY_DEADLETTER_QUEUE", name)
    monkeypatch.setenv("CONSOLE_DEADLETTER_QUEUES", name)
    monkeypatch.setenv("CONSOLE_DEADLETTER_INTERVAL", "0.3")
    monkeypatch.setenv("CONSOLE_DEADLETTER_VISIBILITY_TIMEOUT", "2")
    yield name
    if cluster.broker_kind == "amqp":
        with Connection(cluster.broker_url) as conn, contextlib.suppress(Exception):
            conn.channel().queue_delete(name)  # may never have been declared


def start_worker(cluster) -> str:
    _, hostname = cluster.worker()
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=True).exists())
    return hostname


def operator() -> Actor:
    user = User.objects.create_user("op", password="not-used-1")
    return Actor(user=user, role=Role.OPERATOR, source="command")


def test_a_failed_task_is_retried_with_its_exact_original_arguments(cluster, deadletter_env):
    cluster.collector()
    start_worker(cluster)
    catalog = nested_catalog()
    assert len(repr(catalog)) > 1024
    sent = cluster.sender().send_task(
        "demo.publish_catalog", (catalog,), {"fail_unless_replayed": True}, queue=cluster.queue
    )

    letter = wait_for(lambda: DeadLetter.objects.filter(task_id=sent.id).first())
    assert (letter.reason, letter.name, letter.source) == ("failed", "demo.publish_catalog", "hook")
    assert letter.args == [catalog]
    assert letter.kwargs == {"fail_unless_replayed": True}
    assert set(letter.embed) == {"callbacks", "errbacks", "chain", "chord"}
    assert letter.queue == cluster.queue
    assert letter.headers["id"] == sent.id
    assert letter.exception.startswith("ConnectionRefusedError(")
    assert "Traceback" in letter.traceback
    # The event's repr was cut by Celery; the dead letter was not.
    original = wait_for(
        lambda: TaskRecord.objects.filter(task_id=sent.id, state=states.FAILURE).first()
    )
    assert len(original.args) < len(json.dumps(catalog))

    result = services.task_retry(actor=operator(), task_id=sent.id)

    new_id = result.data["task_id"]
    assert result.data["source"] == "captured"
    replay = wait_for(
        lambda: TaskRecord.objects.filter(task_id=new_id, state=states.SUCCESS).first(), 40
    )
    assert replay.replay_of == sent.id
    received = json.loads(TaskResult.objects.get(task_id=new_id).result)
    assert received["catalog"] == catalog
    assert received["replay_of"] == sent.id
    letter.refresh_from_db()
    assert (letter.state, letter.replayed_as) == ("replayed", new_id)

    client = Client()
    client.force_login(User.objects.get(username="op"))
    original_page = client.get(reverse("tasks_admin:task", args=[sent.id])).content.decode()
    replay_page = client.get(reverse("tasks_admin:task", args=[new_id])).content.decode()
    assert reverse("tasks_admin:task", args=[new_id]) in original_page
    assert reverse("tasks_admin:task", args=[sent.id]) in replay_page
    assert reverse("tasks_admin:deadletter", args=[letter.pk]) in original_page


def test_a_dead_letter_redelivered_after_the_collector_died_before_its_ack_is_stored_once(
    cluster, deadletter_env, monkeypatch
):
    monkeypatch.setenv(CRASH_BEFORE_ACK_ENV, "1")
    crashing = cluster.collector()
    monkeypatch.delenv(CRASH_BEFORE_ACK_ENV)
    start_worker(cluster)
    sent = cluster.sender().send_task(
        "demo.parse_webhook", ("stripe", "{not json"), queue=cluster.queue
    )

    wait_for(lambda: crashing.popen.poll() is not None, 40)
    assert crashing.popen.returncode == -signal.SIGKILL
    assert DeadLetter.objects.filter(task_id=sent.id).count() == 1  # committed, not acked

    second = cluster.collector()

    node_status = CollectorStatus.objects.filter(node__endswith=f":{second.pid}")

    def duplicate_seen() -> bool:
        status = node_status.first()
        counters = (status.counters if status else {}).get("pollers", {}).get("deadletters", {})
        return counters.get("duplicates", 0) >= 1

    wait_for(duplicate_seen, 40)
    assert DeadLetter.objects.filter(task_id=sent.id).count() == 1
    with Connection(cluster.broker_url) as conn:
        assert Queue(deadletter_env, no_declare=True)(conn.default_channel).get() is None


def test_rabbitmq_dead_lettered_messages_are_drained_with_x_death_and_replayable(
    amqp_cluster, monkeypatch
):
    cluster = amqp_cluster
    dlq, work = f"dlx-{cluster.suffix}", f"ttl-{cluster.suffix}"
    dlx = Exchange(f"dlx-{cluster.suffix}", "direct")
    monkeypatch.setenv("CONSOLE_DEADLETTER_QUEUES", dlq)
    monkeypatch.setenv("CONSOLE_DEADLETTER_INTERVAL", "0.3")
    with Connection(cluster.broker_url) as conn:
        channel = conn.channel()
        Queue(dlq, dlx, routing_key=dlq, durable=True)(channel).declare()
        Queue(
            work,
            Exchange(work, "direct"),
            routing_key=work,
            durable=True,
            queue_arguments={"x-dead-letter-exchange": dlx.name, "x-dead-letter-routing-key": dlq},
        )(channel).declare()
    try:
        cluster.collector()
        # No worker consumes `work`: the message's TTL runs out and RabbitMQ dead-letters it.
        sent = cluster.sender().send_task(
            "demo.add", (2, 3), exchange=work, routing_key=work, expires=1
        )
        letter = wait_for(lambda: DeadLetter.objects.filter(task_id=sent.id).first(), 40)
        assert (letter.source, letter.reason, letter.queue) == ("broker", "expired", work)
        assert letter.x_death[0]["queue"] == work
        assert (letter.args, letter.kwargs, letter.name) == ([2, 3], {}, "demo.add")

        start_worker(cluster)
        result = services.deadletter_replay(actor=operator(), ids=[letter.pk], queue=cluster.queue)

        new_id = result.data["replayed"][str(letter.pk)]
        row = wait_for(
            lambda: TaskRecord.objects.filter(task_id=new_id, state=states.SUCCESS).first(), 40
        )
        assert (row.replay_of, TaskResult.objects.get(task_id=new_id).result) == (sent.id, "5")
    finally:
        with Connection(cluster.broker_url) as conn:
            for name in (dlq, work):
                with contextlib.suppress(Exception):
                    conn.channel().queue_delete(name)


def test_rejected_unknown_and_retries_exhausted_tasks_are_dead_lettered_once(
    cluster, deadletter_env
):
    cluster.collector()
    start_worker(cluster)
    app = cluster.sender()
    exhausted = app.send_task(
        "demo.call_partner_api", ("/orders",), {"backoff": 0.05}, queue=cluster.queue
    )
    rejected = app.send_task("demo.validate_order", ({"id": 7, "lines": []},), queue=cluster.queue)
    unknown = app.send_task("demo.no_such_task", (1,), {"x": [2]}, queue=cluster.queue)

    letter = wait_for(lambda: DeadLetter.objects.filter(task_id=rejected.id).first())
    assert (letter.reason, letter.args) == ("rejected", [{"id": 7, "lines": []}])
    assert (letter.exception_type, "order 7 has no lines" in letter.exception) == ("Reject", True)
    letter = wait_for(lambda: DeadLetter.objects.filter(task_id=unknown.id).first())
    assert (letter.reason, letter.name, letter.args, letter.kwargs) == (
        "unknown",
        "demo.no_such_task",
        [1],
        {"x": [2]},
    )
    assert letter.exception == "NotRegistered('demo.no_such_task')"
    wait_for(lambda: TaskRecord.objects.filter(task_id=exhausted.id, state="FAILURE").exists())
    letter = wait_for(lambda: DeadLetter.objects.filter(task_id=exhausted.id).first())
    assert "(attempt 3)" in letter.exception  # the last of max_retries=3, not a retry
    assert letter.headers["retries"] == 3
    assert DeadLetter.objects.filter(task_id=exhausted.id).count() == 1
