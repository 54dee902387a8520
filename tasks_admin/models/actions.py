"""Progress of the long-running actions: one row per bulk revoke or retry."""

import datetime as dt

from django.db import models
from django.utils import timezone


class BulkRun(models.Model):
    """A bulk action over the tasks a filter matched, updated after every chunk so the
    page can show how far it got. The audit log holds who started it; this holds progress."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"  # every task acted on
        PARTIAL = "partial"  # finished, some tasks refused or failed
        FAILED = "failed"  # stopped early (broker down, process error)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=16)  # revoke | retry
    # The task-list query string it was started from, so the page can link back to the set.
    query = models.TextField(blank=True, default="")
    total = models.IntegerField(default=0)
    done = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    detail = models.TextField(blank=True, default="")
    # The first few per-task errors: {"task_id": ..., "error": ...}.
    errors = models.JSONField(default=list)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"bulk {self.action} #{self.pk}: {self.done}/{self.total} {self.status}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)

    @property
    def running(self) -> bool:
        return self.status == self.Status.RUNNING

    @property
    def stalled(self) -> bool:
        """Running, but not updated for a minute: the process running it may have stopped
        (a chunk takes about a second)."""
        return self.running and timezone.now() - self.updated_at > dt.timedelta(minutes=1)
