"""Rollups of sent and rejected tasks and queue wait, and the running totals /metrics reads."""

import datetime as dt
import random
import time

import pytest
from celery import states
from django.db import connection

from tasks_admin import histogram
from tasks_admin.collector import merge, rollups
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskMinuteRollup, TaskNameTotal, TaskRecord
from tests import factories

pytestmark = pytest.mark.django_db


def write(events: list[dict]) -> None:
    BatchWriter(max_chars=65536).write(events)


def rollup_sums(name: str) -> dict:
    sums = {c: 0 for c in rollups.COLUMNS if not c.endswith("_hist")}
    hists = {c: histogram.empty() for c in rollups.COLUMNS if c.endswith("_hist")}
    for row in TaskMinuteRollup.objects.filter(name=name):
        for column in sums:
            sums[column] += getattr(row, column)
        for column, hist in hists.items():
            histogram.add(hist, getattr(row, column))
    return {**sums, **hists}


def totals(name: str) -> dict:
    row = TaskNameTotal.objects.get(name=name)
    out = {c: getattr(row, c) for c in rollups.COLUMNS}
    for column in out:
        if column.endswith("_hist"):
            out[column] = out[column] or histogram.empty()
    return out


def test_queue_wait_is_publish_to_start_of_a_finished_task():
    events = factories.succeeded_task(name="demo.add", wait=1.5)
    write(events[:3])  # sent, received, started: not finished yet
    assert totals("demo.add")["queue_wait_count"] == 0
    write(events[3:])
    row = TaskMinuteRollup.objects.get(name="demo.add", queue_wait_count=1)
    assert row.queue_wait_sum == pytest.approx(1.5)
    assert row.queue_wait_hist[histogram.bucket_of(1.5)] == 1
    assert row.minute == rollups.minute(TaskRecord.objects.get().started_at)
    assert sum(TaskMinuteRollup.objects.values_list("sent", flat=True)) == 1


def test_retried_unsent_and_eta_tasks_have_no_queue_wait():
    now = time.time()
    retried = factories.retried_then_succeeded_task(at=now)
    sent = factories.succeeded_task(retried[0]["uuid"], name="demo.flaky", at=now - 1)[0]
    retried.insert(0, sent)
    unsent = factories.succeeded_task(name="demo.add")[1:]
    with_eta = factories.succeeded_task(name="demo.add")
    with_eta[1]["eta"] = "2026-01-01T00:00:00+00:00"
    write(retried + unsent + with_eta)
    assert TaskRecord.objects.filter(state="SUCCESS").count() == 3
    assert sum(TaskNameTotal.objects.values_list("queue_wait_count", flat=True)) == 0
    assert sum(TaskNameTotal.objects.values_list("sent", flat=True)) == 2


def test_running_totals_equal_the_sum_of_the_rollups_in_any_order_and_batching():
    base = time.time() - 3600
    tasks = [
        factories.succeeded_task(at=base + 97 * i, wait=0.1 * i, runtime=0.01 * i)
        for i in range(12)
    ]
    tasks += [factories.retried_then_succeeded_task(at=base + 61 * i) for i in range(3)]
    tasks += [factories.failed_task(at=base + 13 * i) for i in range(3)]
    tasks += [factories.rejected_task(at=base + 29 * i, requeue=i % 2 == 1) for i in range(4)]
    events = [dict(e) for task in tasks for e in task]
    random.Random(5).shuffle(events)
    writer = BatchWriter(max_chars=65536)
    while events:
        writer.write(events[:4])
        events = events[4:]
    assert writer.counters.refolds > 0  # events arrived out of order and were refolded
    names = set(TaskNameTotal.objects.values_list("name", flat=True))
    # "": tasks whose first events carried no name, moved to their name later.
    assert names - {""} == {"demo.add", "demo.flaky", "demo.fail", "demo.validate_order"}
    for name in names:
        total, summed = totals(name), rollup_sums(name)
        for column in ("runtime_sum", "queue_wait_sum"):
            assert total.pop(column) == pytest.approx(summed.pop(column)), (name, column)
        assert total == summed, name
    add = totals("demo.add")
    assert (add["sent"], add["succeeded"], add["queue_wait_count"]) == (12, 12, 12)
    assert add["queue_wait_sum"] == pytest.approx(sum(0.1 * i for i in range(12)))
    assert totals("demo.validate_order")["rejected"] == 4


