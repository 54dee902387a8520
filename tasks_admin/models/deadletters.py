"""Dead letters: the original message of a task that died, and what became of it.

Rows are written by the collector (tasks_admin.collector.pollers.deadletters) from the
dead-letter queues, and changed only by the replay and discard services.
"""

from django.db import models


class DeadLetter(models.Model):
    class State(models.TextChoices):
        NEW = "new"
        REPLAYED = "replayed"
        DISCARDED = "discarded"

    class Source(models.TextChoices):
        HOOK = "hook"  # tasks_admin.deadletter, installed in the monitored app
        BROKER = "broker"  # RabbitMQ's own dead-lettering (x-dead-letter-exchange)

    # sha256 of the message as delivered (body and headers): a redelivered message has the
    # same key, so storing it again is a no-op (INSERT ... ON CONFLICT DO NOTHING).
    message_key = models.CharField(max_length=64, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    # failed, rejected, unknown, invalid (hook); rejected, expired, maxlen, delivery_limit
    # (RabbitMQ's x-death reason).
    reason = models.CharField(max_length=32, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")

    # The original body, exactly: [args, kwargs, embed] (embed: callbacks, errbacks, chain,
    # chord). body_complete is False when the body could not be kept as JSON (another
    # serializer with values JSON cannot hold): then only body_repr exists, not replayable.
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    embed = models.JSONField(default=dict, blank=True)
    body_complete = models.BooleanField(default=True)
    body_repr = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    # correlation_id, reply_to, priority, delivery_mode, content_type, content_encoding.
    properties = models.JSONField(default=dict, blank=True)
    exchange = models.CharField(max_length=255, blank=True, default="")
    routing_key = models.CharField(max_length=255, blank=True, default="")
    queue = models.CharField(max_length=255, blank=True, default="")
    priority = models.IntegerField(null=True, blank=True)

    exception = models.TextField(blank=True, default="")
    exception_type = models.CharField(max_length=255, blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    x_death = models.JSONField(default=list, blank=True)
    hostname = models.CharField(max_length=255, blank=True, default="")
    # The dead-letter queue it was drained from.
    deadletter_queue = models.CharField(max_length=255, blank=True, default="")
    died_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    state = models.CharField(max_length=16, choices=State.choices, default=State.NEW)
    replayed_as = models.CharField(max_length=255, blank=True, default="")
    replayed_by = models.CharField(max_length=150, blank=True, default="")
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_queue = models.CharField(max_length=255, blank=True, default="")
    discarded_by = models.CharField(max_length=150, blank=True, default="")
    discarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The dead letters page: newest first, optionally by state, task name or queue.
            models.Index(fields=["-received_at", "-id"], name="deadletter_received_idx"),
            models.Index(fields=["state", "-received_at"], name="deadletter_state_idx"),
            models.Index(fields=["name", "-received_at"], name="deadletter_name_idx"),
            models.Index(fields=["queue", "-received_at"], name="deadletter_queue_idx"),
            # The task page's dead letters, and retry's "captured message of this task".
            models.Index(fields=["task_id"], name="deadletter_task_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name or '?'}[{self.task_id}] {self.reason} ({self.state})"
