"""fill_history: synthetic history that reads exactly like what the collector writes."""

import datetime as dt
import io
from collections import Counter, defaultdict

import orjson
import pytest
from celery import states
from django.core.management import CommandError, call_command
from django.db import connection

from tasks_admin import histogram, synthetic
from tasks_admin.collector import merge, rollups
from tasks_admin.models import (
    QueueRecord,
    QueueSample,
    TaskEvent,
    TaskMinuteRollup,
    TaskNameTotal,
    TaskRecord,
    WorkerRecord,
)
from tasks_admin.selectors import task_story

# Rows are written over separate connections (COPY, several processes) and the fill runs DDL.
pytestmark = pytest.mark.django_db(transaction=True)

TASKS = 3000


def task_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'tasks_admin_taskrecord'::regclass"
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def filled():
    out = io.StringIO()
    call_command(
        "fill_history",
        "--tasks",
        str(TASKS),
        "--days",
        "2",
        "--seed",
        "5",
        "--jobs",
        "2",
        stdout=out,
        stderr=io.StringIO(),
    )
    yield out.getvalue()
    # The event log is unmanaged: the test flush leaves it alone.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tasks_admin_taskevent")


def logged_events() -> dict[str, list[dict]]:
    """Every task's events as the writer's refold reads them back from the log."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT task_id, type, event_at, hostname, clock, event_key, fields::text "
            "FROM tasks_admin_taskevent"
        )
        for task_id, type_, event_at, hostname, clock, key, fields in cursor.fetchall():
            event = orjson.loads(fields)
            event.update(
                type=type_,
                uuid=task_id,
                timestamp=event_at.timestamp(),
                hostname=hostname,
                clock=clock,
                _key=key,
            )
            by_task[task_id].append(event)
    return by_task


def stored_rows() -> dict[str, dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(merge.COLUMNS)} FROM tasks_admin_taskrecord")
        return {row[0]: dict(zip(merge.COLUMNS, row, strict=True)) for row in cursor.fetchall()}


def test_fill_writes_n_tasks_in_a_realistic_mix_of_states(filled):
    assert TaskRecord.objects.count() == TASKS
    assert f"tasks: {TASKS:,}" in filled
    by_state = Counter(TaskRecord.objects.values_list("state", flat=True))
    assert by_state[states.SUCCESS] > 0.85 * TASKS
    assert 0.02 * TASKS < by_state[states.FAILURE] < 0.1 * TASKS
    assert by_state[states.RETRY] > 0 and by_state[states.REVOKED] > 0
    failed = TaskRecord.objects.filter(state=states.FAILURE).first()
    assert failed is not None
    assert failed.exception_type and "Traceback (most recent call last)" in failed.traceback
    assert TaskRecord.objects.filter(state=states.SUCCESS, retries__gt=0).exists()
    assert TaskRecord.objects.exclude(group_id="").exists()
    assert TaskRecord.objects.exclude(parent_id="").exclude(group_id__gt="").exists()
    assert set(TaskRecord.objects.values_list("queue", flat=True)) <= {
        "billing",
        "celery",
        "emails",
        "media",
        "reports",
        "webhooks",
    }


def test_every_task_has_its_events_in_the_log_and_its_row_is_their_fold(filled):
    events = logged_events()
    rows = stored_rows()
    assert set(events) == set(rows)
    assert sum(map(len, events.values())) == TaskEvent.objects.count() > 4 * TASKS
    for task_id, row in rows.items():
        folded = merge.fold(merge.new_row(task_id), events[task_id])
        expected = {k: v for k, v in folded.items() if k != "updated_at"}
        assert {k: v for k, v in row.items() if k != "updated_at"} == expected, task_id
        assert row["updated_at"] > row["last_event_at"]


def test_rollups_are_the_sum_of_the_rows_contributions(filled):
    expected = rollups.delta((None, row) for row in stored_rows().values())
    stored = {
        (r.name, r.minute): r
        for r in TaskMinuteRollup.objects.all()
        if any(getattr(r, c) for c in rollups.COUNTS)
    }
    assert set(stored) == set(expected)
    for key, delta in expected.items():
        row = stored[key]
        assert {c: getattr(row, c) for c in rollups.COUNTS} == delta.counts
        assert row.runtime_count == delta.runtime_count
        assert (row.runtime_hist or histogram.empty()) == (delta.hist or histogram.empty())
        assert row.queue_wait_count == delta.wait_count
        assert row.queue_wait_sum == pytest.approx(delta.wait_sum)
        assert (row.queue_wait_hist or histogram.empty()) == (delta.wait_hist or histogram.empty())
    assert sum(d.wait_count for d in expected.values()) > 0.8 * TASKS
    totals = TaskMinuteRollup.objects.values_list("received", "succeeded", "failed")
    assert sum(r[0] for r in totals) == TaskRecord.objects.exclude(received_at=None).count()
    assert sum(r[1] for r in totals) == TaskRecord.objects.filter(state=states.SUCCESS).count()
    assert sum(r[2] for r in totals) == TaskRecord.objects.filter(state=states.FAILURE).count()


def test_running_totals_are_the_sum_of_the_rollups(filled):
    totals = {t.name: t for t in TaskNameTotal.objects.all()}
    assert set(totals) == set(TaskMinuteRollup.objects.values_list("name", flat=True))
    for name, total in totals.items():
        minutes = TaskMinuteRollup.objects.filter(name=name)
        for column in (*rollups.COUNTS, "runtime_count", "queue_wait_count"):
            assert getattr(total, column) == sum(getattr(m, column) for m in minutes), column
        for column in ("runtime_sum", "queue_wait_sum"):
            assert getattr(total, column) == pytest.approx(sum(getattr(m, column) for m in minutes))
        for column in ("runtime_hist", "queue_wait_hist"):
            summed = histogram.empty()
            for m in minutes:
                histogram.add(summed, getattr(m, column))
            assert (getattr(total, column) or histogram.empty()) == summed, column


def test_fill_adds_workers_queues_and_a_day_of_queue_samples(filled):
    assert WorkerRecord.objects.count() == 8
    assert WorkerRecord.objects.filter(is_online=True).count() == 7
    assert sum(WorkerRecord.objects.values_list("processed", flat=True)) == (
        TaskRecord.objects.filter(state__in=[states.SUCCESS, states.FAILURE]).count()
    )
    queues = set(QueueRecord.objects.values_list("name", flat=True))
    assert queues == set(TaskRecord.objects.values_list("queue", flat=True).distinct())
    assert QueueSample.objects.filter(queue="celery").count() >= 24 * 60 * 2


def test_the_task_table_keeps_every_index_and_the_log_gets_day_partitions(filled):
    assert {"task_seen_idx", "task_state_order_idx", "tasks_admin_taskrecord_pkey"} <= (
        task_indexes()
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE '%%\\_fill%%'")
        assert cursor.fetchone()[0] == 0
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'tasks_admin_taskevent'::regclass"
        )
        assert cursor.fetchone()[0] >= 3


def test_filling_a_table_with_rows_keeps_its_indexes_and_adds_to_rollups(filled):
    before = task_indexes()
    report = synthetic.fill_history(tasks=500, days=1, seed=9, jobs=1)
    assert not report.rebuilt_indexes
    assert task_indexes() == before
    assert TaskRecord.objects.count() == TASKS + 500
    received = sum(TaskMinuteRollup.objects.values_list("received", flat=True))
    assert received == TaskRecord.objects.exclude(received_at=None).count()
    sent = sum(TaskNameTotal.objects.values_list("sent", flat=True))
    assert sent == TaskRecord.objects.exclude(sent_at=None).count()


def test_pages_render_the_filled_history(filled, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="not-used-1"))
    retried = TaskRecord.objects.filter(state=states.SUCCESS, retries__gt=0).first()
    assert retried is not None
    story = task_story.task_story(retried.task_id)
    assert story is not None
    types = Counter(entry.type for entry in story.timeline)
    assert types["task-retried"] == retried.retries
    assert types["task-received"] == types["task-started"] == retried.retries + 1
    body = client.get(f"/tasks/{retried.task_id}/").content.decode()
    assert "task-retried" in body and "task-succeeded" in body
    tasks = client.get("/tasks/", {"state": "FAILURE"})
    assert tasks.status_code == 200
    failure = TaskRecord.objects.filter(state=states.FAILURE).order_by("-first_seen_at").first()
    assert failure is not None and failure.task_id in tasks.content.decode()
    dashboard = client.get("/")
    assert dashboard.status_code == 200
    top = TaskMinuteRollup.objects.order_by("-succeeded").first()
    assert top is not None and top.name in dashboard.content.decode()


def test_nonsense_sizes_are_refused():
    with pytest.raises(CommandError, match="positive"):
        call_command("fill_history", "--tasks", "0", stdout=io.StringIO())


def test_the_event_log_days_cover_the_fill(filled):
    newest = TaskRecord.objects.order_by("-first_seen_at").first()
    oldest = TaskRecord.objects.order_by("first_seen_at").first()
    assert newest is not None and oldest is not None
    span = newest.first_seen_at - oldest.first_seen_at
    assert dt.timedelta(hours=46) < span <= dt.timedelta(days=2)