def test_totals_outlive_pruned_rollups():
    write(factories.succeeded_task(at=time.time() - 40 * 86400))
    before = totals("demo.add")
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tasks_admin_taskminuterollup WHERE minute < %s",
            [dt.datetime.now(dt.UTC) - dt.timedelta(days=30)],
        )
    assert not TaskMinuteRollup.objects.exists()
    assert totals("demo.add") == before and before["succeeded"] == 1


def test_a_rejected_task_counts_once_in_the_minute_of_its_rejection_requeued_or_not():
    at = time.time() - 600
    dropped = factories.rejected_task(at=at)
    requeued = factories.rejected_task(at=at + 120, requeue=True)
    task_id = requeued[0]["uuid"]
    # The requeued message is delivered again and succeeds: still one rejected task.
    requeued += [
        factories.event("task-received", task_id, at=at + 125, name="demo.validate_order"),
        factories.event("task-started", task_id, at=at + 125.01),
        factories.event("task-succeeded", task_id, at=at + 125.2, result="None", runtime=0.19),
    ]
    write(dropped + requeued + factories.succeeded_task(name="demo.validate_order", at=at))
    rows = TaskRecord.objects.filter(name="demo.validate_order")
    assert rows.get(task_id=dropped[0]["uuid"]).state == states.REJECTED
    assert rows.get(task_id=task_id).state == states.SUCCESS
    assert totals("demo.validate_order")["rejected"] == 2 == rows.exclude(rejected_at=None).count()
    assert totals("demo.validate_order")["succeeded"] == 2
    for row in rows.exclude(rejected_at=None):
        minute = TaskMinuteRollup.objects.get(
            name="demo.validate_order", minute=rollups.minute(row.rejected_at)
        )
        assert minute.rejected == 1, row.task_id


def test_a_task_rejected_twice_counts_once_in_the_minute_of_its_last_rejection():
    at = time.time() - 600
    first = factories.rejected_task(at=at, requeue=True)
    task_id = first[0]["uuid"]
    write(first)
    write(
        [
            factories.event("task-received", task_id, at=at + 120, name="demo.validate_order"),
            factories.event("task-started", task_id, at=at + 120.01),
            factories.event("task-rejected", task_id, at=at + 120.02, requeue=False),
        ]
    )
    assert TaskRecord.objects.get().state == states.REJECTED
    by_minute = dict(
        TaskMinuteRollup.objects.filter(name="demo.validate_order").values_list(
            "minute", "rejected"
        )
    )
    assert by_minute[rollups.minute(merge.utc(at))] == 0
    assert by_minute[rollups.minute(merge.utc(at + 120.02))] == 1
    assert totals("demo.validate_order")["rejected"] == 1


def test_replaying_a_batch_of_rejections_counts_nothing_twice():
    at = time.time() - 600
    events = factories.rejected_task(at=at) + factories.rejected_task(at=at + 1, requeue=True)
    writer = BatchWriter(max_chars=65536)
    writer.write(events)
    minutes = sorted(TaskMinuteRollup.objects.values_list("name", "minute", "rejected"))
    before = totals("demo.validate_order")
    assert before["rejected"] == 2
    writer.write([dict(e) for e in events])
    BatchWriter(max_chars=65536).write([dict(e) for e in reversed(events)])
    assert writer.counters.duplicates == len(events)
    assert sorted(TaskMinuteRollup.objects.values_list("name", "minute", "rejected")) == minutes
    assert totals("demo.validate_order") == before
