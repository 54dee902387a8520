"""The collector's periodic work besides ingesting events, one small class per job.

Each poller's ``step()`` runs its job when due and says whether it found work; the main
loop of ``manage.py collect`` calls every ``step()`` each time round (main thread, Django
ORM allowed) and sleeps only when none found work. ``build_pollers`` makes the set the
settings ask for.
"""

from collections.abc import Callable
from typing import Any

from celery import Celery
from django.conf import settings

from tasks_admin.collector.pollers.advisor import AdvisorPoller, AlertPoller
from tasks_admin.collector.pollers.base import Lag, Poller
from tasks_admin.collector.pollers.deadletters import DeadLetterPoller
from tasks_admin.collector.pollers.prune import DailyPrunePoller
from tasks_admin.collector.pollers.queues import QueueDepthPoller
from tasks_admin.collector.pollers.reconcile import ReconcilePoller
from tasks_admin.collector.pollers.workers import (
    EnableEventsPoller,
    InspectPoller,
    WorkerLivenessPoller,
)

__all__ = [
    "AdvisorPoller",
    "AlertPoller",
    "DailyPrunePoller",
    "DeadLetterPoller",
    "EnableEventsPoller",
    "InspectPoller",
    "Lag",
    "Poller",
    "QueueDepthPoller",
    "ReconcilePoller",
    "WorkerLivenessPoller",
    "build_pollers",
]


def build_pollers(
    *,
    emit: Callable[[list[dict[str, Any]]], None],
    app: Celery | None = None,
    lag: Lag | None = None,
) -> list[Poller]:
    """Every poller, configured from CONSOLE_* settings.

    ``emit`` receives synthetic events for the writer. ``lag`` says how many seconds the
    writer is behind the broker (so liveness and reconcile do not mistake a backlog for
    silence). The InspectPoller in the list is the one whose ``request(hostname)`` (or
    ``request_many``) the writer should call when a worker comes online.
    """
    if app is None:
        from console.celery import app as console_app

        app = console_app
    pollers: list[Poller] = [
        EnableEventsPoller(app=app, interval=settings.CONSOLE_ENABLE_EVENTS_INTERVAL),
        InspectPoller(app=app, interval=settings.CONSOLE_INSPECT_INTERVAL),
        WorkerLivenessPoller(lag=lag),
        QueueDepthPoller(
            app=app,
            interval=settings.CONSOLE_QUEUE_SAMPLE_INTERVAL,
            extra_queues=settings.CONSOLE_QUEUES,
        ),
        ReconcilePoller(
            emit,
            interval=settings.CONSOLE_RECONCILE_INTERVAL,
            grace=settings.CONSOLE_RECONCILE_GRACE,
            lag=lag,
        ),
    ]
    if settings.CONSOLE_ADVISOR_INTERVAL > 0:
        pollers.append(
            AdvisorPoller(
                interval=settings.CONSOLE_ADVISOR_INTERVAL,
                broker_url=str(app.conf.broker_url or settings.CELERY_BROKER_URL),
            )
        )
    if settings.CONSOLE_ALERT_INTERVAL > 0:
        pollers.append(AlertPoller(interval=settings.CONSOLE_ALERT_INTERVAL))
    if settings.CONSOLE_DEADLETTER_QUEUES:
        pollers.append(
            DeadLetterPoller(
                broker_url=app.conf.broker_url,
                queues=settings.CONSOLE_DEADLETTER_QUEUES,
                interval=settings.CONSOLE_DEADLETTER_INTERVAL,
                visibility_timeout=settings.CONSOLE_DEADLETTER_VISIBILITY_TIMEOUT,
                transport_options=app.conf.broker_transport_options or {},
            )
        )
    if settings.CONSOLE_RETENTION_DAYS > 0:
        pollers.append(DailyPrunePoller(retention_days=settings.CONSOLE_RETENTION_DAYS))
    return pollers
