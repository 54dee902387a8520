"""The JSON shapes of /api/v1 (output), and the query parameters each list accepts.

Output serializers read the selectors' objects; they are also what the OpenAPI schema is
generated from, so the schema and the responses cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from tasks_admin.selectors import tasks as task_selectors


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


TASK_DETAIL_FIELDS = (
    "task_id",
    "name",
    "state",
    "first_seen_at",
    "last_event_at",
    "sent_at",
    "received_at",
    "started_at",
    "succeeded_at",
    "failed_at",
    "retried_at",
    "revoked_at",
    "rejected_at",
    "lost_at",
    "runtime",
    "retries",
    "worker",
    "queue",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
    "group_id",
    "eta",
    "expires",
    "args",
    "kwargs",
    "result",
    "exception",
    "exception_type",
    "traceback",
    "revoke_signal",
    "reconciled",
    "replay_of",
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
