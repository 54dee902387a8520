"""The mix of work ``demo_traffic`` submits: each scenario sends one realistic unit of work.

A scenario returns how many task messages it put on the broker (a chain sends only its first
step; a group or chord sends its whole header). Weights keep a 2-process demo worker busy
but not swamped at the default 5 submissions per second: the slow queue gets about one
task-second per second.
"""

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import chain, chord, group

from demo import tasks


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: int
    submit: Callable[[random.Random], int]


def order_batch(rng: random.Random, *, orders: int = 6) -> dict[str, Any]:
    """A batch of orders, nested dicts of lists of dicts, well over 1024 characters."""
    return {
        "source": rng.choice(["shopify", "amazon", "pos-berlin"]),
        "batch_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "orders": [
            {
                "id": rng.randrange(100_000, 999_999),
                "customer": {
                    "id": rng.randrange(1, 50_000),
                    "email": f"customer{rng.randrange(1, 50_000)}@example.com",
                    "address": {"city": rng.choice(["Berlin", "Lyon", "Porto"]), "zip": "10115"},
                },
                "lines": [
                    {
                        "sku": f"SKU-{rng.randrange(1000, 9999)}",
                        "qty": rng.randrange(1, 5),
                        "unit_cents": rng.randrange(199, 9999),
                        "tags": rng.sample(["gift", "fragile", "promo", "bulk", "express"], 2),
                    }
                    for _ in range(rng.randrange(2, 5))
                ],
            }
            for _ in range(orders)
        ],
    }


def _add(rng: random.Random) -> int:
    tasks.add.delay(rng.randrange(100), rng.randrange(100))
    return 1


def _welcome_email(rng: random.Random) -> int:
    tasks.send_welcome_email.delay(rng.randrange(1, 50_000), template="welcome")
    return 1


def _charge_card(rng: random.Random) -> int:
    tasks.charge_card.delay(
        rng.randrange(100_000, 999_999), rng.randrange(500, 50_000), payment_method="pm_card_visa"
    )
    return 1


def _charge_card_declined(rng: random.Random) -> int:
    token = rng.choice(sorted(tasks.DECLINED_METHODS))
    tasks.charge_card.delay(
        rng.randrange(100_000, 999_999), rng.randrange(500, 50_000), payment_method=token
    )
    return 1


def _webhook(rng: random.Random) -> int:
    tasks.parse_webhook.delay("stripe", '{"type": "invoice.paid", "id": "evt_1"}')
    return 1


def _webhook_malformed(rng: random.Random) -> int:
    tasks.parse_webhook.delay("github", '{"action": "opened", "number": 12')
    return 1


def _import_orders(rng: random.Random) -> int:
    tasks.import_orders.delay(order_batch(rng))
    return 1


def _retry_then_succeed(rng: random.Random) -> int:
    tasks.sync_inventory.delay(
        rng.choice(["FRA-1", "LYS-2", "OPO-1"]), fail_times=rng.randrange(1, 4)
    )
    return 1


def _retry_then_give_up(rng: random.Random) -> int:
    tasks.call_partner_api.delay("https://partner.example.com/v2/shipments")
    return 1


def _report(rng: random.Random) -> int:
    tasks.generate_report.delay(rng.randrange(1, 1000), seconds=rng.uniform(1.0, 5.0))
    return 1


def _export(rng: random.Random) -> int:
    # About one export in four runs past its 2 s soft time limit.
    tasks.export_csv.delay(rng.randrange(1, 1000), seconds=rng.uniform(0.5, 2.8))
    return 1


def _crawl_chain(rng: random.Random) -> int:
    url = f"https://shop.example.com/category/{rng.randrange(1, 40)}"
    chain(tasks.fetch_page.s(url), tasks.parse_page.s(), tasks.store_links.s()).delay()
    return 1


def _thumbnails_group(rng: random.Random) -> int:
    image_id = rng.randrange(1, 100_000)
    widths = (160, 320, 640, 1280)
    group(tasks.resize_image.s(image_id, width) for width in widths).delay()
    return len(widths)


def _word_count_chord(rng: random.Random) -> int:
    words = ["celery", "queue", "worker", "broker", "event", "retry", "result"]
    chunks = [" ".join(rng.choices(words, k=30)) for _ in range(rng.randrange(3, 6))]
    chord(tasks.count_words.s(chunk) for chunk in chunks)(tasks.merge_counts.s())
    return len(chunks)


def _reminder_later(rng: random.Random) -> int:
    tasks.send_reminder.apply_async(
        (rng.randrange(1, 50_000),),
        {"message": "Your cart misses you"},
        countdown=rng.uniform(5, 30),
    )
    return 1


def _expiring_cache_refresh(rng: random.Random) -> int:
    # Due in 10 s but stale after 5 s: the worker revokes it (expired) without running it.
    tasks.refresh_cache.apply_async((f"prices:{rng.randrange(1, 500)}",), countdown=10, expires=5)
    return 1


SCENARIOS = (
    Scenario("add", 18, _add),
    Scenario("welcome_email", 14, _welcome_email),
    Scenario("charge_card", 10, _charge_card),
    Scenario("charge_card_declined", 3, _charge_card_declined),
    Scenario("webhook", 5, _webhook),
    Scenario("webhook_malformed", 2, _webhook_malformed),
    Scenario("import_orders", 5, _import_orders),
    Scenario("retry_then_succeed", 3, _retry_then_succeed),
    Scenario("retry_then_give_up", 1, _retry_then_give_up),
    Scenario("report", 3, _report),
    Scenario("export", 2, _export),
    Scenario("chain", 5, _crawl_chain),
    Scenario("group", 4, _thumbnails_group),
    Scenario("chord", 3, _word_count_chord),
    Scenario("countdown", 4, _reminder_later),
    Scenario("expiring", 2, _expiring_cache_refresh),
)


def pick(rng: random.Random) -> Scenario:
    return rng.choices(SCENARIOS, weights=[s.weight for s in SCENARIOS])[0]
