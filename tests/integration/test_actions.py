"""Actions against real brokers and real Celery workers, on Redis and on RabbitMQ:
revoke, terminate, bulk revoke, purge and worker control, through the services."""

import re
import socket
import sys
import time
import uuid

import pytest
from celery import states
from django.contrib.auth import get_user_model

from tasks_admin import services
from tasks_admin.collector.brokers import queue_depths
from tasks_admin.models import AuditEntry, BulkRun, TaskEvent, TaskRecord
from tasks_admin.roles import Actor, Role
from tasks_admin.selectors.tasks import TaskFilters
from tasks_admin.services.broker import (
    broadcast,
    broker_connection,
    celery_app,
    replies_by_worker,
)
from tests.integration.conftest import Cluster, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def brokered(cluster, settings, monkeypatch) -> Cluster:
    """The cluster, with the console's services pointed at its broker (and the test's
    sender app too: Celery prefers CELERY_BROKER_URL from the environment to its config)."""
    settings.CELERY_BROKER_URL = cluster.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", cluster.broker_url)
    return cluster


@pytest.fixture
def admin() -> Actor:
    user = get_user_model().objects.create_user("root", password="not-used-1")
    return Actor(user=user, role=Role.ADMIN, source="page", address="127.0.0.1")


def worker(cluster: Cluster, name: str, queue: str, *, mingle: bool = False, concurrency=2):
    """A worker of the console's app consuming ``queue``; with mingle it learns the revokes
    the workers already online hold when it starts (Celery's ``hello``)."""
    hostname = f"{name}-{cluster.suffix}@{socket.gethostname()}"
    args = [sys.executable, "-m", "celery", "-A", "console", "worker", "-E", "-Q", queue]
    args += ["-c", str(concurrency), "-n", hostname, "--without-gossip", "--loglevel=INFO"]
    if not mingle:
        args.append("--without-mingle")
    proc = cluster.spawn(name, args)
    wait_for(lambda: _answers_ping(hostname), 40)
    return proc, hostname


def _answers_ping(hostname: str) -> bool:
    return bool(broadcast("ping", destination=[hostname], timeout=1))


def declare(cluster: Cluster, queue: str) -> None:
    """Declare ``queue`` as a monitored app's workers would have (RabbitMQ drops messages
    sent to a queue nobody declared)."""
    from kombu import Exchange, Queue

    # What Celery makes of a queue name: an exchange of the same name, routing key too.
    with broker_connection() as conn:
        Queue(queue, Exchange(queue, "direct"), routing_key=queue).bind(
            conn.default_channel
        ).declare()


def seen(task_id: str, state: str, timeout: float = 40.0) -> TaskRecord:
    return wait_for(
        lambda: TaskRecord.objects.filter(task_id=task_id, state=state).first(), timeout
    )


def test_revoked_queued_task_never_runs_and_ends_revoked(brokered, admin):
    brokered.collector("--no-pollers")
    # Online but not consuming the task's queue: it holds the revoke for the newcomer.
    worker(brokered, "holder", f"other-{brokered.suffix}")
    declare(brokered, brokered.queue)
    sent = brokered.sender().send_task("demo.add", (2, 3), queue=brokered.queue)
    seen(sent.id, states.PENDING)

    result = services.task_revoke(actor=admin, task_id=sent.id)

    assert "1 worker acknowledged" in result.detail
    worker(brokered, "late", brokered.queue, mingle=True)
    row = seen(sent.id, states.REVOKED)
    assert row.started_at is None and row.result == ""
    assert not TaskEvent.objects.filter(task_id=sent.id, type="task-started").exists()
    entry = AuditEntry.objects.get(action="task.revoke")
    assert (entry.targets, entry.outcome, entry.source) == ([sent.id], "succeeded", "page")


def test_terminated_running_task_ends_revoked(brokered, admin):
    brokered.collector("--no-pollers")
    _, hostname = worker(brokered, "runner", brokered.queue)
    sent = brokered.sender().send_task(
        "demo.generate_report", (7,), {"seconds": 120}, queue=brokered.queue
    )
    seen(sent.id, states.STARTED)

    result = services.task_terminate(actor=admin, task_id=sent.id, signal="SIGTERM")

    assert result.data["terminated_on"] == [hostname]
    row = seen(sent.id, states.REVOKED)
    assert row.succeeded_at is None
    assert AuditEntry.objects.get(action="task.terminate").params == {"signal": "SIGTERM"}


