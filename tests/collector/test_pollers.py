"""The collector's pollers against the real database, Redis, RabbitMQ and a real worker."""

import base64
import datetime as dt
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_results.models import TaskResult
from kombu import Queue

from console.celery import app as console_app
from tasks_admin.collector import brokers
from tasks_admin.collector.pollers import (
    EnableEventsPoller,
    InspectPoller,
    Poller,
    QueueDepthPoller,
    ReconcilePoller,
    WorkerLivenessPoller,
)
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import QueueRecord, QueueSample, TaskRecord, WorkerRecord
from tests.demo.helpers import database_url

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


# --- builders ---


def make_worker(hostname: str, **fields) -> WorkerRecord:
    now = timezone.now()
    fields.setdefault("first_seen_at", now - dt.timedelta(hours=1))
    return WorkerRecord.objects.create(hostname=hostname, updated_at=now, **fields)


def make_task(*, state: str, task_id: str | None = None, **fields) -> TaskRecord:
    now = timezone.now()
    fields.setdefault("first_seen_at", now - dt.timedelta(minutes=10))
    fields.setdefault("last_event_at", fields["first_seen_at"])
    return TaskRecord.objects.create(
        task_id=task_id or str(uuid.uuid4()), state=state, updated_at=now, **fields
    )


def make_result(*, status: str, done_ago: dt.timedelta, **fields) -> TaskResult:
    row = TaskResult.objects.create(task_id=str(uuid.uuid4()), status=status, **fields)
    # date_done is auto_now; update() skips that to set it in the past.
    TaskResult.objects.filter(pk=row.pk).update(date_done=timezone.now() - done_ago)
    row.refresh_from_db()
    return row


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def publish(app: Celery, queue: str, count: int, **options) -> None:
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        for i in range(count):
            producer.publish(
                {"n": i},
                exchange="",
                routing_key=queue,
                declare=[Queue(queue, routing_key=queue)],
                **options,
            )


def delete_queue(app: Celery, queue: str) -> None:
    with app.connection_for_write() as conn:
        bound = Queue(queue, routing_key=queue).bind(conn.default_channel)
        # kombu's Redis delete only knows bindings made on the same channel: purge first.
        bound.purge()
        bound.delete()


# --- the base class ---


class Counting(Poller):
    name = "counting"

    def __init__(self, *, interval: float, fail: bool = False) -> None:
        super().__init__(interval=interval)
        self.calls = 0
        self.fail = fail

    def poll(self) -> bool:
        self.calls += 1
        if self.fail:
            raise ConnectionError("broker away")
        return True


def test_poller_runs_at_once_then_once_per_interval():
    poller = Counting(interval=5.0)
    start = poller.next_at

    assert poller.step(now=start) is True
    assert poller.step(now=start + 4.9) is False
    assert poller.step(now=start + 5.0) is True
    assert poller.calls == 2


def test_failing_poller_is_counted_and_backs_off_instead_of_raising():
    poller = Counting(interval=5.0, fail=True)
    start = poller.next_at

    assert poller.step(now=start) is False
    assert poller.step(now=start + 5.0) is False  # backing off: 10 s after one failure
    assert poller.step(now=start + 10.0) is False
    assert poller.calls == 2
    assert poller.errors == 2
    assert poller.last_error == "ConnectionError: broker away"
    assert poller.next_at == start + 10.0 + 20.0


# --- enable_events ---


@pytest.mark.integration
def test_enable_events_poller_broadcasts_enable_events_to_all_workers():
    subscriber = redis.Redis.from_url(settings.CELERY_BROKER_URL).pubsub()
    subscriber.psubscribe("*celery.pidbox")
    assert subscriber.get_message(timeout=1)["type"] == "psubscribe"

    EnableEventsPoller(app=console_app, interval=5.0).step()

    commands = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "enable_events" not in commands:
        message = subscriber.get_message(timeout=1)
        if message and message["type"] == "pmessage":
            body = json.loads(base64.b64decode(json.loads(message["data"])["body"]))
            commands.append(body["method"])
            assert body["destination"] is None
    subscriber.close()
    assert "enable_events" in commands


