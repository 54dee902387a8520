"""Daily retention inside the collector, a few short batches per step."""

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator

from django.utils import timezone

from tasks_admin import retention
from tasks_admin.collector.pollers.base import Poller

log = logging.getLogger(__name__)

DAY = 86400.0


class DailyPrunePoller(Poller):
    """Once a day, prune history older than ``retention_days`` (0: never).

    A run can take minutes on a large backlog, so each step does at most ``budget``
    seconds of batches and asks to run again soon: the main loop keeps serving the other
    pollers in between, and the writer (its own thread) waits at most one batch.
    """

    name = "prune"

    def __init__(
        self,
        *,
        retention_days: int,
        interval: float = DAY,
        first_delay: float = 60.0,
        budget: float = 0.5,
        batch_size: int = retention.BATCH_SIZE,
    ) -> None:
        super().__init__(interval=interval, first_delay=first_delay)
        self.retention_days = retention_days
        self.budget = budget
        self.batch_size = batch_size
        self._run: Iterator[tuple[str, int]] | None = None
        self._counts: Counter[str] = Counter()
        self.last_counts: dict[str, int] = {}

    def poll(self) -> bool:
        if self.retention_days <= 0:
            return False
        if self._run is None:
            cutoff = timezone.now() - dt.timedelta(days=self.retention_days)
            self._run = retention.iter_prune(cutoff=cutoff, batch_size=self.batch_size)
            self._counts = Counter()
        deadline = time.monotonic() + self.budget
        deleted = 0
        try:
            for what, count in self._run:
                self._counts[what] += count
                deleted += count
                if time.monotonic() >= deadline:
                    self.again_soon()
                    return deleted > 0
        except Exception:
            # A generator that raised is spent: the retry (after back-off) starts afresh.
            self._run = None
            raise
        self._run = None
        self.last_counts = dict(self._counts)
        log.info("pruned history older than %d days: %s", self.retention_days, self.last_counts)
        return deleted > 0
