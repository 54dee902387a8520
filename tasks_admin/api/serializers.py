"""The JSON shapes of /api/v1 (output), and the query parameters each list accepts.

Output serializers read the selectors' objects; they are also what the OpenAPI schema is
generated from, so the schema and the responses cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from tasks_admin.collector import merge
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.services.workers import COMMANDS


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable code: invalid, not_found, forbidden, ...")
    detail = serializers.CharField(help_text="What went wrong, for people.")


class ActionResultSerializer(serializers.Serializer):
    """What every action endpoint answers (phase 2): a sentence, and the data scripts use."""

    detail = serializers.CharField(help_text="What happened, for people.")
    result = serializers.DictField(
        help_text="New task ids, messages purged, worker replies: as the audit entry records."
    )


class TaskSummarySerializer(serializers.Serializer):
    task_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    first_seen_at = serializers.DateTimeField(help_text="When the console first saw the task.")
    started_at = serializers.DateTimeField(allow_null=True)
    runtime = serializers.FloatField(allow_null=True, help_text="Seconds.")
    retries = serializers.IntegerField()
    worker = serializers.CharField()
    queue = serializers.CharField()
    args = serializers.CharField(help_text="Python repr, cut at 1024 characters by Celery.")
    kwargs = serializers.CharField(help_text="Python repr, cut at 1024 characters by Celery.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """What DRF's fields make of a row, written out: field by field, DRF spent about
        3 ms of a 50-row page's 6 ms of CPU (tests compare the two)."""
        row = instance
        return {
            "task_id": _text(row.task_id),
            "name": _text(row.name),
            "state": _text(row.state),
            "first_seen_at": iso_datetime(row.first_seen_at),
            "started_at": iso_datetime(row.started_at),
            "runtime": None if row.runtime is None else float(row.runtime),
            "retries": None if row.retries is None else int(row.retries),
            "worker": _text(row.worker),
            "queue": _text(row.queue),
            "args": _text(row.args),
            "kwargs": _text(row.kwargs),
        }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def iso_datetime(value: dt.datetime | None) -> str | None:
    """A moment as DRF's DateTimeField writes it: ISO 8601 in the current time zone, UTC
    written as ``Z``."""
    if value is None:
        return None
    # The console never activates another time zone; looking the current one up costs more
    # than the rest of a row under ASGI (a context-variable lookup per call).
    if value.tzinfo is dt.UTC and settings.TIME_ZONE == "UTC":
        text = value.isoformat()
    else:
        text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class TaskListSerializer(serializers.Serializer):
    results = TaskSummarySerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL, or null.")
    next_cursor = serializers.CharField(allow_null=True)
    total = serializers.IntegerField(help_text="Matching tasks, exact up to total_cap.")
    total_capped = serializers.BooleanField(help_text="True when there are more than total_cap.")
    total_cap = serializers.IntegerField()
    mode = serializers.ChoiceField(
        choices=["list", "id", "prefix", "text", "window"],
        help_text="How the query ran: list (index walk), id (exact id), prefix (id prefix), "
        "text (text search in a window), window (started/runtime sort in a window).",
    )
    window = serializers.DictField(
        allow_null=True,
        help_text="For text search and unindexed sorts: the time range or id prefix scanned, "
        "rows scanned, the cap, and whether it was reached (older results may exist).",
    )


class TaskListQuery(serializers.Serializer):
    """Query parameters of GET /api/v1/tasks/ (the same filters as the tasks page)."""

    state = serializers.ListField(
        child=serializers.ChoiceField(choices=list(task_selectors.KNOWN_STATES)),
        required=False,
        help_text="Repeat for several states.",
    )
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Exact task name."
    )
    worker = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Exact hostname."
    )
    queue = serializers.CharField(required=False, allow_blank=True, max_length=255)
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="A task id, an id prefix, or text in args/kwargs/result/exception.",
    )
    match = serializers.ChoiceField(choices=list(task_selectors.MATCHES), required=False)
    sort = serializers.ChoiceField(choices=list(task_selectors.SORTS), required=False)
    # "from"/"to" are Python keywords: declared in __init__ below.
    cursor = serializers.CharField(
        required=False, allow_blank=True, max_length=600, help_text="From `next`."
    )
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, text in (("from", "received at or after"), ("to", "received at or before")):
            self.fields[key] = serializers.CharField(
                required=False,
                allow_blank=True,
                max_length=64,
                help_text=f"Tasks {text}: ISO 8601 (UTC if naive) or relative (15m, 1h, 7d).",
            )


