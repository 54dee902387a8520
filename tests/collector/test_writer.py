"""The writer against the real database: rows, timeline, rollups, workers, bad input."""

import random
import time

import pytest
from celery import states
from django.db import connection

from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import TaskEvent, TaskMinuteRollup, TaskRecord, WorkerRecord
from tests import factories

pytestmark = pytest.mark.django_db


def writer() -> BatchWriter:
    return BatchWriter(max_chars=65536)


def snapshot():
    rows = {
        r["task_id"]: {**r, "event_keys": sorted(r["event_keys"]), "updated_at": None}
        for r in TaskRecord.objects.values()
    }
    rollups = sorted(
        TaskMinuteRollup.objects.values_list(
            "name",
            "minute",
            "received",
            "started",
            "succeeded",
            "failed",
            "retried",
            "revoked",
            "runtime_count",
            "runtime_hist",
        )
    )
    # A row that only ever held contributions later moved elsewhere is all zeros: the same
    # as no row. Likewise an all-zero histogram and an empty one.
    rollups = [(*r[:-1], r[-1] if any(r[-1]) else []) for r in rollups if any(r[2:-1])]
    events = sorted(TaskEvent.objects.values_list("task_id", "event_key"))
    return rows, rollups, events


def test_a_batch_becomes_rows_timeline_and_rollups():
    events = factories.succeeded_task(name="demo.add") + factories.failed_task(name="demo.fail")
    writer().write(events)
    ok = TaskRecord.objects.get(task_id=events[0]["uuid"])
    assert (ok.state, ok.name, ok.queue, ok.result, ok.runtime) == (
        states.SUCCESS,
        "demo.add",
        "default",
        "3",
        0.25,
    )
    assert TaskEvent.objects.filter(task_id=ok.task_id).count() == 4
    failed = TaskRecord.objects.get(task_id=events[4]["uuid"])
    assert (failed.state, failed.exception_type) == (states.FAILURE, "ValueError")
    add = TaskMinuteRollup.objects.get(name="demo.add")
    assert (add.received, add.succeeded, add.runtime_count) == (1, 1, 1)
    assert TaskMinuteRollup.objects.get(name="demo.fail").failed == 1


def test_writing_the_same_batch_twice_changes_nothing():
    events = factories.retried_then_succeeded_task() + factories.succeeded_task()
    w = writer()
    w.write(events)
    first = snapshot()
    w.write([dict(e) for e in events])
    assert snapshot() == first
    assert w.counters.duplicates == len(events)


def test_any_order_and_batching_gives_the_same_rows_and_rollups():
    tasks = [factories.retried_then_succeeded_task() for _ in range(3)]
    tasks += [factories.succeeded_task() for _ in range(3)] + [factories.failed_task()]
    events = [e for task in tasks for e in task]
    writer().write(events)
    expected = snapshot()
    rng = random.Random(11)
    for _ in range(3):
        TaskRecord.objects.all().delete()
        TaskMinuteRollup.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM tasks_admin_taskevent")
        shuffled = [dict(e) for e in events]
        rng.shuffle(shuffled)
        w = writer()
        while shuffled:
            size = rng.randint(1, 5)
            w.write(shuffled[:size])
            shuffled = shuffled[size:]
        assert snapshot() == expected
        assert w.counters.refolds > 0


def test_malformed_events_are_counted_and_their_neighbours_kept():
    good = factories.succeeded_task()
    bad = [
        {"type": "task-started"},  # no task id
        {"no": "type"},
        {
            "type": "task-failed",
            "uuid": "x" * 10,
            "timestamp": "not a time",
            "local_received": None,
        },
    ]
    w = writer()
    w.write([bad[0], good[0], bad[1], *good[1:], bad[2]])
    assert w.counters.invalid == 3
    assert TaskRecord.objects.get(task_id=good[0]["uuid"]).state == states.SUCCESS


def test_a_5mb_traceback_is_stored_cut_and_marked():
    events = factories.failed_task()
    events[-1]["traceback"] = "Traceback (most recent call last):\n" + "  frame\n" * 700_000
    writer().write(events)
    row = TaskRecord.objects.get(task_id=events[0]["uuid"])
    assert row.state == states.FAILURE
    assert len(row.traceback) < 70_000
    assert "[cut:" in row.traceback


def test_hostile_strings_are_stored_safely():
    events = factories.succeeded_task(name="bad\udcffname\x00with nul")
    events[0]["args"] = "('\x00', '\ud800')"
    writer().write(events)
    row = TaskRecord.objects.get(task_id=events[0]["uuid"])
    assert row.name.startswith("bad") and "\x00" not in row.name
    assert row.state == states.SUCCESS


def test_unknown_event_types_are_counted_not_fatal():
    w = writer()
    w.write([{"type": "martian-landing", "timestamp": time.time()}, *factories.failed_task()])
    assert w.counters.unknown_types == {"martian-landing": 1}
    assert TaskRecord.objects.count() == 1


def test_worker_goes_online_then_offline():
    now = time.time()
    w = writer()
    new = []
    w.on_new_workers = new.append
    w.write([factories.heartbeat("celery@a", at=now, type_="worker-online")])
    worker = WorkerRecord.objects.get(hostname="celery@a")
    assert (worker.is_online, worker.sw_ver, worker.processed) == (True, "5.5.3", 10)
    assert new == [{"celery@a"}]
    w.write([factories.heartbeat("celery@a", at=now + 2, type_="worker-offline")])
    worker.refresh_from_db()
    assert worker.is_online is False
    assert worker.offline_at is not None
