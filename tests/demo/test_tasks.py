"""The demo tasks behave as declared, run eagerly (Task.apply: in process, retries included)."""

import json
import random

from console.celery import app
from demo import tasks, traffic


def test_every_demo_task_is_registered_and_routed_to_default_or_slow():
    demo_tasks = {name: task for name, task in app.tasks.items() if name.startswith("demo.")}

    assert len(demo_tasks) >= 15
    assert {task.queue for task in demo_tasks.values()} == {"default", "slow"}
    assert app.tasks["demo.generate_report"].queue == "slow"


def test_sync_inventory_succeeds_after_failing_its_first_attempts():
    result = tasks.sync_inventory.apply(("FRA-1",), {"fail_times": 2, "backoff": 0})

    assert result.state == "SUCCESS"
    assert result.result["attempts"] == 3


def test_call_partner_api_ends_in_failure_once_max_retries_are_spent():
    result = tasks.call_partner_api.apply(("https://partner.example.com",), {"backoff": 0})

    assert result.state == "FAILURE"
    assert isinstance(result.result, TimeoutError)
    assert f"(attempt {tasks.call_partner_api.max_retries})" in str(result.result)


def test_import_orders_gets_nested_arguments_over_1024_characters():
    batch = traffic.order_batch(random.Random(7))

    result = tasks.import_orders.apply((batch,))

    assert result.state == "SUCCESS"
    assert result.result["payload_chars"] == len(json.dumps(batch)) > 1024
    assert result.result["orders"] == len(batch["orders"]) == 6


def test_charge_card_with_a_declined_payment_method_raises_payment_declined():
    result = tasks.charge_card.apply((123456, 1999), {"payment_method": "pm_card_chargeDeclined"})

    assert result.state == "FAILURE"
    assert isinstance(result.result, tasks.PaymentDeclinedError)
    assert "order 123456, 19.99 EUR" in str(result.result)


def test_parse_webhook_with_a_truncated_body_raises_json_decode_error():
    result = tasks.parse_webhook.apply(("github", '{"action": "opened"'))

    assert result.state == "FAILURE"
    assert isinstance(result.result, json.JSONDecodeError)


def test_chain_passes_each_result_to_the_next_step():
    workflow = tasks.fetch_page.s("https://shop.example.com/c/1") | tasks.parse_page.s()

    result = (workflow | tasks.store_links.s()).apply()

    assert result.get() == 5
