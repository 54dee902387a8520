"""The console's way to the broker: its Celery app, connected to settings.CELERY_BROKER_URL.

Every call opens its own connection from the URL in settings, and control commands are
published on that connection. (Celery's ``app.control`` publishes through the app's cached
producer pool whatever connection it is handed, and Celery lets the CELERY_BROKER_URL
environment variable override its configuration; going through the connection keeps an
action on the broker the settings name.) A broker that is down fails fast as
``ActionUnavailable`` instead of hanging the request.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from django.conf import settings
from kombu import Connection

from tasks_admin.services.base import ActionUnavailable

# Seconds to wait for control replies. A broadcast to every worker always waits this long
# after the last reply (kombu's _collect); with a destination it returns on the last one.
CONTROL_TIMEOUT = 1.0
TARGETED_TIMEOUT = 3.0


def celery_app() -> Celery:
    from console.celery import app

    return app


@contextmanager
def broker_connection() -> Iterator[Connection]:
    """A fresh connection to the configured broker; ActionUnavailable when unreachable."""
    conn = Connection(
        settings.CELERY_BROKER_URL,
        transport_options=celery_app().conf.broker_transport_options or {},
        connect_timeout=5,
    )
    try:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=5)
        except conn.connection_errors as error:
            raise ActionUnavailable(f"The broker is unreachable: {error}") from error
        yield conn
    finally:
        conn.release()


def broadcast(
    command: str,
    *,
    arguments: dict[str, Any] | None = None,
    destination: list[str] | None = None,
    reply: bool = True,
    timeout: float = CONTROL_TIMEOUT,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Send a control ``command`` over Celery's mailbox on a connection to the configured
    broker; the replies in Celery's shape (``[{"w1@h": {...}}, ...]``)."""
    with broker_connection() as conn:
        control: Any = celery_app().control
        mailbox = copy.copy(control.mailbox)
        # No producer pool: publish on this connection's channel, not the app's pool.
        mailbox._producer_pool = None
        replies = mailbox(conn)._broadcast(
            command,
            arguments or {},
            destination,
            reply,
            timeout,
            limit if limit is not None else (len(destination) if destination else None),
        )
    return list(replies or [])


def replies_by_worker(replies: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``[{"w1@h": {...}}, {"w2@h": {...}}]`` (Celery's reply shape) as one dict."""
    merged: dict[str, Any] = {}
    for reply in replies or []:
        merged.update(reply)
    return merged


def reply_text(reply: Any) -> str:
    if isinstance(reply, dict):
        if "ok" in reply:
            return str(reply["ok"])
        if "error" in reply:
            return f"error: {reply['error']}"
    return str(reply)
