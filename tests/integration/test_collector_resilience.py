"""The collector under bad input, shutdown, a standby and a crash, against real brokers."""

import base64
import json
import signal
import socket
import time
import uuid

import pytest
import redis
from celery import states
from kombu import Connection, Exchange, Producer

from tasks_admin.models import CollectorStatus, TaskEvent, TaskRecord
from tests import factories
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def publish_raw(cluster, routing_key: str, body: bytes, content_type="application/json"):
    """Put bytes on the event bus exactly as a (possibly broken) producer would."""
    if cluster.broker_kind == "redis":
        envelope = {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": content_type,
            "headers": {},
            "properties": {
                "delivery_mode": 1,
                "delivery_info": {"exchange": "celeryev", "routing_key": routing_key},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        client = redis.Redis.from_url(cluster.broker_url)
        db = client.connection_pool.connection_kwargs.get("db", 0)
        client.publish(f"/{db}.celeryev/{routing_key}", json.dumps(envelope))
        client.close()
    else:
        with Connection(cluster.broker_url) as conn:
            Producer(conn).publish(
                body,
                exchange=Exchange("celeryev", "topic"),
                routing_key=routing_key,
                content_type=content_type,
                content_encoding="binary",
            )


def publish_events(cluster, events):
    publish_raw(cluster, "task.multi", json.dumps(events).encode())


def status_of(proc):
    return CollectorStatus.objects.get(node=f"{socket.gethostname()}:{proc.pid}")


def test_malformed_unknown_huge_and_non_utf8_input_is_skipped_or_stored_safely(cluster):
    collector = cluster.collector("--no-pollers")
    publish_raw(cluster, "task.failed", b"{this is not json")
    publish_raw(
        cluster, "task.failed", b"\x80\x04\x95pickle", content_type="application/x-python-serialize"
    )
    publish_events(cluster, [{"type": "martian-landing", "timestamp": time.time()}, 42])
    huge = factories.failed_task()
    huge[-1]["traceback"] = "Traceback (most recent call last):\n" + "x" * 5_000_000
    publish_events(cluster, huge)
    odd = factories.succeeded_task()
    body = json.dumps(odd).encode().replace(b'"demo.add"', b'"demo.\xff\xfename"')
    publish_raw(cluster, "task.multi", body)

    row = wait_for(
        lambda: TaskRecord.objects.filter(task_id=huge[0]["uuid"], state=states.FAILURE).first()
    )
    assert "[cut:" in row.traceback and len(row.traceback) < 100_000
    odd_row = wait_for(
        lambda: TaskRecord.objects.filter(task_id=odd[0]["uuid"], state=states.SUCCESS).first()
    )
    assert odd_row.name.startswith("demo.") and "\ufffd" in odd_row.name

    def counted():
        counters = status_of(collector).counters
        pipeline, writer = counters["pipeline"], counters["writer"]
        return (
            pipeline["malformed_messages"] >= 2
            and pipeline["bad_items"] >= 1
            and writer["unknown_types"]
        )

    wait_for(counted, timeout=15)
    assert collector.popen.poll() is None


def test_sigterm_flushes_what_was_received_and_exits_cleanly(redis_cluster):
    cluster = redis_cluster
    collector = cluster.collector("--no-pollers")
    tasks = [factories.succeeded_task() for _ in range(1500)]
    for start in range(0, len(tasks), 100):
        publish_events(cluster, [e for task in tasks[start : start + 100] for e in task])
    collector.popen.send_signal(signal.SIGTERM)
    assert collector.popen.wait(60) == 0
    counters = status_of(collector).counters
    received_messages = counters["pipeline"]["messages"]
    ids = [task[0]["uuid"] for task in tasks]
    written = TaskEvent.objects.filter(task_id__in=ids).count()
    # Every message that reached the collector before the signal (400 events each) is stored.
    assert received_messages > 0
    assert written == received_messages * 400
    assert counters["pipeline"]["buffered_messages"] == 0
    assert "stopped" in collector.log()


def test_a_standby_collector_takes_over_when_the_active_one_dies(redis_cluster):
    cluster = redis_cluster
    active = cluster.collector("--no-pollers")
    standby = cluster.collector("--no-pollers", wait=False)
    wait_for(
        lambda: CollectorStatus.objects.filter(
            node__endswith=f":{standby.pid}", role="standby"
        ).exists()
    )
    time.sleep(1)
    assert status_of(standby).role == "standby"
    active.stop(signal.SIGKILL)
    cluster.wait_receiving(standby, timeout=20)
    task = factories.succeeded_task()
    publish_events(cluster, task)
    wait_for(
        lambda: TaskRecord.objects.filter(task_id=task[0]["uuid"], state=states.SUCCESS).exists()
    )


def test_sigkill_mid_stream_then_restart_leaves_no_corrupt_or_duplicate_rows(cluster):
    collector = cluster.collector("--no-pollers")
    tasks = [factories.retried_then_succeeded_task() for _ in range(300)]
    events = [e for task in tasks for e in task]
    for start in range(0, len(events), 60):
        publish_events(cluster, events[start : start + 60])
    time.sleep(0.2)
    collector.stop(signal.SIGKILL)
    # Everything again, as a broker redelivering un-acked messages would, plus the rest.
    restarted = cluster.collector("--no-pollers")
    for start in range(0, len(events), 60):
        publish_events(cluster, events[start : start + 60])
    ids = [task[0]["uuid"] for task in tasks]
    wait_for(
        lambda: TaskRecord.objects.filter(task_id__in=ids, state=states.SUCCESS).count() == len(ids)
    )
    wait_for(lambda: TaskEvent.objects.filter(task_id__in=ids).count() == len(events))
    time.sleep(1)
    assert TaskEvent.objects.filter(task_id__in=ids).count() == len(events)
    for row in TaskRecord.objects.filter(task_id__in=ids):
        assert row.retries == 1 and len(row.event_keys) == 6 and len(set(row.event_keys)) == 6
    assert restarted.popen.poll() is None


def test_database_connections_killed_mid_stream_lose_nothing(cluster):
    from django.db import connection

    collector = cluster.collector("--no-pollers")
    tasks = [factories.succeeded_task() for _ in range(600)]
    ids = [task[0]["uuid"] for task in tasks]
    for round_ in range(6):
        chunk = tasks[round_ * 100 : (round_ + 1) * 100]
        publish_events(cluster, [e for task in chunk for e in task])
        with connection.cursor() as cursor:
            # Every session of the collector (writers and the lock) is cut, as in a failover.
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        time.sleep(0.3)
    wait_for(
        lambda: TaskRecord.objects.filter(task_id__in=ids, state=states.SUCCESS).count() == 600,
        timeout=60,
    )
    assert TaskEvent.objects.filter(task_id__in=ids).count() == 2400
    assert collector.popen.poll() is None
    assert "database unavailable" in collector.log() or "lost the collector lock" in collector.log()
