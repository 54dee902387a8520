"""The advisor's checks and the alert rules, on their own schedules inside the collector."""

import datetime as dt
import logging

from django.utils import timezone

from tasks_admin.advisor.base import Context
from tasks_admin.advisor.runner import advise
from tasks_admin.alerts.evaluate import evaluate_rules
from tasks_admin.collector.pollers.base import Poller
from tasks_admin.models import WorkerMemorySample, WorkerVanished

log = logging.getLogger(__name__)

# Memory samples and vanished-worker notes older than this are deleted by the advisor.
SAMPLE_RETENTION = dt.timedelta(days=2)


class AdvisorPoller(Poller):
    """Every interval, run every advisor check against the broker and history; record."""

    name = "advisor"

    def __init__(self, *, interval: float, broker_url: str, first_delay: float = 5.0) -> None:
        # The first run waits for inspect replies and heartbeats to come in.
        super().__init__(interval=interval, first_delay=first_delay)
        self.broker_url = broker_url
        self.last_opened = self.last_resolved = 0

    def poll(self) -> bool:
        ctx = Context.from_settings(broker_url=self.broker_url)
        _, outcome = advise(source="collector", ctx=ctx)
        self.last_opened, self.last_resolved = outcome.opened, outcome.resolved
        if outcome.opened or outcome.resolved:
            log.info("advisor: %d new finding(s), %d resolved", outcome.opened, outcome.resolved)
        cutoff = timezone.now() - SAMPLE_RETENTION
        WorkerMemorySample.objects.filter(sampled_at__lt=cutoff).delete()
        WorkerVanished.objects.filter(noticed_at__lt=cutoff).delete()
        return False


class AlertPoller(Poller):
    """Every interval, evaluate the enabled alert rules and send what changed."""

    name = "alerts"

    def __init__(self, *, interval: float, first_delay: float = 5.0) -> None:
        super().__init__(interval=interval, first_delay=first_delay)

    def poll(self) -> bool:
        tally = evaluate_rules()
        return bool(tally.sent or tally.resolved)