class TimelineEntrySerializer(serializers.Serializer):
    type = serializers.CharField()
    event_at = serializers.DateTimeField()
    hostname = serializers.CharField()
    offset = serializers.FloatField(help_text="Seconds since the task's first event.")
    fields = serializers.SerializerMethodField(method_name="event_fields")

    def event_fields(self, entry: Any) -> dict[str, str]:
        """The event's fields as text, in the timeline's order."""
        return dict(entry.fields)


class TaskRefSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    first_seen_at = serializers.DateTimeField()


class RelatedSerializer(serializers.Serializer):
    tasks = TaskRefSerializer(many=True, source="rows")
    total = serializers.IntegerField(help_text="Exact up to cap.")
    cap = serializers.IntegerField()
    more = serializers.BooleanField(help_text="More related tasks than listed.")


class LineageSerializer(serializers.Serializer):
    root_id = serializers.CharField()
    root = TaskRefSerializer(allow_null=True)
    parent_id = serializers.CharField()
    parent = TaskRefSerializer(allow_null=True)
    children = RelatedSerializer()
    group = RelatedSerializer()
    workflow = RelatedSerializer()
    replay_of_id = serializers.CharField()
    replay_of = TaskRefSerializer(allow_null=True)
    replays = RelatedSerializer()


# Every stored column of a task, less the merge's bookkeeping (collector/merge.py).
TASK_DETAIL_FIELDS = tuple(
    c
    for c in merge.COLUMNS
    if c not in ("event_keys", "last_event_ts", "last_event_clock", "updated_at")
)


class TaskRecordSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    first_seen_at = serializers.DateTimeField()
    last_event_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    succeeded_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    retried_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    rejected_at = serializers.DateTimeField(allow_null=True)
    lost_at = serializers.DateTimeField(allow_null=True)
    runtime = serializers.FloatField(allow_null=True)
    retries = serializers.IntegerField()
    worker = serializers.CharField()
    queue = serializers.CharField()
    exchange = serializers.CharField()
    routing_key = serializers.CharField()
    root_id = serializers.CharField()
    parent_id = serializers.CharField()
    group_id = serializers.CharField()
    eta = serializers.DateTimeField(allow_null=True)
    expires = serializers.DateTimeField(allow_null=True)
    args = serializers.CharField()
    kwargs = serializers.CharField()
    result = serializers.CharField()
    exception = serializers.CharField()
    exception_type = serializers.CharField()
    traceback = serializers.CharField()
    revoke_signal = serializers.CharField()
    reconciled = serializers.BooleanField(
        help_text="The final state came from the result backend, not an event."
    )
    replay_of = serializers.CharField()


class TaskDetailSerializer(serializers.Serializer):
    task = TaskRecordSerializer()
    timeline = TimelineEntrySerializer(many=True)
    timeline_capped = serializers.BooleanField()
    lineage = LineageSerializer()


class TaskNamesSerializer(serializers.Serializer):
    names = serializers.ListField(child=serializers.CharField())


class WorkerSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    is_online = serializers.BooleanField()
    heartbeat_late = serializers.BooleanField(
        help_text="Online by the last word, yet its heartbeats stopped."
    )
    first_seen_at = serializers.DateTimeField()
    online_at = serializers.DateTimeField(allow_null=True)
    offline_at = serializers.DateTimeField(allow_null=True)
    last_heartbeat_at = serializers.DateTimeField(allow_null=True)
    heartbeat_freq = serializers.FloatField()
    sw_ident = serializers.CharField()
    sw_ver = serializers.CharField()
    sw_sys = serializers.CharField()
    pid = serializers.IntegerField(allow_null=True)
    loadavg = serializers.ListField(child=serializers.FloatField())
    processed = serializers.IntegerField()
    active = serializers.IntegerField()
    pool = serializers.CharField()
    concurrency = serializers.IntegerField(allow_null=True)
    queues = serializers.ListField(child=serializers.CharField())
    inspected_at = serializers.DateTimeField(allow_null=True)


