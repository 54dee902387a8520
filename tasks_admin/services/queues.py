"""Purge a queue: delete every message waiting in it, after the operator typed its name."""

from __future__ import annotations

import contextlib
from typing import Any

from tasks_admin.roles import Actor
from tasks_admin.services.base import (
    ActionInvalid,
    ActionNotFound,
    ActionResult,
    perform,
)
from tasks_admin.services.broker import broker_connection


def queue_purge(*, actor: Actor, queue: str, confirm: str) -> ActionResult:
    """Delete every ready message in ``queue``; ``confirm`` must be the queue's name, typed.

    Reports the broker's own count of messages deleted (``data["purged"]``). Messages a
    worker has already prefetched (unacknowledged) are not in the queue and stay.
    ActionNotFound when the broker does not know the queue (RabbitMQ; on Redis a missing
    queue is an empty one).
    """
    params = {"confirm": confirm}

    def run() -> ActionResult:
        if not queue or not queue.strip() or len(queue) > 255 or "\x00" in queue:
            raise ActionInvalid("Name the queue to purge.")
        if confirm != queue:
            raise ActionInvalid(
                f"Type the queue name {queue!r} exactly to confirm the purge "
                f"(you typed {confirm!r}). Nothing was purged."
            )
        with broker_connection() as conn:
            channel: Any = conn.channel()
            try:
                purged = channel.queue_purge(queue)
            except conn.channel_errors as error:
                if getattr(error, "code", None) == 404 or "NOT_FOUND" in str(error):
                    raise ActionNotFound(f"The broker has no queue named {queue!r}.") from error
                raise
            finally:
                # The broker closes a channel after an error itself.
                with contextlib.suppress(Exception):
                    channel.close()
        purged = int(purged or 0)
        return ActionResult(
            f"Purged {purged:,} message{'s' if purged != 1 else ''} from queue {queue}.",
            {"queue": queue, "purged": purged},
        )

    return perform(actor, "queue.purge", targets=[queue], params=params, run=run)