# --- worker liveness ---


@pytest.mark.django_db
def test_liveness_marks_a_worker_offline_two_heartbeat_intervals_after_its_last_one():
    last = timezone.now() - dt.timedelta(seconds=10)
    make_worker("silent@host", is_online=True, last_heartbeat_at=last, heartbeat_freq=2.0)

    assert WorkerLivenessPoller(first_delay=0).step() is True

    worker = WorkerRecord.objects.get(hostname="silent@host")
    assert worker.is_online is False
    assert worker.offline_at == last + dt.timedelta(seconds=4)


@pytest.mark.django_db
def test_liveness_keeps_workers_online_within_their_heartbeat_window():
    now = timezone.now()
    make_worker("fresh@host", is_online=True, last_heartbeat_at=now - dt.timedelta(seconds=3))
    # A worker that sends a heartbeat every 5 s (the heartbeat control command's freq).
    make_worker(
        "slow@host",
        is_online=True,
        heartbeat_freq=5.0,
        last_heartbeat_at=now - dt.timedelta(seconds=8),
    )

    assert WorkerLivenessPoller(first_delay=0).step() is False

    assert set(WorkerRecord.objects.filter(is_online=True).values_list("hostname", flat=True)) == {
        "fresh@host",
        "slow@host",
    }


@pytest.mark.django_db
def test_liveness_waits_for_fresh_heartbeats_after_start_and_while_the_writer_lags():
    last = timezone.now() - dt.timedelta(seconds=10)
    make_worker("busy@host", is_online=True, last_heartbeat_at=last)

    just_started = WorkerLivenessPoller()
    assert just_started.step() is False  # stored heartbeats predate this collector
    behind = WorkerLivenessPoller(first_delay=0, lag=lambda: 30.0)
    assert behind.step() is False  # its heartbeats may be in the writer's backlog

    assert WorkerRecord.objects.get(hostname="busy@host").is_online is True


# --- queue depth ---


@pytest.mark.integration
@pytest.mark.django_db
def test_queue_depth_on_redis_follows_enqueued_messages_and_counts_online_consumers():
    queue = unique_name("depth")
    make_worker("consumer@host", is_online=True, queues=[queue])
    make_worker("gone@host", is_online=False, queues=[queue])
    publish(console_app, queue, 7)
    try:
        poller = QueueDepthPoller(app=console_app, interval=5.0, extra_queues=[queue])
        poller.step()
        publish(console_app, queue, 3)
        poller.step(now=poller.next_at)
    finally:
        delete_queue(console_app, queue)

    record = QueueRecord.objects.get(name=queue)
    assert (record.depth, record.consumers) == (10, 1)
    samples = QueueSample.objects.filter(queue=queue).order_by("sampled_at")
    assert [(s.depth, s.consumers) for s in samples] == [(7, 1), (10, 1)]
    # The console app's default queue is always sampled.
    assert QueueRecord.objects.filter(name="celery").exists()


@pytest.mark.integration
def test_queue_depth_on_redis_sums_priority_lists_under_the_global_key_prefix():
    prefix = unique_name("pfx") + ":"
    app = Celery("depth", broker=settings.CELERY_BROKER_URL, set_as_current=False)
    app.conf.broker_transport_options = {
        "global_keyprefix": prefix,
        "sep": ":",
        "priority_steps": [0, 5],
    }
    queue = unique_name("prio")
    publish(app, queue, 3, priority=0)
    publish(app, queue, 2, priority=7)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        # Where kombu put them: the bare list for step 0, "<queue>:5" for the rest.
        assert client.llen(f"{prefix}{queue}") == 3
        assert client.llen(f"{prefix}{queue}:5") == 2

        depths = brokers.queue_depths(app, [queue, unique_name("missing")])
    finally:
        delete_queue(app, queue)
        client.delete(*client.keys(f"{prefix}*") or ["-"])

    assert depths[queue] == (5, None)
    assert sorted(v for k, v in depths.items() if k != queue) == [(0, None)]


