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


def forget_broker_connections() -> None:
    """Forget the console app's connection and producer pools. They keep the broker URL they
    were made with, so a test that points actions at another broker (CELERY_BROKER_URL in
    the environment, which Celery prefers) must not leave them to the tests after it."""
    from tasks_admin.services.broker import celery_app

    app = celery_app()
    # Dropped, not closed: kombu shares pools between apps by connection, and a thread of a
    # finished request may still hold one.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