class WorkerListSerializer(serializers.Serializer):
    results = WorkerSerializer(many=True)


class WorkerTaskSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.CharField()
    first_seen_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    runtime = serializers.FloatField(allow_null=True)
    retries = serializers.IntegerField()
    queue = serializers.CharField()


class WorkerDetailSerializer(WorkerSerializer):
    registered = serializers.ListField(child=serializers.CharField())
    stats = serializers.DictField(help_text="The last `inspect stats` reply.")
    conf = serializers.DictField(help_text="The last `inspect conf` reply.")
    started = WorkerTaskSerializer(many=True, help_text="Tasks running on it now (capped).")
    started_capped = serializers.BooleanField()
    recent = WorkerTaskSerializer(many=True, help_text="Its newest tasks.")


class QueuePointSerializer(serializers.Serializer):
    minute = serializers.DateTimeField()
    depth = serializers.IntegerField()


class QueueSerializer(serializers.Serializer):
    name = serializers.CharField()
    depth = serializers.IntegerField(help_text="Messages waiting at the last sample.")
    consumers = serializers.IntegerField(allow_null=True)
    sampled_at = serializers.DateTimeField(allow_null=True)
    delta = serializers.IntegerField(allow_null=True, help_text="Depth now minus an hour ago.")
    trend = QueuePointSerializer(many=True, help_text="Last sample of each minute, last hour.")


class QueueListSerializer(serializers.Serializer):
    results = QueueSerializer(many=True)
    total_depth = serializers.IntegerField()


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    username = serializers.CharField()
    role = serializers.CharField()
    source = serializers.CharField()
    address = serializers.CharField()
    action = serializers.CharField()
    targets = serializers.ListField(child=serializers.CharField())
    params = serializers.DictField()
    outcome = serializers.CharField()
    detail = serializers.CharField()
    result = serializers.DictField()


class AuditListSerializer(serializers.Serializer):
    results = AuditEntrySerializer(many=True)
    next = serializers.CharField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)


class AuditQuery(serializers.Serializer):
    action = serializers.CharField(required=False, allow_blank=True, max_length=64)
    username = serializers.CharField(required=False, allow_blank=True, max_length=150)
    outcome = serializers.ChoiceField(choices=["succeeded", "failed", "refused"], required=False)
    cursor = serializers.CharField(required=False, allow_blank=True, max_length=100)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


class RuntimePercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class TaskNameStatsSerializer(serializers.Serializer):
    name = serializers.CharField()
    received = serializers.IntegerField()
    started = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    retried = serializers.IntegerField()
    revoked = serializers.IntegerField()
    failure_rate = serializers.FloatField(
        allow_null=True, help_text="Failed / (succeeded + failed), 0..1; null if none finished."
    )
    per_minute = serializers.FloatField(help_text="Tasks finished per minute over the window.")
    runtime = RuntimePercentilesSerializer(
        help_text="Seconds; from histograms with ~12 % wide buckets (approximate)."
    )


class StatsSerializer(serializers.Serializer):
    window_minutes = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    totals = TaskNameStatsSerializer()
    tasks = TaskNameStatsSerializer(many=True)
    workers = serializers.DictField(child=serializers.IntegerField())
    queues = serializers.DictField(child=serializers.IntegerField())


class StatsQuery(serializers.Serializer):
    window = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=60 * 24 * 30,
        help_text="Minutes to look back, the current minute included (default 60).",
    )
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="One task name."
    )


# --- Actions and dead letters (phase 2): request bodies and what each action answers ---


class RetryBody(serializers.Serializer):
    queue = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Publish into this queue instead of the original one.",
    )
    keep_chord = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Keep the task's chord membership (group, chord) in the new message.",
    )


class RevokeBody(serializers.Serializer):
    terminate = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also signal the pool process running the task (a revoke alone only "
        "stops it from starting).",
    )
    signal = serializers.CharField(
        required=False,
        max_length=16,
        help_text="With terminate: SIGTERM (default), SIGKILL, SIGINT, SIGQUIT, SIGHUP, "
        "SIGUSR1 or SIGUSR2.",
    )