def test_finished_task_cannot_be_revoked_or_terminated_with_a_bad_signal(brokered, admin):
    brokered.collector("--no-pollers")
    worker(brokered, "quick", brokered.queue)
    sent = brokered.sender().send_task("demo.add", (1, 1), queue=brokered.queue)
    seen(sent.id, states.SUCCESS)

    with pytest.raises(services.ActionConflict, match="already SUCCESS"):
        services.task_revoke(actor=admin, task_id=sent.id)
    with pytest.raises(services.ActionInvalid, match="Unknown signal 'SIGBOGUS'"):
        services.task_terminate(actor=admin, task_id=sent.id, signal="SIGBOGUS")
    with pytest.raises(services.ActionNotFound):
        services.task_revoke(actor=admin, task_id="no-such-task")
    outcomes = list(AuditEntry.objects.order_by("id").values_list("action", "outcome"))
    assert outcomes == [
        ("task.revoke", "failed"),
        ("task.terminate", "failed"),
        ("task.revoke", "failed"),
    ]


def test_bulk_revoke_counts_first_then_revokes_every_matching_queued_task(brokered, admin):
    brokered.collector("--no-pollers")
    worker(brokered, "holder", f"other-{brokered.suffix}")
    declare(brokered, brokered.queue)
    sender = brokered.sender()
    sent = [sender.send_task("demo.add", (i, i), queue=brokered.queue) for i in range(5)]
    for result in sent:
        seen(result.id, states.PENDING)
    filters = TaskFilters(queue=brokered.queue)

    dry = services.tasks_bulk(actor=admin, action="revoke", filters=filters, dry_run=True)
    assert dry.data["count"] == 5 and not dry.data["over_cap"]
    with pytest.raises(services.ActionInvalid, match="More than 3 tasks match"):
        services.tasks_bulk(actor=admin, action="revoke", filters=filters, cap=3)
    done = services.tasks_bulk(actor=admin, action="revoke", filters=filters, query="queue=x")

    run = BulkRun.objects.get(pk=done.data["run_id"])
    assert (run.status, run.total, run.done, run.succeeded) == ("succeeded", 5, 5, 5)
    assert sorted(done.data["ids"]) == sorted(r.id for r in sent)
    worker(brokered, "late", brokered.queue, mingle=True)
    for result in sent:
        assert seen(result.id, states.REVOKED).started_at is None


def test_purge_empties_the_queue_and_reports_how_many_messages_went(brokered, admin):
    declare(brokered, brokered.queue)
    sender = brokered.sender()
    for i in range(7):
        sender.send_task("demo.add", (i, 1), queue=brokered.queue)
    app = celery_app()
    with broker_connection() as conn:
        assert queue_depths(app, [brokered.queue], connection=conn)[brokered.queue][0] == 7

    with pytest.raises(services.ActionInvalid, match="exactly to confirm"):
        services.queue_purge(actor=admin, queue=brokered.queue, confirm="it-")
    with broker_connection() as conn:
        assert queue_depths(app, [brokered.queue], connection=conn)[brokered.queue][0] == 7
    result = services.queue_purge(actor=admin, queue=brokered.queue, confirm=brokered.queue)

    assert result.data["purged"] == 7
    assert result.detail == f"Purged 7 messages from queue {brokered.queue}."
    with broker_connection() as conn:
        assert queue_depths(app, [brokered.queue], connection=conn)[brokered.queue][0] == 0
    entry = AuditEntry.objects.filter(action="queue.purge", outcome="succeeded").get()
    assert entry.result == {"queue": brokered.queue, "purged": 7}


def _pool_size(hostname: str) -> int:
    stats = replies_by_worker(broadcast("stats", destination=[hostname], timeout=3))
    return len(stats.get(hostname, {}).get("pool", {}).get("processes", []))


def test_pool_grow_then_shrink_shows_in_the_workers_reported_pool_size(brokered, admin):
    brokered.collector("--no-pollers")
    _, hostname = worker(brokered, "pool", brokered.queue, concurrency=2)
    assert wait_for(lambda: _pool_size(hostname) == 2)

    grown = services.worker_control(actor=admin, hostname=hostname, command="pool_grow", n=1)
    assert grown.data["reply"] == {"ok": "pool will grow"}
    wait_for(lambda: _pool_size(hostname) == 3)
    shrunk = services.worker_control(actor=admin, hostname=hostname, command="pool_shrink", n="1")
    assert shrunk.detail == f"{hostname}: pool will shrink"
    wait_for(lambda: _pool_size(hostname) == 2)

    with pytest.raises(services.ActionConflict, match="Autoscale not enabled"):
        services.worker_control(actor=admin, hostname=hostname, command="autoscale", max=4, min=1)
    limited = services.worker_control(
        actor=admin, hostname=hostname, command="rate_limit", task_name="demo.add", rate_limit="5/s"
    )
    assert limited.data["reply"] == {"ok": "new rate limit set successfully"}
    with pytest.raises(services.ActionConflict, match="unknown task"):
        services.worker_control(
            actor=admin, hostname=hostname, command="time_limit", task_name="no.such", soft=1
        )
    queue = f"extra-{uuid.uuid4().hex[:6]}"
    added = services.worker_control(
        actor=admin, hostname=hostname, command="add_consumer", queue=queue
    )
    assert added.data["reply"] == {"ok": f"add consumer {queue}"}
    outcomes = list(
        AuditEntry.objects.filter(action="worker.control")
        .order_by("id")
        .values_list("params__command", "outcome")
    )
    assert outcomes == [
        ("pool_grow", "succeeded"),
        ("pool_shrink", "succeeded"),
        ("autoscale", "failed"),
        ("rate_limit", "succeeded"),
        ("time_limit", "failed"),
        ("add_consumer", "succeeded"),
    ]


