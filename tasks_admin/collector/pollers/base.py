"""The shape every poller shares: a due time, a step that says whether it found work.

The collector's main loop calls ``step()`` on every poller each time round and sleeps only
when none found work (healthchecks' ``sendalerts``). A poller that is not due returns at
once, so the loop needs no schedule of its own.
"""

import logging
import time
from collections.abc import Callable

from django.db import connection

log = logging.getLogger(__name__)

# Seconds the writer is behind what the broker has delivered (0 when caught up).
Lag = Callable[[], float]

# A failing poller (broker or database away) waits longer each time, up to this.
MAX_BACKOFF_SECONDS = 300.0


class Poller:
    """Base class: subclasses set ``name`` and implement ``poll() -> bool``.

    ``poll`` may call ``again_soon()`` when it stopped at a batch limit, so the next
    ``step`` runs it again without waiting a whole interval.
    """

    name = "poller"

    def __init__(self, *, interval: float, first_delay: float = 0.0) -> None:
        self.interval = interval
        self.next_at = time.monotonic() + first_delay
        self.runs = 0
        self.errors = 0
        self.consecutive_errors = 0
        self.last_error = ""
        self.last_duration = 0.0
        self._again = False

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def again_soon(self) -> None:
        self._again = True

    def step(self, now: float | None = None) -> bool:
        """Run ``poll`` if due; True when it found work. Never raises.

        A failure is logged and counted and the poller backs off exponentially: the
        collector must keep ingesting events while a broker or the database is away.
        """
        now = time.monotonic() if now is None else now
        if not self.due(now):
            return False
        self._again = False
        started = time.monotonic()
        try:
            found = self.poll()
        except Exception as exc:
            self.errors += 1
            self.consecutive_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:500]
            backoff = min(self.interval * 2**self.consecutive_errors, MAX_BACKOFF_SECONDS)
            self.next_at = now + max(backoff, 1.0)
            log.warning("%s failed (retry in %.0f s): %s", self.name, backoff, self.last_error)
            self._drop_broken_connection()
            return False
        self.runs += 1
        self.consecutive_errors = 0
        self.last_duration = time.monotonic() - started
        self.next_at = self.schedule_next(now)
        return found

    @staticmethod
    def _drop_broken_connection() -> None:
        # A broken connection would fail every later query of this thread too.
        try:
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
        except Exception:
            log.debug("could not check the database connection", exc_info=True)

    def schedule_next(self, now: float) -> float:
        """When to run next after a successful step that started at ``now``."""
        return now if self._again else now + self.interval

    def poll(self) -> bool:
        raise NotImplementedError

    def counters(self) -> dict[str, object]:
        """For CollectorStatus.counters."""
        return {
            "runs": self.runs,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_duration": round(self.last_duration, 4),
        }
