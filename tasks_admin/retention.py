"""Pruning history by age, in short transactions that never hold the collector up for long.

Event-log days go by dropping whole partitions (a catalogue change). Everything else is
deleted in batches of ``batch_size`` rows, each its own transaction, so the collector's
writer waits at most one small batch for a row lock. ``iter_prune`` yields after every
batch: the collector's DailyPrunePoller pulls a few at a time between its other work;
``prune_history`` (the ``prune`` command) runs it to the end.
"""

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from tasks_admin.collector import partitions
from tasks_admin.models import QueueSample, TaskMinuteRollup, TaskRecord

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
# Dropping a partition locks the whole event log; never queue behind the writer for long
# (waiting readers and writers would queue behind the DROP). The next run retries.
PARTITION_LOCK_TIMEOUT = "2s"

# One batch of tasks in first_seen_at order (the task list's index, scanned backwards).
# last_event_at >= first_seen_at, so the first_seen_at bound loses nothing; rows still
# alive (first seen long ago, active since) are stepped over by the lower bound.
_DELETE_TASKS = """
WITH batch AS (
    SELECT task_id, first_seen_at FROM {table}
    WHERE first_seen_at < %(cutoff)s {lower}
    ORDER BY first_seen_at LIMIT %(limit)s
), gone AS (
    DELETE FROM {table} t USING batch b
    WHERE t.task_id = b.task_id AND t.last_event_at < %(cutoff)s
    RETURNING 1
)
SELECT count(*), max(first_seen_at), (SELECT count(*) FROM gone) FROM batch
"""

# Distinct queue names from the (queue, sampled_at) index without reading the table.
_SAMPLE_QUEUES = """
WITH RECURSIVE q(name) AS (
    (SELECT queue FROM {table} ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM {table} WHERE queue > q.name ORDER BY queue LIMIT 1)
    FROM q WHERE q.name IS NOT NULL
)
SELECT name FROM q WHERE name IS NOT NULL
"""


def iter_prune(
    *, cutoff: dt.datetime, samples_cutoff: dt.datetime | None = None, batch_size: int = BATCH_SIZE
) -> Iterator[tuple[str, int]]:
    """Prune everything older than ``cutoff``, yielding ``(what, count)`` per transaction.

    Must run outside ``transaction.atomic`` in production, so each batch commits alone.
    """
    yield from _drop_partitions(cutoff)
    yield from _delete_tasks(cutoff, batch_size)
    yield from _delete_samples(samples_cutoff or cutoff, batch_size)
    yield from _delete_rollups(cutoff, batch_size)


def prune_history(
    *,
    older_than: dt.timedelta,
    samples_older_than: dt.timedelta | None = None,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """Prune history older than ``older_than``; counts per kind of row (and partitions)."""
    now = timezone.now()
    counts: Counter[str] = Counter(partitions=0, tasks=0, queue_samples=0, rollups=0)
    samples_cutoff = now - samples_older_than if samples_older_than is not None else None
    for what, count in iter_prune(
        cutoff=now - older_than, samples_cutoff=samples_cutoff, batch_size=batch_size
    ):
        counts[what] += count
    return dict(counts)


def _drop_partitions(cutoff: dt.datetime) -> Iterator[tuple[str, int]]:
    # A partition holds [day, day + 1): wholly older than the cutoff when day < its date.
    before = cutoff.astimezone(dt.UTC).date()
    old_days = sorted(day for day in partitions.existing_partitions().values() if day < before)
    for day in old_days:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{PARTITION_LOCK_TIMEOUT}'")
                dropped = partitions.drop_partitions_before(day + dt.timedelta(days=1))
        except OperationalError as exc:
            log.warning("event log partition %s not dropped (retried next run): %s", day, exc)
            return
        yield "partitions", len(dropped)


def _delete_tasks(cutoff: dt.datetime, batch_size: int) -> Iterator[tuple[str, int]]:
    table = connection.ops.quote_name(TaskRecord._meta.db_table)
    lower: dt.datetime | None = None
    strict = False
    while True:
        bound = "" if lower is None else f"AND first_seen_at {'>' if strict else '>='} %(lower)s"
        with connection.cursor() as cursor:
            cursor.execute(
                _DELETE_TASKS.format(table=table, lower=bound),
                {"cutoff": cutoff, "lower": lower, "limit": batch_size},
            )
            scanned, last_seen, deleted = cursor.fetchone()
        yield "tasks", deleted
        if scanned < batch_size:
            return
        # More than a batch of kept rows sharing one first_seen_at: step past them.
        strict = last_seen == lower and deleted == 0
        lower = last_seen


def _delete_samples(cutoff: dt.datetime, batch_size: int) -> Iterator[tuple[str, int]]:
    table = connection.ops.quote_name(QueueSample._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_SAMPLE_QUEUES.format(table=table))
        queues = [row[0] for row in cursor.fetchall()]
    for queue in queues:
        while True:
            # Served by the (queue, sampled_at) index, one queue at a time.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
                    "WHERE queue = %s AND sampled_at < %s LIMIT %s)",
                    [queue, cutoff, batch_size],
                )
                deleted = cursor.rowcount
            yield "queue_samples", deleted
            if deleted < batch_size:
                break


def _delete_rollups(cutoff: dt.datetime, batch_size: int) -> Iterator[tuple[str, int]]:
    table = connection.ops.quote_name(TaskMinuteRollup._meta.db_table)
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
                "WHERE minute < %s LIMIT %s)",
                [cutoff, batch_size],
            )
            deleted = cursor.rowcount
        yield "rollups", deleted
        if deleted < batch_size:
            return
