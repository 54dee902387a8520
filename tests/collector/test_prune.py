"""Retention: old history goes in small batches, recent history stays."""

import datetime as dt
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from tasks_admin import retention
from tasks_admin.collector import partitions
from tasks_admin.collector.pollers import DailyPrunePoller
from tasks_admin.models import QueueRecord, QueueSample, TaskMinuteRollup, TaskRecord

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


def make_task(*, first_seen_at: dt.datetime, last_event_at: dt.datetime | None = None) -> str:
    task_id = str(uuid.uuid4())
    TaskRecord.objects.create(
        task_id=task_id,
        state="SUCCESS",
        first_seen_at=first_seen_at,
        last_event_at=last_event_at or first_seen_at,
        updated_at=timezone.now(),
    )
    return task_id


def add_event(task_id: str, recorded_at: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tasks_admin_taskevent (recorded_at, task_id, type, event_at, event_key)"
            " VALUES (%s, %s, 'task-succeeded', %s, 1)",
            [recorded_at, task_id, recorded_at],
        )


def event_task_ids() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_id FROM tasks_admin_taskevent")
        return {row[0] for row in cursor.fetchall()}


def remaining_tasks() -> set[str]:
    return set(TaskRecord.objects.values_list("task_id", flat=True))


def test_prune_drops_event_log_days_wholly_older_than_the_cutoff_and_keeps_the_rest():
    today = timezone.now().date()
    for days_ago in (40, 31, 30, 0):
        partitions.ensure_partitions(today - days_ago * DAY, 0)
    old_task = make_task(first_seen_at=timezone.now() - 40 * DAY)
    new_task = make_task(first_seen_at=timezone.now())
    add_event(old_task, timezone.now() - 40 * DAY)
    add_event(new_task, timezone.now())

    counts = retention.prune_history(older_than=30 * DAY)

    # The cutoff falls inside the day 30 days ago: that partition still holds newer rows.
    assert sorted(partitions.existing_partitions().values()) == [today - 30 * DAY, today]
    assert counts["partitions"] == 2
    assert event_task_ids() == {new_task}


def test_prune_deletes_tasks_by_their_last_event_not_their_first():
    now = timezone.now()
    old = make_task(first_seen_at=now - 40 * DAY)
    still_active = make_task(first_seen_at=now - 40 * DAY, last_event_at=now - DAY)
    recent = make_task(first_seen_at=now - DAY)

    counts = retention.prune_history(older_than=30 * DAY)

    assert remaining_tasks() == {still_active, recent}
    assert counts["tasks"] == 1
    assert old not in remaining_tasks()


def test_prune_works_through_many_batches_and_past_kept_rows_with_one_timestamp():
    now = timezone.now()
    long_ago = now - 60 * DAY
    # More kept rows sharing one first_seen_at than a batch holds: the scan must step past.
    kept = {make_task(first_seen_at=long_ago, last_event_at=now) for _ in range(3)}
    for days in range(31, 38):
        make_task(first_seen_at=now - days * DAY)

    batches = [
        count
        for what, count in retention.iter_prune(cutoff=now - 30 * DAY, batch_size=2)
        if what == "tasks"
    ]

    assert remaining_tasks() == kept
    assert sum(batches) == 7
    assert len(batches) > 3  # one short transaction per batch, not one big DELETE


def test_prune_deletes_old_queue_samples_and_rollups_and_can_keep_samples_for_less():
    now = timezone.now()
    QueueRecord.objects.create(name="default", first_seen_at=now)
    for queue in ("default", "orphan"):  # a queue with no QueueRecord left is pruned too
        QueueSample.objects.bulk_create(
            QueueSample(queue=queue, sampled_at=now - days * DAY, depth=days)
            for days in (40, 10, 0)
        )
    TaskMinuteRollup.objects.bulk_create(
        TaskMinuteRollup(name="demo.add", minute=now - days * DAY) for days in (40, 0)
    )

    counts = retention.prune_history(older_than=30 * DAY, samples_older_than=7 * DAY)

    assert sorted(QueueSample.objects.values_list("queue", "depth")) == [
        ("default", 0),
        ("orphan", 0),
    ]
    assert counts["queue_samples"] == 4
    assert list(TaskMinuteRollup.objects.values_list("minute", flat=True)) == [now]
    assert counts["rollups"] == 1


def test_prune_command_prints_what_it_deleted():
    make_task(first_seen_at=timezone.now() - 40 * DAY)
    make_task(first_seen_at=timezone.now())
    out = io.StringIO()

    call_command("prune", "--older-than", "30", stdout=out)

    assert "tasks: 1" in out.getvalue().splitlines()
    assert TaskRecord.objects.count() == 1


def test_prune_command_refuses_to_delete_everything():
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("prune", "--older-than", "0")


def test_daily_prune_poller_prunes_a_little_per_step_until_done():
    now = timezone.now()
    for days in range(31, 36):
        make_task(first_seen_at=now - days * DAY)
    recent = make_task(first_seen_at=now)
    poller = DailyPrunePoller(retention_days=30, first_delay=0.0, budget=0.0, batch_size=2)
    start = poller.next_at

    steps = 0
    while steps < 20:
        poller.step(now=start)
        steps += 1
        if poller.next_at != start:  # the run finished: next one in a day
            break

    assert remaining_tasks() == {recent}
    assert steps > 3
    assert poller.next_at == start + 86400
    assert poller.last_counts["tasks"] == 5


def test_daily_prune_poller_does_nothing_when_retention_is_off():
    make_task(first_seen_at=timezone.now() - 400 * DAY)
    poller = DailyPrunePoller(retention_days=0, first_delay=0.0)

    assert poller.step() is False
    assert TaskRecord.objects.count() == 1
