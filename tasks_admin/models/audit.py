"""The audit log: one row per action attempt, allowed or refused, succeeded or failed."""

from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Written by services.perform only. Append-only: a database trigger (migration 0004)
    refuses UPDATE and DELETE, so neither the console nor a bug can rewrite history."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        REFUSED = "refused"

    created_at = models.DateTimeField(default=timezone.now)
    # The name, not a foreign key: entries outlive users, and deleting a user must not
    # have to touch (update) an append-only table.
    username = models.CharField(max_length=150, blank=True, default="")
    role = models.CharField(max_length=16, blank=True, default="")
    source = models.CharField(max_length=16)  # page, api, command, system
    address = models.CharField(max_length=64, blank=True, default="")
    action = models.CharField(max_length=64)  # a key of roles.ACTION_ROLES
    targets = models.JSONField(default=list)  # task ids, queue names, hostnames, ...
    params = models.JSONField(default=dict)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.TextField(blank=True, default="")  # what happened, or why not
    result = models.JSONField(default=dict)  # new task ids, messages purged, worker replies

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The audit page: newest first, optionally by action, user or outcome.
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
            models.Index(fields=["username", "-created_at"], name="audit_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.outcome}"
