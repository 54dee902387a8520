"""Read-only Django admin views of the history, until the console's own pages exist.

Rows are written by the collector only; the admin must never edit or delete them.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tasks_admin.models import (
    CollectorStatus,
    QueueRecord,
    TaskMinuteRollup,
    TaskRecord,
    WorkerRecord,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TaskRecord)
class TaskRecordAdmin(ReadOnlyAdmin):
    list_display = ("task_id", "name", "state", "worker", "queue", "retries", "first_seen_at")
    list_filter = ("state",)
    search_fields = ("=task_id",)
    ordering = ("-first_seen_at",)
    exclude = ("event_keys",)
    # No COUNT(*) over millions of rows on every page.
    show_full_result_count = False


@admin.register(WorkerRecord)
class WorkerRecordAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "is_online", "last_heartbeat_at", "active", "processed", "pool")


@admin.register(QueueRecord)
class QueueRecordAdmin(ReadOnlyAdmin):
    list_display = ("name", "depth", "consumers", "sampled_at")


@admin.register(TaskMinuteRollup)
class TaskMinuteRollupAdmin(ReadOnlyAdmin):
    list_display = ("name", "minute", "received", "succeeded", "failed", "retried")
    ordering = ("-minute",)


@admin.register(CollectorStatus)
class CollectorStatusAdmin(ReadOnlyAdmin):
    list_display = ("node", "broker", "role", "heartbeat_at")
