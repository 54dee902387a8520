"""A real worker runs the demo tasks; the collector records them, on Redis and RabbitMQ."""

import pytest
from celery import states

from tasks_admin.models import TaskEvent, TaskRecord, WorkerRecord
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def final(task_id: str, state: str, timeout: float = 40.0) -> TaskRecord:
    return wait_for(
        lambda: TaskRecord.objects.filter(task_id=task_id, state=state).first(), timeout
    )


def test_worker_tasks_reach_final_states_with_times_retries_lineage_worker_and_queue(cluster):
    cluster.collector("--no-pollers")
    _, hostname = cluster.worker()
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=True).exists())
    app = cluster.sender()
    queue = cluster.queue

    ok = app.send_task("demo.add", (2, 3), queue=queue)
    failed = app.send_task("demo.parse_webhook", ("stripe", "{not json"), queue=queue)
    flaky = app.send_task(
        "demo.sync_inventory", ("eu-1",), {"fail_times": 2, "backoff": 0.2}, queue=queue
    )
    workflow = (
        app.signature("demo.fetch_page", ("https://example.com",), queue=queue)
        | app.signature("demo.parse_page", queue=queue)
        | app.signature("demo.store_links", queue=queue)
    ).apply_async()

    row = final(ok.id, states.SUCCESS)
    assert (row.name, row.result, row.worker, row.queue) == ("demo.add", "5", hostname, queue)
    # The client stamps task-sent after publishing, so a quick worker's task-received can
    # carry an earlier time (seen: 4 ms under load): sent is only before started.
    assert row.sent_at <= row.started_at
    assert row.received_at <= row.started_at <= row.succeeded_at
    assert row.runtime is not None and row.runtime >= 0

    row = final(failed.id, states.FAILURE)
    assert row.exception_type == "JSONDecodeError"
    assert "Traceback" in row.traceback

    row = final(flaky.id, states.SUCCESS)
    assert row.retries == 2
    assert row.retried_at is not None
    types = list(
        TaskEvent.objects.filter(task_id=flaky.id)
        .order_by("event_at")
        .values_list("type", flat=True)
    )
    assert types.count("task-retried") == 2
    assert types.count("task-started") == 3

    last = final(workflow.id, states.SUCCESS)
    assert last.result == "5"
    parent = TaskRecord.objects.get(task_id=last.parent_id)
    assert parent.name == "demo.parse_page"
    assert (
        last.root_id == parent.root_id == TaskRecord.objects.get(task_id=parent.parent_id).task_id
    )


def test_a_worker_going_away_is_marked_offline(cluster):
    cluster.collector("--no-pollers")
    worker, hostname = cluster.worker()
    wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=True).exists())
    worker.stop()
    row = wait_for(lambda: WorkerRecord.objects.filter(hostname=hostname, is_online=False).first())
    assert row.offline_at is not None
    assert row.sw_ident == "py-celery"