@pytest.mark.integration
def test_queue_depth_on_rabbitmq_reports_ready_messages_and_consumers():
    app = Celery("depth", broker=RABBITMQ_URL, set_as_current=False)
    # Confirmed publishes: queued before the depth is read on another connection.
    app.conf.broker_transport_options = {"confirm_publish": True}
    queue = unique_name("depth")
    missing = unique_name("missing")
    publish(app, queue, 6)
    try:
        # The missing queue closes its throwaway channel; the others still answer.
        depths = brokers.queue_depths(app, [missing, queue, "celery"])
        with app.connection_for_write() as conn:
            purged = Queue(queue, routing_key=queue).bind(conn.default_channel).purge()
        after = brokers.queue_depths(app, [queue])
    finally:
        delete_queue(app, queue)

    assert depths[queue] == (6, 0)
    assert depths[missing] == (0, 0)
    assert purged == 6
    assert after[queue] == (0, 0)


# --- reconcile ---


@pytest.mark.django_db
def test_reconcile_emits_the_final_state_of_a_started_task_from_the_result_backend():
    done = make_result(
        status="SUCCESS",
        done_ago=dt.timedelta(minutes=5),
        task_name="demo.add",
        worker="w1@host",
        result="5",
    )
    make_task(task_id=done.task_id, state="STARTED", worker="w1@host")
    emitted: list[dict] = []

    assert ReconcilePoller(emitted.extend, interval=10.0).step() is True

    assert emitted == [
        {
            "type": "task-succeeded",
            "uuid": done.task_id,
            "timestamp": done.date_done.timestamp(),
            "clock": 0,
            "hostname": "w1@host",
            "name": "demo.add",
            "result": "5",
            "local_received": emitted[0]["local_received"],
            "source": "backend",
        }
    ]


@pytest.mark.django_db
def test_reconcile_rebuilds_the_exception_repr_of_a_failure_and_reads_revokes():
    failed = make_result(
        status="FAILURE",
        done_ago=dt.timedelta(minutes=5),
        result=json.dumps(
            {"exc_type": "ValueError", "exc_message": ["bad input", 3], "exc_module": "builtins"}
        ),
        traceback="Traceback (most recent call last):\nValueError: bad input",
    )
    expired = make_result(
        status="REVOKED",
        done_ago=dt.timedelta(minutes=4),
        result=json.dumps({"exc_type": "TaskRevokedError", "exc_message": ["expired"]}),
    )
    emitted: list[dict] = []

    ReconcilePoller(emitted.extend, interval=10.0).step()

    by_id = {event["uuid"]: event for event in emitted}
    assert by_id[failed.task_id]["type"] == "task-failed"
    assert by_id[failed.task_id]["exception"] == "ValueError('bad input', 3)"
    assert by_id[failed.task_id]["traceback"].endswith("ValueError: bad input")
    assert by_id[failed.task_id]["hostname"] == ""  # no result_extended: worker unknown
    assert by_id[expired.task_id]["type"] == "task-revoked"
    assert (by_id[expired.task_id]["expired"], by_id[expired.task_id]["terminated"]) == (
        True,
        False,
    )


@pytest.mark.django_db
def test_reconcile_skips_tasks_already_final_fresh_rows_and_rows_it_has_read():
    agrees = make_result(status="SUCCESS", done_ago=dt.timedelta(minutes=5))
    make_task(task_id=agrees.task_id, state="SUCCESS")
    make_result(status="STARTED", done_ago=dt.timedelta(minutes=5))
    make_result(status="SUCCESS", done_ago=dt.timedelta(seconds=5))  # its event may be near
    unseen = make_result(status="SUCCESS", done_ago=dt.timedelta(minutes=3))
    emitted: list[dict] = []
    poller = ReconcilePoller(emitted.extend, interval=10.0, grace=60.0)

    poller.step()
    poller.step(now=poller.next_at)

    # A task the collector never saw at all gets its row from the backend, once.
    assert [event["uuid"] for event in emitted] == [unseen.task_id]


