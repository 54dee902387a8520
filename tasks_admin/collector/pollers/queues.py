"""Queue depth sampling: the latest depth per queue, and a sample row for the trend charts."""

from collections import Counter
from collections.abc import Iterable

from celery import Celery
from django.utils import timezone

from tasks_admin.collector import brokers
from tasks_admin.collector.pollers.base import Poller
from tasks_admin.models import QueueRecord, QueueSample, WorkerRecord


def configured_queue_names(app: Celery, extra: Iterable[str] = ()) -> set[str]:
    """The app's default queue, its ``task_queues`` and ``extra`` (CONSOLE_QUEUES)."""
    names = {str(name) for name in extra if name}
    if app.conf.task_default_queue:
        names.add(str(app.conf.task_default_queue))
    for queue in app.conf.task_queues or ():
        names.add(str(getattr(queue, "name", queue)))
    return names


class QueueDepthPoller(Poller):
    """Every interval, sample the depth of every known queue.

    Known queues: those online workers consume (from ``inspect active_queues``), the
    configured ones, and ``CONSOLE_QUEUES``. Where the broker cannot count consumers
    (Redis), the count is the number of online workers consuming the queue.
    """

    name = "queue_depth"

    def __init__(self, *, app: Celery, interval: float, extra_queues: Iterable[str] = ()) -> None:
        super().__init__(interval=interval)
        self.app = app
        self.configured = configured_queue_names(app, extra_queues)

    def poll(self) -> bool:
        consumers: Counter[str] = Counter()
        for queues in WorkerRecord.objects.filter(is_online=True).values_list("queues", flat=True):
            consumers.update({str(name) for name in queues or ()})
        names = self.configured | set(consumers)
        if not names:
            return False
        depths = brokers.queue_depths(self.app, names)
        now = timezone.now()
        samples = []
        records = []
        for name, (depth, broker_consumers) in sorted(depths.items()):
            count = consumers.get(name, 0) if broker_consumers is None else broker_consumers
            samples.append(QueueSample(queue=name, sampled_at=now, depth=depth, consumers=count))
            records.append(
                QueueRecord(
                    name=name, depth=depth, consumers=count, sampled_at=now, first_seen_at=now
                )
            )
        QueueSample.objects.bulk_create(samples)
        QueueRecord.objects.bulk_create(
            records,
            update_conflicts=True,
            unique_fields=["name"],
            update_fields=["depth", "consumers", "sampled_at"],
        )
        return False
