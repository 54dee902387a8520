"""Tasks that look like a production app's, for the console to watch.

They run on the console's own Celery app (console.celery.app autodiscovers this module) and
are fed by ``manage.py demo_traffic``. Every task names its queue: ``default`` for quick
work, ``slow`` for the seconds-long kind, so a worker started with ``-Q default,slow`` sees
both. Failures are deterministic (driven by the arguments), so tests can rely on them.
"""

import hashlib
import json
import re
import time
from collections import Counter
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Reject

DEFAULT = "default"
SLOW = "slow"

# Payment methods the payment task declines, the way a payment provider's test cards do.
DECLINED_METHODS = frozenset({"pm_card_chargeDeclined", "pm_card_chargeDeclinedInsufficientFunds"})


class PaymentDeclinedError(Exception):
    """The payment provider said no; retrying will not help."""


def _work(seconds: float) -> None:
    # Sleep in slices so a soft time limit (a signal) lands promptly.
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


# --- Quick work on the default queue ---


@shared_task(name="demo.add", queue=DEFAULT)
def add(x: int, y: int) -> int:
    return x + y


@shared_task(name="demo.send_welcome_email", queue=DEFAULT)
def send_welcome_email(user_id: int, *, template: str = "welcome") -> dict[str, Any]:
    _work(0.02)
    message_id = hashlib.sha1(f"{user_id}:{template}".encode(), usedforsecurity=False)
    return {"user_id": user_id, "template": template, "message_id": message_id.hexdigest()}


@shared_task(name="demo.resize_image", queue=DEFAULT)
def resize_image(image_id: int, width: int) -> dict[str, Any]:
    _work(0.01 + width / 100_000)
    return {"image_id": image_id, "width": width, "path": f"images/{image_id}/{width}w.webp"}


@shared_task(name="demo.charge_card", queue=DEFAULT)
def charge_card(order_id: int, amount_cents: int, *, payment_method: str) -> dict[str, Any]:
    _work(0.05)
    if payment_method in DECLINED_METHODS:
        raise PaymentDeclinedError(
            f"card_declined: {payment_method.removeprefix('pm_card_')} (order {order_id}, "
            f"{amount_cents / 100:.2f} EUR)"
        )
    return {"order_id": order_id, "charged_cents": amount_cents, "status": "captured"}


@shared_task(name="demo.parse_webhook", queue=DEFAULT)
def parse_webhook(provider: str, body: str) -> dict[str, Any]:
    # A malformed body raises json.JSONDecodeError, as a real handler would.
    payload = json.loads(body)
    return {"provider": provider, "event": payload.get("type", "unknown")}


@shared_task(name="demo.import_orders", queue=DEFAULT)
def import_orders(batch: dict[str, Any]) -> dict[str, Any]:
    """Take a big nested batch; the result proves the whole payload arrived uncut."""
    orders = batch["orders"]
    lines = [line for order in orders for line in order["lines"]]
    return {
        "source": batch["source"],
        "orders": len(orders),
        "lines": len(lines),
        "total_cents": sum(line["qty"] * line["unit_cents"] for line in lines),
        "payload_chars": len(json.dumps(batch)),
    }


# --- Retries with exponential backoff ---


@shared_task(bind=True, name="demo.sync_inventory", queue=DEFAULT, max_retries=5)
def sync_inventory(
    self: Task, warehouse: str, *, fail_times: int = 2, backoff: float = 1.0
) -> dict[str, Any]:
    """Fail the first ``fail_times`` attempts (a flaky upstream), then succeed."""
    attempt = self.request.retries
    if attempt < fail_times:
        exc = ConnectionError(f"inventory service for {warehouse} timed out (attempt {attempt})")
        raise self.retry(exc=exc, countdown=backoff * 2**attempt)
    return {"warehouse": warehouse, "attempts": attempt + 1, "skus_updated": 40 + attempt}