@pytest.mark.django_db
def test_reconcile_waits_out_the_writer_backlog_before_trusting_the_backend():
    make_result(status="SUCCESS", done_ago=dt.timedelta(minutes=5))
    emitted: list[dict] = []

    ReconcilePoller(emitted.extend, interval=10.0, lag=lambda: 600.0).step()

    assert emitted == []


@pytest.mark.django_db
def test_reconcile_reads_a_backlog_in_batches_without_waiting_an_interval():
    rows = [make_result(status="SUCCESS", done_ago=dt.timedelta(minutes=10 - i)) for i in range(5)]
    emitted: list[dict] = []
    poller = ReconcilePoller(emitted.extend, interval=10.0, batch_size=2)

    first = poller.next_at
    poller.step(now=first)
    assert poller.next_at == first  # a full batch: due again at once
    poller.step(now=first)
    poller.step(now=first)

    assert [event["uuid"] for event in emitted] == [row.task_id for row in rows]
    assert poller.next_at == first + 10.0


@pytest.mark.django_db
def test_reconcile_marks_tasks_lost_that_were_started_on_a_worker_that_went_offline():
    now = timezone.now()
    offline_at = now - dt.timedelta(minutes=1)
    started_at = now - dt.timedelta(minutes=2)
    make_worker("dead@host", is_online=False, offline_at=offline_at)
    make_worker("alive@host", is_online=True)
    orphan = make_task(state="STARTED", worker="dead@host", started_at=started_at)
    make_task(state="STARTED", worker="dead@host", started_at=now - dt.timedelta(seconds=30))
    make_task(state="STARTED", worker="alive@host", started_at=started_at)
    make_task(state="SUCCESS", worker="dead@host", started_at=started_at)
    emitted: list[dict] = []

    ReconcilePoller(emitted.extend, interval=10.0).step()

    assert emitted == [
        {
            "type": "task-lost",
            "uuid": orphan.task_id,
            "timestamp": offline_at.timestamp(),
            "hostname": "dead@host",
            "clock": 0,
            "local_received": emitted[0]["local_received"],
            "source": "collector",
        }
    ]


@pytest.mark.django_db
def test_reconcile_marks_tasks_lost_on_a_worker_that_restarted_since_they_started():
    now = timezone.now()
    make_worker("restarted@host", is_online=True, offline_at=now - dt.timedelta(minutes=1))
    before = make_task(
        state="STARTED", worker="restarted@host", started_at=now - dt.timedelta(minutes=2)
    )
    make_task(state="STARTED", worker="restarted@host", started_at=now - dt.timedelta(seconds=5))
    emitted: list[dict] = []

    ReconcilePoller(emitted.extend, interval=10.0).step()

    assert [(event["type"], event["uuid"]) for event in emitted] == [("task-lost", before.task_id)]


@pytest.mark.django_db
def test_reconciled_events_through_the_writer_settle_the_rows_and_are_not_emitted_again():
    now = timezone.now()
    offline_at = now - dt.timedelta(minutes=1)
    make_worker("dead@host", is_online=False, offline_at=offline_at)
    orphan = make_task(
        state="STARTED", worker="dead@host", started_at=now - dt.timedelta(minutes=2)
    )
    done = make_result(status="SUCCESS", done_ago=dt.timedelta(minutes=5), result='"ok"')
    make_task(task_id=done.task_id, state="STARTED")
    writer = BatchWriter(max_chars=settings.CONSOLE_MAX_FIELD_CHARS)
    poller = ReconcilePoller(writer.write, interval=10.0)

    poller.step()
    emitted: list[dict] = []
    poller.emit = emitted.extend
    poller.watermark = (now - dt.timedelta(hours=1), 0)  # as after a collector restart
    poller.step(now=poller.next_at)

    lost = TaskRecord.objects.get(task_id=orphan.task_id)
    assert (lost.state, lost.lost_at) == ("LOST", offline_at)
    succeeded = TaskRecord.objects.get(task_id=done.task_id)
    assert (succeeded.state, succeeded.result, succeeded.reconciled) == ("SUCCESS", '"ok"', True)
    assert emitted == []


