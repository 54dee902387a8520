"""The advisor's findings and the alerts: rules, their live state, and what was sent.

Written by tasks_admin.advisor (findings, samples) and tasks_admin.alerts (states,
notices), both run by the collector; rules change through services.alert_rule_* only.
"""

from django.db import models
from django.utils import timezone


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class AdvisorFinding(models.Model):
    """One pitfall seen on one subject (a broker, worker, queue or task name).

    While it keeps being seen, ``last_seen_at`` moves; when a run no longer sees it,
    ``resolved_at`` is set. Seen again later, it is a new row: the page shows that it was
    fixed once and came back.
    """

    check_name = models.CharField(max_length=64)
    subject = models.CharField(max_length=255)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=255)
    evidence = models.TextField()
    why = models.TextField()
    fix = models.TextField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one open finding per check and subject: runs update it in place.
            models.UniqueConstraint(
                fields=["check_name", "subject"],
                condition=models.Q(resolved_at__isnull=True),
                name="advisor_open_uniq",
            )
        ]
        indexes = [
            # The Advisor page's "fixed" list: newest resolutions first.
            models.Index(fields=["-resolved_at"], name="advisor_resolved_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.check_name} on {self.subject} ({self.severity})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class AdvisorRun(models.Model):
    """When the checks last ran, from where, and what they found (the page's "checked at")."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    source = models.CharField(max_length=16)  # collector, page, command
    open_findings = models.IntegerField(default=0)
    # check name -> error text, for checks that could not run (broker away, ...).
    errors = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-started_at"], name="advisor_run_idx")]

    def __str__(self) -> str:
        return f"advisor run {self.started_at:%Y-%m-%d %H:%M:%S} ({self.source})"


class WorkerMemorySample(models.Model):
    """A worker's peak resident memory (KiB) at one ``inspect stats`` reply.

    The inspect poller stores one per reply, so "memory keeps growing" can be judged from a
    trend rather than one number. ``maxrss_kb`` is the reply's ``rusage.maxrss``: the main
    process only, where tasks run for threads/solo/gevent/eventlet but not for prefork.
    ``pool_peak_kb`` is the largest peak of the processes that run tasks (prefork's
    children), present only when the worker's app installed ``tasks_admin.poolmemory``.
    """

    hostname = models.CharField(max_length=255)
    sampled_at = models.DateTimeField()
    maxrss_kb = models.BigIntegerField()
    pool_peak_kb = models.BigIntegerField(null=True, blank=True)
    # The worker's main pid: a restarted worker starts a new trend.
    pid = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["hostname", "sampled_at"], name="worker_mem_idx")]

    def __str__(self) -> str:
        return f"{self.hostname}: {self.maxrss_kb} KiB at {self.sampled_at}"


class WorkerVanished(models.Model):
    """A worker the liveness poller marked offline: heartbeats stopped, no worker-offline."""

    hostname = models.CharField(max_length=255)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    noticed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["-noticed_at"], name="worker_vanished_idx")]

    def __str__(self) -> str:
        return f"{self.hostname} vanished at {self.noticed_at}"


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        QUEUE_DEPTH = "queue_depth", "Queue depth"
        QUEUE_WAIT = "queue_wait", "Queue wait time (seconds)"
        FAILURE_RATE = "failure_rate", "Failure rate per task name (%)"
        WORKERS_DOWN = "workers_down", "Workers down"
        STUCK_TASKS = "stuck_tasks", "Stuck tasks (STARTED longer than the threshold, s)"
        ADVISOR = "advisor", "Advisor findings"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # A queue name, task name or advisor check; blank: every one.
    target = models.CharField(max_length=255, blank=True, default="")
    threshold = models.FloatField(default=0.0)
    window_seconds = models.IntegerField(default=300)
    cooldown_seconds = models.IntegerField(default=1800)
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    # Comma-separated addresses.
    email_to = models.CharField(max_length=500, blank=True, default="")
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def recipients(self) -> list[str]:
        return [part.strip() for part in self.email_to.split(",") if part.strip()]


class AlertState(models.Model):
    """Whether one rule is firing for one subject (a queue, task name, ...), for dedup."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(max_length=255)
    firing = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "subject"], name="alert_state_uniq")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.subject}: {'firing' if self.firing else 'ok'}"


class AlertNotice(models.Model):
    """The history: every notice that fired, resolved, was suppressed or was a test."""

    class Status(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"
        REMINDER = "reminder"
        SUPPRESSED = "suppressed"  # crossed again within the cooldown: recorded, not sent
        TEST = "test"

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="notices"
    )
    rule_name = models.CharField(max_length=120)
    status = models.CharField(max_length=16, choices=Status.choices)
    subject = models.CharField(max_length=255, blank=True, default="")
    value = models.FloatField(null=True, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # channel ("webhook", "email") -> "sent" or the error text.
    delivery = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="alert_notice_idx")]

    def __str__(self) -> str:
        return f"{self.rule_name} {self.status} {self.subject}"


__all__ = [
    "SEVERITY_RANK",
    "AdvisorFinding",
    "AdvisorRun",
    "AlertNotice",
    "AlertRule",
    "AlertState",
    "Severity",
    "WorkerMemorySample",
    "WorkerVanished",
]