@shared_task(bind=True, name="demo.call_partner_api", queue=DEFAULT, max_retries=3)
def call_partner_api(self: Task, endpoint: str, *, backoff: float = 0.5) -> dict[str, Any]:
    """Always time out; after ``max_retries`` retries the task ends in FAILURE."""
    attempt = self.request.retries
    exc = TimeoutError(f"POST {endpoint}: no response after 30.0 s (attempt {attempt})")
    raise self.retry(exc=exc, countdown=backoff * 2**attempt)


# --- Slow work on the slow queue ---


@shared_task(name="demo.generate_report", queue=SLOW)
def generate_report(report_id: int, *, seconds: float = 3.0) -> dict[str, Any]:
    _work(seconds)
    return {"report_id": report_id, "rows": int(seconds * 1000), "format": "pdf"}


@shared_task(name="demo.export_csv", queue=SLOW, soft_time_limit=2, time_limit=5)
def export_csv(export_id: int, *, seconds: float = 1.0) -> dict[str, Any]:
    """Runs past its soft time limit (SoftTimeLimitExceeded) when ``seconds`` > 2."""
    _work(seconds)
    return {"export_id": export_id, "path": f"exports/{export_id}.csv"}


# --- Canvas: a chain, and a chord's header and body ---


@shared_task(name="demo.fetch_page", queue=DEFAULT)
def fetch_page(url: str) -> dict[str, str]:
    _work(0.05)
    links = "".join(f'<a href="{url}/item/{n}">item {n}</a>' for n in range(5))
    return {"url": url, "html": f"<html><body>{links}</body></html>"}


@shared_task(name="demo.parse_page", queue=DEFAULT)
def parse_page(page: dict[str, str]) -> dict[str, Any]:
    return {"url": page["url"], "links": re.findall(r'href="([^"]+)"', page["html"])}


@shared_task(name="demo.store_links", queue=DEFAULT)
def store_links(parsed: dict[str, Any]) -> int:
    _work(0.02)
    return len(parsed["links"])


@shared_task(name="demo.count_words", queue=DEFAULT)
def count_words(chunk: str) -> dict[str, int]:
    return dict(Counter(chunk.lower().split()))


@shared_task(name="demo.merge_counts", queue=DEFAULT)
def merge_counts(partials: list[dict[str, int]]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for partial in partials:
        total.update(partial)
    return {"words": sum(total.values()), "top": total.most_common(3)}


# --- Scheduled (countdown / ETA) and expiring work ---


@shared_task(name="demo.send_reminder", queue=DEFAULT)
def send_reminder(user_id: int, *, message: str) -> dict[str, Any]:
    return {"user_id": user_id, "message": message, "delivered": True}


@shared_task(name="demo.refresh_cache", queue=DEFAULT)
def refresh_cache(key: str) -> str:
    """Sent with an ``expires`` earlier than its countdown, so a worker revokes it unrun."""
    return f"refreshed {key}"


# --- Dead letters: a task that dies on first delivery and works when replayed ---


@shared_task(bind=True, name="demo.publish_catalog", queue=DEFAULT)
def publish_catalog(
    self: Task, catalog: dict[str, Any], *, fail_unless_replayed: bool = False
) -> dict[str, Any]:
    """Publish a big nested catalog to a partner; the result holds exactly what arrived.

    With ``fail_unless_replayed`` the partner is "down" for the first delivery: the task
    fails for good (no retries), its dead letter keeps the original message, and a replay
    from the console (which sets the ``replay_of`` header) succeeds.
    """
    replay_of = getattr(self.request, "replay_of", None)
    if fail_unless_replayed and not replay_of:
        raise ConnectionRefusedError(f"catalog partner refused {len(json.dumps(catalog))} chars")
    return {
        "catalog": catalog,
        "fail_unless_replayed": fail_unless_replayed,
        "replay_of": replay_of,
    }


@shared_task(name="demo.validate_order", queue=DEFAULT)
def validate_order(order: dict[str, Any]) -> dict[str, Any]:
    """Reject (without requeue) an order with no lines: it is dropped, and dead-lettered."""
    if not order.get("lines"):
        raise Reject(f"order {order.get('id')} has no lines", requeue=False)
    return {"id": order.get("id"), "lines": len(order["lines"])}