# --- a real worker: inspect, and the backend rows it writes ---


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    """A solo worker with events on, consuming a queue of its own, sharing the test database."""
    queue = unique_name("pollers")
    node = f"{queue}@{socket.gethostname()}"
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.test_settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "console",
                "worker",
                "-E",
                "-Q",
                queue,
                "-c",
                "1",
                "-P",
                "solo",
                "-n",
                node,
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not console_app.control.ping(destination=[node], timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not come up:\n{log_path.read_text()[-3000:]}")
        yield {"node": node, "queue": queue, "pid": process.pid}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        delete_queue(console_app, queue)


@pytest.mark.integration
@pytest.mark.django_db
def test_inspecting_a_requested_worker_fills_its_record_and_returns_early(worker):
    poller = InspectPoller(app=console_app, interval=30.0)
    poller.next_at = time.monotonic() + 30  # no sweep due: only the requested worker
    poller.request(worker["node"])

    assert poller.step() is True

    record = WorkerRecord.objects.get(hostname=worker["node"])
    assert (record.pool, record.concurrency, record.pid) == ("solo", 1, worker["pid"])
    assert record.queues == [worker["queue"]]
    assert "demo.add" in record.registered
    # Celery's settings only, not the rest of the Django settings they live in.
    assert record.conf["CELERY_RESULT_BACKEND"] == "django-db"
    assert "SECRET_KEY" not in record.conf
    assert "LANGUAGES" not in record.conf
    assert record.stats["pool"]["max-concurrency"] == 1
    assert record.is_online is True
    assert record.inspected_at is not None
    # Four calls with a destination list: each returns on the reply, not after a 1 s gap.
    assert poller.last_duration < 2.0
    assert poller.next_at > time.monotonic() + 20  # the sweep was not pushed back or forward


@pytest.mark.integration
@pytest.mark.django_db
def test_inspect_sweep_finds_workers_nobody_announced_and_keeps_their_online_state(worker):
    make_worker(worker["node"], is_online=False, queues=["stale"])
    poller = InspectPoller(app=console_app, interval=30.0)

    assert poller.step() is True

    record = WorkerRecord.objects.get(hostname=worker["node"])
    assert record.queues == [worker["queue"]]
    assert record.pool == "solo"
    assert record.is_online is False  # heartbeats (the writer) decide that, not inspect


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_reconcile_gives_started_tasks_the_final_state_a_real_worker_stored(worker):
    added = console_app.send_task("demo.add", args=(2, 3), queue=worker["queue"])
    declined = console_app.send_task(
        "demo.charge_card",
        args=(7, 1999),
        kwargs={"payment_method": "pm_card_chargeDeclined"},
        queue=worker["queue"],
    )
    assert added.get(timeout=30) == 5
    declined.get(timeout=30, propagate=False)
    for task_id in (added.id, declined.id):
        make_task(task_id=task_id, state="STARTED", worker=worker["node"])
    emitted: list[dict] = []

    ReconcilePoller(emitted.extend, interval=10.0, grace=0.0).step()

    by_id = {event["uuid"]: event for event in emitted}
    assert set(by_id) == {added.id, declined.id}
    assert by_id[added.id]["type"] == "task-succeeded"
    assert by_id[added.id]["result"] == "5"
    assert (by_id[added.id]["name"], by_id[added.id]["hostname"]) == ("demo.add", worker["node"])
    assert by_id[declined.id]["type"] == "task-failed"
    assert by_id[declined.id]["exception"] == (
        "PaymentDeclinedError('card_declined: chargeDeclined (order 7, 19.99 EUR)')"
    )
    assert "PaymentDeclinedError" in by_id[declined.id]["traceback"]
