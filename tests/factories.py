"""Small keyword builders for events as Celery workers send them."""

import itertools
import time
import uuid as uuidlib
from typing import Any

_clock = itertools.count(1)


def event(type_: str, task_id: str, *, at: float, clock: int | None = None, **fields: Any) -> dict:
    return {
        "type": type_,
        "uuid": task_id,
        "timestamp": at,
        "clock": next(_clock) if clock is None else clock,
        "hostname": fields.pop("hostname", "celery@worker-1"),
        "pid": 4242,
        "utcoffset": 0,
        "local_received": at + 0.001,
        **fields,
    }


def new_task_id() -> str:
    return str(uuidlib.uuid4())


def succeeded_task(
    task_id: str | None = None,
    *,
    name: str = "demo.add",
    at: float | None = None,
    runtime=0.25,
    wait=0.02,
) -> list[dict]:
    """Sent at ``at``, received halfway through ``wait``, started ``wait`` s after sent."""
    task_id = task_id or new_task_id()
    at = at or time.time()
    return [
        event(
            "task-sent",
            task_id,
            at=at,
            hostname="gen1@web",
            name=name,
            args="(1, 2)",
            kwargs="{}",
            retries=0,
            queue="default",
            exchange="",
            routing_key="default",
            root_id=task_id,
            parent_id=None,
        ),
        event(
            "task-received",
            task_id,
            at=at + wait / 2,
            name=name,
            args="(1, 2)",
            kwargs="{}",
            retries=0,
            root_id=task_id,
            parent_id=None,
            eta=None,
            expires=None,
        ),
        event("task-started", task_id, at=at + wait),
        event("task-succeeded", task_id, at=at + wait + runtime, result="3", runtime=runtime),
    ]


def retried_then_succeeded_task(
    task_id: str | None = None, *, at: float | None = None
) -> list[dict]:
    """What a live 5.5 worker sends: the retry's task-received comes before task-retried."""
    task_id = task_id or new_task_id()
    at = at or time.time()
    common = {"name": "demo.flaky", "args": "()", "kwargs": "{'n': 1}", "root_id": task_id}
    return [
        event("task-received", task_id, at=at, retries=0, parent_id=None, **common),
        event("task-started", task_id, at=at + 0.01),
        event("task-received", task_id, at=at + 0.02, retries=1, parent_id=task_id, **common),
        event(
            "task-retried",
            task_id,
            at=at + 0.03,
            exception="ConnectionError('boom')",
            traceback="Traceback (most recent call last):\n  ...\nConnectionError: boom",
        ),
        event("task-started", task_id, at=at + 2.0),
        event("task-succeeded", task_id, at=at + 2.1, result="'ok'", runtime=0.1),
    ]


def failed_task(
    task_id: str | None = None, *, at: float | None = None, name="demo.fail"
) -> list[dict]:
    task_id = task_id or new_task_id()
    at = at or time.time()
    return [
        event(
            "task-received",
            task_id,
            at=at,
            name=name,
            args="()",
            kwargs="{}",
            retries=0,
            root_id=task_id,
            parent_id=None,
        ),
        event("task-started", task_id, at=at + 0.01),
        event(
            "task-failed",
            task_id,
            at=at + 0.05,
            exception="ValueError('bad input')",
            traceback="Traceback (most recent call last):\nValueError: bad input",
        ),
    ]


def rejected_task(
    task_id: str | None = None,
    *,
    at: float | None = None,
    name: str = "demo.validate_order",
    requeue: bool = False,
) -> list[dict]:
    """Received, started, then rejected by the worker (``raise Reject(requeue=...)``)."""
    task_id = task_id or new_task_id()
    at = at or time.time()
    return [
        event(
            "task-received",
            task_id,
            at=at,
            name=name,
            args="({'id': 7, 'lines': []},)",
            kwargs="{}",
            retries=0,
            root_id=task_id,
            parent_id=None,
        ),
        event("task-started", task_id, at=at + 0.01),
        event("task-rejected", task_id, at=at + 0.02, requeue=requeue),
    ]


def heartbeat(
    hostname: str = "celery@worker-1",
    *,
    at: float | None = None,
    type_="worker-heartbeat",
    **fields: Any,
) -> dict:
    at = at or time.time()
    return {
        "type": type_,
        "hostname": hostname,
        "timestamp": at,
        "local_received": at,
        "clock": next(_clock),
        "pid": 1234,
        "freq": 2.0,
        "sw_ident": "py-celery",
        "sw_ver": "5.5.3",
        "sw_sys": "Linux",
        "active": 1,
        "processed": 10,
        "loadavg": [0.1, 0.2, 0.3],
        **fields,
    }


def dead_letter(task_id: str | None = None, **fields: Any):
    """A stored dead letter (tasks_admin.models.DeadLetter) as the collector writes it."""
    from django.utils import timezone

    from tasks_admin.models import DeadLetter

    task_id = task_id or new_task_id()
    values: dict[str, Any] = {
        "message_key": uuidlib.uuid4().hex,
        "source": "hook",
        "reason": "failed",
        "task_id": task_id,
        "name": "demo.charge_card",
        "args": [42, 1999],
        "kwargs": {"payment_method": "pm_card_chargeDeclined"},
        "embed": {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
        "headers": {
            "id": task_id,
            "task": "demo.charge_card",
            "root_id": task_id,
            "retries": 0,
            "argsrepr": "(42, 1999)",
            "kwargsrepr": "{'payment_method': 'pm_card_chargeDeclined'}",
        },
        "properties": {"correlation_id": task_id, "priority": 0},
        "exchange": "",
        "routing_key": "default",
        "queue": "default",
        "exception": "PaymentDeclinedError('card_declined')",
        "exception_type": "PaymentDeclinedError",
        "traceback": "Traceback (most recent call last):\nPaymentDeclinedError: card_declined",
        "deadletter_queue": "celery.deadletter",
        "received_at": timezone.now(),
    }
    values.update(fields)
    return DeadLetter.objects.create(**values)