class BulkBody(TaskListQuery):
    """POST /api/v1/tasks/bulk/: the action and the same filters as GET /api/v1/tasks/."""

    action = serializers.ChoiceField(choices=["retry", "revoke"])
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Only count what would be acted on."
    )
    cap = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Refuse if more tasks than this match (never above CONSOLE_BULK_MAX).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A position in the list is not part of a filter.
        del self.fields["cursor"], self.fields["page_size"]


class WorkerControlBody(serializers.Serializer):
    """A command and its own arguments (any other argument is a 400)."""

    command = serializers.ChoiceField(choices=list(COMMANDS))
    n = serializers.IntegerField(
        required=False, min_value=1, help_text="pool_grow, pool_shrink: processes."
    )
    max = serializers.IntegerField(required=False, min_value=0, help_text="autoscale.")
    min = serializers.IntegerField(required=False, min_value=0, help_text="autoscale.")
    queue = serializers.CharField(
        required=False, max_length=255, help_text="add_consumer, cancel_consumer."
    )
    task_name = serializers.CharField(
        required=False, max_length=255, help_text="rate_limit, time_limit."
    )
    rate_limit = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text="rate_limit: 10/s, 100/m, 1000/h; 0 or empty turns the limit off.",
    )
    soft = serializers.FloatField(
        required=False, allow_null=True, help_text="time_limit: soft limit in seconds."
    )
    hard = serializers.FloatField(
        required=False, allow_null=True, help_text="time_limit: hard limit in seconds."
    )


class PurgeBody(serializers.Serializer):
    confirm = serializers.CharField(
        allow_blank=True, max_length=255, help_text="The queue's name, typed again."
    )


class DeadLetterReplayBody(serializers.Serializer):
    queue = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Publish into this queue instead of the original one.",
    )


class DeadLetterIdsBody(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=500
    )


class DeadLetterReplayManyBody(DeadLetterIdsBody, DeadLetterReplayBody):
    pass


class RetryResultSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="The new task's id.")
    replay_of = serializers.CharField()
    source = serializers.ChoiceField(
        choices=["captured", "rebuilt"],
        help_text="captured: the original message; rebuilt: from the recorded argument reprs.",
    )
    dead_letter = serializers.IntegerField(allow_null=True)
    queue = serializers.CharField()


class RevokeResultSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    replies = serializers.DictField(help_text="Each worker's reply, by hostname.")
    signal = serializers.CharField(required=False, help_text="With terminate.")
    terminated_on = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="With terminate: the workers that were running it.",
    )


class BulkDryRunSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Matching tasks, counted up to cap + 1.")
    over_cap = serializers.BooleanField()
    cap = serializers.IntegerField()


class BulkStartedSerializer(serializers.Serializer):
    run_id = serializers.IntegerField(help_text="Follow it at /api/v1/tasks/bulk/{run_id}/.")
    count = serializers.IntegerField()
    status = serializers.CharField()
    ids = serializers.ListField(child=serializers.CharField())


class BulkRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.CharField()
    username = serializers.CharField()
    query = serializers.CharField(help_text="The filter it was started with, as a query string.")
    status = serializers.ChoiceField(choices=["running", "succeeded", "partial", "failed"])
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    percent = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class WorkerControlResultSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    command = serializers.CharField()
    arguments = serializers.DictField(required=False, help_text="As the worker received them.")
    reply = serializers.JSONField(allow_null=True, help_text="The worker's reply (shutdown: null).")


class PurgeResultSerializer(serializers.Serializer):
    queue = serializers.CharField()
    purged = serializers.IntegerField(help_text="Messages the broker deleted.")


class DeadLetterReplayResultSerializer(serializers.Serializer):
    replayed = serializers.DictField(
        child=serializers.CharField(), help_text="New task id by dead letter id."
    )
    skipped = serializers.DictField(child=serializers.CharField(), help_text="Reason by id.")
    missing = serializers.ListField(child=serializers.IntegerField())


