"""Builders for API tests: rows as the collector writes them."""

import datetime as dt
from typing import Any

from django.utils import timezone

from tasks_admin.models import TaskRecord
from tests import factories


def task(task_id: str | None = None, *, ago: dt.timedelta | None = None, **fields: Any):
    at = fields.pop("at", None) or timezone.now() - (ago or dt.timedelta(minutes=1))
    fields.setdefault("state", "SUCCESS")
    return TaskRecord.objects.create(
        task_id=task_id or factories.new_task_id(),
        first_seen_at=at,
        last_event_at=at,
        updated_at=at,
        **fields,
    )