def test_control_of_a_worker_that_does_not_answer_is_unavailable(brokered, admin):
    started = time.monotonic()
    with pytest.raises(services.ActionUnavailable, match="did not answer"):
        services.worker_control(actor=admin, hostname="nobody@nowhere", command="pool_grow", n=1)
    assert time.monotonic() - started < 10


def test_shutdown_stops_the_worker(brokered, admin):
    proc, hostname = worker(brokered, "doomed", brokered.queue)

    result = services.worker_control(actor=admin, hostname=hostname, command="shutdown")

    assert "Shutdown sent" in result.detail
    wait_for(lambda: proc.popen.poll() is not None, 30)


@pytest.fixture
def admin_client(admin):
    from django.test import Client

    admin.user.is_superuser = True
    admin.user.save()
    client = Client()
    client.force_login(admin.user)
    return client


HTMX = {"HX-Request": "true"}


def test_bulk_revoke_through_the_page_shows_progress_until_done(brokered, admin_client):
    brokered.collector("--no-pollers")
    worker(brokered, "holder", f"other-{brokered.suffix}")
    declare(brokered, brokered.queue)
    sender = brokered.sender()
    sent = [sender.send_task("demo.add", (i, 2), queue=brokered.queue) for i in range(4)]
    for result in sent:
        seen(result.id, states.PENDING)
    form = {"action": "revoke", "queue": brokered.queue, "state": "PENDING"}

    count = admin_client.post("/actions/tasks/bulk/", {**form, "step": "count"}, headers=HTMX)
    assert "Revoke 4 tasks" in count.content.decode()
    started = admin_client.post("/actions/tasks/bulk/", {**form, "step": "run"}, headers=HTMX)

    body = started.content.decode()
    run_id = int(re.search(r'id="bulk-run-(\d+)"', body)[1])
    assert "<progress" in body and "of 4" in body
    run = wait_for(lambda: BulkRun.objects.filter(pk=run_id).exclude(status="running").first(), 30)
    assert (run.status, run.done, run.succeeded) == ("succeeded", 4, 4)
    final = admin_client.get(f"/actions/bulk/{run_id}/", headers=HTMX).content.decode()
    assert "4 of 4" in final and "Revoked 4 tasks." in final and "hx-trigger" not in final
    worker(brokered, "late", brokered.queue, mingle=True)
    for result in sent:
        seen(result.id, states.REVOKED)


def test_purge_and_worker_control_through_the_pages_show_the_outcome(brokered, admin_client):
    from tasks_admin.models import WorkerRecord

    brokered.collector("--no-pollers")
    _, hostname = worker(brokered, "ctl", f"other-{brokered.suffix}")
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname).exists())
    declare(brokered, brokered.queue)
    sender = brokered.sender()
    for i in range(3):
        sender.send_task("demo.add", (i, 3), queue=brokered.queue)

    purged = admin_client.post(
        "/actions/queues/purge/",
        {"queue": brokered.queue, "confirm": brokered.queue},
        headers=HTMX,
    )
    controlled = admin_client.post(
        "/actions/workers/control/",
        {"hostname": hostname, "command": "rate_limit", "task_name": "demo.add", "rate_limit": ""},
        follow=True,
    )

    assert purged.status_code == 200
    assert f"Purged 3 messages from queue {brokered.queue}." in purged.content.decode()
    assert [status for _, status in controlled.redirect_chain] == [302]
    assert controlled.redirect_chain[0][0].endswith(f"/workers/{hostname}/")
    assert f"{hostname}: rate limit disabled successfully" in controlled.content.decode()


def test_a_revoke_no_worker_acknowledges_is_reported_as_not_done(brokered, admin):
    brokered.collector("--no-pollers")
    sent = brokered.sender().send_task("demo.add", (1, 2), queue=brokered.queue)
    seen(sent.id, states.PENDING)

    with pytest.raises(services.ActionUnavailable, match="No worker answered the revoke"):
        services.task_revoke(actor=admin, task_id=sent.id)

    entry = AuditEntry.objects.get(action="task.revoke")
    assert (entry.outcome, entry.targets) == ("failed", [sent.id])