class DeadLetterDiscardResultSerializer(serializers.Serializer):
    discarded = serializers.ListField(child=serializers.IntegerField())
    skipped = serializers.DictField(child=serializers.CharField(), help_text="Reason by id.")
    missing = serializers.ListField(child=serializers.IntegerField())


def action_result(name: str, data: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of one action's answer: ActionResultSerializer with its data typed."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "__doc__": ActionResultSerializer.__doc__,
            "detail": serializers.CharField(help_text="What happened, for people."),
            "result": data(),
        },
    )


RetryAnswer = action_result("RetryAnswer", RetryResultSerializer)
RevokeAnswer = action_result("RevokeAnswer", RevokeResultSerializer)
BulkDryRunAnswer = action_result("BulkDryRunAnswer", BulkDryRunSerializer)
BulkStartedAnswer = action_result("BulkStartedAnswer", BulkStartedSerializer)
WorkerControlAnswer = action_result("WorkerControlAnswer", WorkerControlResultSerializer)
PurgeAnswer = action_result("PurgeAnswer", PurgeResultSerializer)
DeadLetterReplayAnswer = action_result("DeadLetterReplayAnswer", DeadLetterReplayResultSerializer)
DeadLetterDiscardAnswer = action_result(
    "DeadLetterDiscardAnswer", DeadLetterDiscardResultSerializer
)


# The dead-letter states (models.DeadLetter.State), named in the schema's enums.
DEADLETTER_STATES = ["new", "replayed", "discarded"]


class DeadLetterQuery(serializers.Serializer):
    """Query parameters of GET /api/v1/dead-letters/ (the Dead letters page's filters)."""

    name = serializers.CharField(
        required=False, allow_blank=True, max_length=255, help_text="Exact task name."
    )
    exception = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="Exception type or reason (exact), or text in the exception.",
    )
    queue = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The task's queue or the dead-letter queue.",
    )
    state = serializers.ChoiceField(choices=DEADLETTER_STATES, required=False)
    age = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=16,
        help_text="Only letters received within this long: 30m, 1h, 24h, 7d.",
    )
    cursor = serializers.CharField(
        required=False, allow_blank=True, max_length=20, help_text="From `next_cursor`."
    )


class DeadLetterSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    task_id = serializers.CharField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=DEADLETTER_STATES)
    reason = serializers.CharField()
    source = serializers.CharField()
    queue = serializers.CharField()
    exception = serializers.CharField()
    exception_type = serializers.CharField()
    received_at = serializers.DateTimeField()
    died_at = serializers.DateTimeField(allow_null=True)
    replayed_as = serializers.CharField()
    replayed_by = serializers.CharField()
    discarded_by = serializers.CharField()
    body_complete = serializers.BooleanField(help_text="False: not replayable (body not JSON).")


class DeadLetterListSerializer(serializers.Serializer):
    results = DeadLetterSummarySerializer(many=True)
    next = serializers.CharField(allow_null=True)
    next_cursor = serializers.CharField(allow_null=True)
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Letters matching the filter, by state."
    )


class DeadLetterDetailSerializer(DeadLetterSummarySerializer):
    args = serializers.JSONField(help_text="Redacted per CONSOLE_REDACT_ARGS.")
    kwargs = serializers.JSONField(help_text="Redacted per CONSOLE_REDACT_ARGS.")
    embed = serializers.JSONField(help_text="callbacks, errbacks, chain, chord.")
    headers = serializers.JSONField(help_text="Redacted per CONSOLE_REDACT_ARGS.")
    properties = serializers.JSONField()
    body_repr = serializers.CharField(help_text="The body, when it could not be kept as JSON.")
    exchange = serializers.CharField()
    routing_key = serializers.CharField()
    priority = serializers.IntegerField(allow_null=True)
    traceback = serializers.CharField()
    x_death = serializers.JSONField(help_text="RabbitMQ's x-death header.")
    hostname = serializers.CharField()
    deadletter_queue = serializers.CharField()
    replayed_at = serializers.DateTimeField(allow_null=True)
    replay_queue = serializers.CharField()
    discarded_at = serializers.DateTimeField(allow_null=True)
