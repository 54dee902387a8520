"""GET /readyz: can this process serve? Database, broker and channel layer, each checked
with a short timeout; 503 naming what is not reachable. (/healthz: the process answers.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

logger = logging.getLogger(__name__)

TIMEOUT = 2.0


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, timeout=int(TIMEOUT))


def check_channel_layer() -> None:
    layer: dict[str, Any] = settings.CHANNEL_LAYERS.get("default", {})
    for host in layer.get("CONFIG", {}).get("hosts", []):
        url = host if isinstance(host, str) else host.get("address")
        if not isinstance(url, str):
            continue
        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "channel_layer": check_channel_layer,
}


def run_checks() -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # any failure means "not ready", said by name
            logger.warning("readyz: %s unreachable: %s", name, type(error).__name__)
            results[name] = f"unreachable: {type(error).__name__}"
        else:
            results[name] = "ok"
    return results


@login_not_required
def readyz(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    failing = [name for name, state in checks.items() if state != "ok"]
    body: dict[str, Any] = {"status": "ok" if not failing else "unavailable", "checks": checks}
    if failing:
        body["error"] = "unavailable"
        body["detail"] = "Not reachable: " + ", ".join(failing) + "."
    return JsonResponse(body, status=503 if failing else 200)
