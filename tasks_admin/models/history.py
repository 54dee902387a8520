"""The record of every task, worker and queue the collector has seen.

Rows are written by the collector in batches (tasks_admin.collector.writer), never through
``save()``; keep logic out of the models.
"""

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models


class TaskRecord(models.Model):
    """One row per task id: its current state after merging every event seen for it."""

    task_id = models.CharField(max_length=255, primary_key=True)
    name = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=32, default="PENDING")

    # When the console first saw any event of this task: the stable sort key of the lists.
    first_seen_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    # Per-state times. received_at and sent_at keep the first occurrence; the others keep the
    # latest (a retried task is started once per attempt), as Celery's own State does.
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    retried_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)

    runtime = models.FloatField(null=True, blank=True)
    retries = models.IntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True, default="")
    queue = models.CharField(max_length=255, blank=True, default="")
    exchange = models.CharField(max_length=255, blank=True, default="")
    routing_key = models.CharField(max_length=255, blank=True, default="")
    root_id = models.CharField(max_length=255, blank=True, default="")
    parent_id = models.CharField(max_length=255, blank=True, default="")
    group_id = models.CharField(max_length=255, blank=True, default="")
    eta = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField(null=True, blank=True)

    # Python reprs cut at 1024 characters by Celery: for display and search, never replay.
    args = models.TextField(blank=True, default="")
    kwargs = models.TextField(blank=True, default="")
    result = models.TextField(blank=True, default="")
    exception = models.TextField(blank=True, default="")
    exception_type = models.CharField(max_length=255, blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    revoke_signal = models.CharField(max_length=32, blank=True, default="")
    # Set where the final state came from the result backend rather than an event.
    reconciled = models.BooleanField(default=False)
    replay_of = models.CharField(max_length=255, blank=True, default="")

    # Merge bookkeeping: stable keys of every event already folded in (replays are no-ops),
    # and the ordering key of the latest one (an older event arriving late forces a refold).
    event_keys = ArrayField(models.BigIntegerField(), default=list)
    last_event_ts = models.FloatField(default=0.0)
    last_event_clock = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The task list: newest first, keyset-paginated on (first_seen_at, task_id).
            models.Index(fields=["-first_seen_at", "task_id"], name="task_seen_idx"),
            # The task list filtered by one of state / name / worker / queue, in the list's
            # full order so no plan needs a sort (migration 0014 says why).
            *(
                models.Index(
                    fields=[column, "-first_seen_at", "task_id"], name=f"task_{column}_order_idx"
                )
                for column in ("state", "name", "worker", "queue")
            ),
            # The advisor's window ("tasks with events in the last hour"): without it each of
            # its history queries scanned the table (1.5-1.8 s apiece with 10M tasks).
            models.Index(fields=["last_event_at"], name="task_last_event_idx"),
            # Lineage on the task page: children of a parent, members of a group or workflow.
            models.Index(
                fields=["parent_id"], name="task_parent_idx", condition=~models.Q(parent_id="")
            ),
            models.Index(
                fields=["group_id"], name="task_group_idx", condition=~models.Q(group_id="")
            ),
            # The task page's "replays of this task" (faithful retry and replay).
            models.Index(
                fields=["replay_of"], name="task_replay_idx", condition=~models.Q(replay_of="")
            ),
            models.Index(
                fields=["root_id"],
                name="task_root_idx",
                condition=~models.Q(root_id=models.F("task_id")) & ~models.Q(root_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or '?'}[{self.task_id}] {self.state}"


class LogJSONField(models.JSONField):
    """A JSONField over a PostgreSQL ``json`` column, which psycopg already decodes."""

    def db_type(self, connection: Any) -> str:
        return "json"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if not isinstance(value, str):
            return value
        return super().from_db_value(value, expression, connection)


class TaskEvent(models.Model):
    """The append-only timeline: one row per distinct event of a task, retries included.

    The table is range-partitioned by day on ``recorded_at`` (the collector's clock, so a
    worker with a skewed clock can never miss a partition) and pruned by dropping
    partitions; migration 0002 creates it, tasks_admin.collector.partitions manages it.
    """

    id = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField()
    task_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    event_at = models.DateTimeField()
    hostname = models.CharField(max_length=255, blank=True, default="")
    clock = models.BigIntegerField(default=0)
    event_key = models.BigIntegerField()
    fields = LogJSONField(default=dict)

    class Meta:
        managed = False
        db_table = "tasks_admin_taskevent"

    def __str__(self) -> str:
        return f"{self.type} {self.task_id} at {self.event_at}"


class WorkerRecord(models.Model):
    hostname = models.CharField(max_length=255, unique=True)
    is_online = models.BooleanField(default=True)
    first_seen_at = models.DateTimeField()
    online_at = models.DateTimeField(null=True, blank=True)
    # When it last went offline; kept after it comes back (tasks it was running are lost).
    offline_at = models.DateTimeField(null=True, blank=True)
    # The collector's clock when the last heartbeat arrived (not the worker's: skew-proof).
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    heartbeat_freq = models.FloatField(default=2.0)
    sw_ident = models.CharField(max_length=64, blank=True, default="")
    sw_ver = models.CharField(max_length=64, blank=True, default="")
    sw_sys = models.CharField(max_length=64, blank=True, default="")
    pid = models.IntegerField(null=True, blank=True)
    loadavg = models.JSONField(default=list, blank=True)
    processed = models.BigIntegerField(default=0)
    active = models.IntegerField(default=0)
    # From periodic `inspect`: stats, active_queues, registered, conf.
    pool = models.CharField(max_length=64, blank=True, default="")
    concurrency = models.IntegerField(null=True, blank=True)
    queues = models.JSONField(default=list, blank=True)
    registered = models.JSONField(default=list, blank=True)
    stats = models.JSONField(default=dict, blank=True)
    conf = models.JSONField(default=dict, blank=True)
    # `inspect reserved`: tasks received and waiting for a free slot, as of inspected_at
    # ({task_id, name, args, kwargs, queue}, the first RESERVED_KEPT of them).
    reserved = models.JSONField(default=list, blank=True)
    reserved_count = models.IntegerField(null=True, blank=True)
    inspected_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname


class QueueRecord(models.Model):
    """The latest depth of each known queue (samples keep the history)."""

    name = models.CharField(max_length=255, unique=True)
    depth = models.BigIntegerField(default=0)
    consumers = models.IntegerField(null=True, blank=True)
    sampled_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class QueueSample(models.Model):
    queue = models.CharField(max_length=255)
    sampled_at = models.DateTimeField()
    depth = models.BigIntegerField()
    consumers = models.IntegerField(null=True, blank=True)

    class Meta:
        # Trend of one queue over the last hour; prune by age.
        indexes = [models.Index(fields=["queue", "sampled_at"], name="queue_sample_idx")]

    def __str__(self) -> str:
        return f"{self.queue}: {self.depth} at {self.sampled_at}"


class RollupCounts(models.Model):
    """What the rollups count, per task name: tasks per lifecycle step (each task once, in
    the minute of that step), the runtime histogram of succeeded tasks and the queue-wait
    histogram (tasks_admin.collector.rollups.queue_wait says which tasks have one)."""

    sent = models.BigIntegerField(default=0)
    received = models.BigIntegerField(default=0)
    started = models.BigIntegerField(default=0)
    succeeded = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    retried = models.BigIntegerField(default=0)
    revoked = models.BigIntegerField(default=0)
    # Tasks with a task-rejected event, with or without requeue (rejected_at is set).
    rejected = models.BigIntegerField(default=0)
    runtime_count = models.BigIntegerField(default=0)
    runtime_sum = models.FloatField(default=0.0)
    # Counts per bucket of tasks_admin.histogram.BOUNDS; percentiles come from these.
    runtime_hist = ArrayField(models.BigIntegerField(), default=list)
    queue_wait_count = models.BigIntegerField(default=0)
    queue_wait_sum = models.FloatField(default=0.0)
    queue_wait_hist = ArrayField(models.BigIntegerField(), default=list)

    class Meta:
        abstract = True


class TaskMinuteRollup(RollupCounts):
    """Per task name and minute: counts and histograms, so charts never scan history.

    Written in the same transaction as the task rows they summarise; counts follow state
    transitions, so a replayed batch changes nothing.
    """

    name = models.CharField(max_length=255)
    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "minute"], name="rollup_name_minute_uniq")
        ]
        indexes = [models.Index(fields=["minute"], name="rollup_minute_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.minute:%Y-%m-%d %H:%M}"


class TaskNameTotal(RollupCounts):
    """Per task name, the running sum of every rollup delta ever written: /metrics reads
    these few rows instead of summing every minute of history on each scrape.

    Updated by the same statements and in the same transaction as the rollups (the
    collector's writer, fill_history), so it equals the sum of the rollups; retention
    prunes old minutes but never these, so Prometheus counters never go down.
    """

    name = models.CharField(max_length=255, unique=True)

    def __str__(self) -> str:
        return self.name


class CollectorStatus(models.Model):
    """What each collector process last reported: role, counters, heartbeat."""

    node = models.CharField(max_length=255, unique=True)
    broker = models.CharField(max_length=255)
    role = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    counters = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.node} ({self.role})"
