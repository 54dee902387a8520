"""The collector's second sources of truth, end to end: inspect, reconcile, lost tasks."""

import signal
import time

import pytest
from celery import states

from tasks_admin.models import QueueRecord, TaskRecord, WorkerRecord
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_inspect_fills_pool_concurrency_queues_and_registered_tasks(cluster):
    cluster.collector()
    _, hostname = cluster.worker(concurrency=3)
    row = wait_for(
        lambda: WorkerRecord.objects.filter(hostname=hostname).exclude(inspected_at=None).first()
    )
    assert (row.pool, row.concurrency) == ("prefork", 3)
    assert cluster.queue in row.queues
    assert "demo.add" in row.registered


def test_inspect_stores_the_tasks_a_busy_worker_holds_in_reserve(redis_cluster):
    redis_cluster.collector()
    _, hostname = redis_cluster.worker(concurrency=1)
    app = redis_cluster.sender()
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=True).exists())
    busy = app.send_task("demo.generate_report", (1,), {"seconds": 8})
    waiting = [app.send_task("demo.add", (i, i)) for i in range(2)]

    def reserved():
        record = WorkerRecord.objects.filter(hostname=hostname).first()
        return record if record and record.reserved_count else None

    record = wait_for(reserved, timeout=30)
    assert {t["task_id"] for t in record.reserved} == {t.id for t in waiting}
    assert {t["name"] for t in record.reserved} == {"demo.add"}
    assert busy.id not in {t["task_id"] for t in record.reserved}


def test_queue_depth_follows_enqueued_work(cluster):
    cluster.collector()
    app = cluster.sender()
    for i in range(7):
        app.send_task("demo.add", (i, i), queue=cluster.queue)
    wait_for(lambda: QueueRecord.objects.filter(name=cluster.queue, depth=7).exists())
    cluster.worker()
    wait_for(lambda: QueueRecord.objects.filter(name=cluster.queue, depth=0).exists())


def test_tasks_finished_while_the_collector_was_killed_get_their_state_from_the_backend(
    redis_cluster,
):
    cluster = redis_cluster
    collector = cluster.collector()
    _, hostname = cluster.worker()
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=True).exists())
    app = cluster.sender()
    seen = app.send_task("demo.add", (1, 1), queue=cluster.queue)
    wait_for(lambda: TaskRecord.objects.filter(task_id=seen.id, state=states.SUCCESS).exists())
    collector.stop(signal.SIGKILL)
    # Redis pub/sub keeps nothing for an absent subscriber: these events are gone for good.
    missed = [app.send_task("demo.add", (i, 2), queue=cluster.queue) for i in range(5)]
    failed = app.send_task("demo.parse_webhook", ("x", "{bad"), queue=cluster.queue)
    time.sleep(3)
    assert not TaskRecord.objects.filter(task_id__in=[r.id for r in missed]).exists()
    cluster.collector()
    ids = [r.id for r in missed]
    wait_for(lambda: TaskRecord.objects.filter(task_id__in=ids, state=states.SUCCESS).count() == 5)
    row = TaskRecord.objects.get(task_id=ids[0])
    assert (row.reconciled, row.name, row.worker) == (True, "demo.add", hostname)
    row = wait_for(
        lambda: TaskRecord.objects.filter(task_id=failed.id, state=states.FAILURE).first()
    )
    assert row.exception.startswith("JSONDecodeError(")
    assert TaskRecord.objects.get(task_id=seen.id).reconciled is False


def test_a_task_running_on_a_worker_that_dies_is_marked_lost(redis_cluster):
    cluster = redis_cluster
    cluster.collector()
    worker, hostname = cluster.worker(concurrency=1)
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=True).exists())
    app = cluster.sender()
    slow = app.send_task("demo.generate_report", (1,), {"seconds": 60}, queue=cluster.queue)
    wait_for(lambda: TaskRecord.objects.filter(task_id=slow.id, state=states.STARTED).exists())
    worker.stop(signal.SIGKILL)  # no worker-offline event: heartbeats just stop
    row = wait_for(lambda: TaskRecord.objects.filter(task_id=slow.id, state="LOST").first(), 40)
    assert row.lost_at is not None
    assert WorkerRecord.objects.get(hostname=hostname).is_online is False
