"""Send a task by name, as Flower's apply, async-apply and send-task routes do.

The message is published with the console's Celery app (JSON only) on a connection to
settings.CELERY_BROKER_URL, as every action is (services/broker.py). Only a known set of
publishing options is accepted: a caller cannot pick the serializer (no pickle), the
exchange type or headers that the worker would trust. ``wait`` polls the result backend
(django-celery-results) for at most APPLY_WAIT seconds, as Flower's apply waits for the
result; a task still running then is answered with its current state and no result.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from typing import Any

from celery import states
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu.exceptions import OperationalError

from tasks_admin.roles import Actor
from tasks_admin.services.base import (
    ActionInvalid,
    ActionResult,
    ActionUnavailable,
    perform,
)
from tasks_admin.services.broker import broker_connection, celery_app

# Seconds apply waits for the result (a web thread must not block forever, as Flower's does).
APPLY_WAIT = 10.0
POLL_INTERVAL = 0.25
# Flower's date format for eta and expires ("2025-01-31 14:00:00.000000"); ISO 8601 too.
FLOWER_DATE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
STRING_OPTIONS = ("queue", "routing_key", "exchange")
NUMBER_OPTIONS = ("countdown", "time_limit", "soft_time_limit")
ALLOWED_OPTIONS = (*STRING_OPTIONS, *NUMBER_OPTIONS, "priority", "eta", "expires")
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}
MAX_PAYLOAD = 1_000_000  # bytes of JSON arguments
AUDIT_REPR = 1000


def task_send(
    *,
    actor: Actor,
    name: str,
    args: Any = None,
    kwargs: Any = None,
    options: dict[str, Any] | None = None,
    wait: bool = False,
) -> ActionResult:
    """Publish task ``name`` with ``args`` and ``kwargs`` (JSON) and publishing ``options``
    (ALLOWED_OPTIONS). Result data: ``task_id``, ``name``, ``state``; with ``wait`` also
    ``result``, ``traceback`` (on FAILURE) and ``ready`` (False when APPLY_WAIT ran out).

    ActionInvalid for a bad name, arguments or option; ActionUnavailable when the broker
    does not take the message.
    """
    options = options if options is not None else {}
    params = {
        "args": _short(args, AUDIT_REPR),
        "kwargs": _short(kwargs, AUDIT_REPR),
        "options": {str(k): _short(v, 200) for k, v in dict(options).items()}
        if isinstance(options, dict)
        else _short(options, 200),
        "wait": wait,
    }

    def run() -> ActionResult:
        task_name = _task_name(name)
        call_args, call_kwargs = _arguments(args, kwargs)
        publish = _options(options)
        task_id = str(uuid.uuid4())
        app = celery_app()
        with broker_connection() as conn:
            try:
                app.send_task(
                    task_name,
                    call_args,
                    call_kwargs,
                    task_id=task_id,
                    connection=conn,
                    retry=True,
                    retry_policy=RETRY_POLICY,
                    **publish,
                )
            except (OSError, OperationalError) as exc:
                raise ActionUnavailable(
                    f"The broker did not take the message ({type(exc).__name__}: {exc}); "
                    "nothing was published."
                ) from exc
        data: dict[str, Any] = {"task_id": task_id, "name": task_name, "state": states.PENDING}
        if not wait:
            return ActionResult(f"Sent {task_name} as task {task_id}.", data)
        result = app.AsyncResult(task_id)
        ready = True
        try:
            result.get(timeout=APPLY_WAIT, propagate=False, interval=POLL_INTERVAL)
        except CeleryTimeoutError:
            ready = False
        data["state"] = result.state
        data["ready"] = ready
        data["result"] = _jsonable(result.result) if ready else None
        if result.state == states.FAILURE:
            data["traceback"] = result.traceback
        if ready:
            detail = f"Ran {task_name} as task {task_id}: {data['state']}."
        else:
            detail = (
                f"Sent {task_name} as task {task_id}; it had not finished after "
                f"{APPLY_WAIT:g} s ({data['state']})."
            )
        return ActionResult(detail, data)

    return perform(actor, "task.send", targets=[str(name)], params=params, run=run)


def _task_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ActionInvalid("A task name is required.")
    name = name.strip()
    if len(name) > 255 or any(ord(c) < 32 or c.isspace() for c in name):
        raise ActionInvalid("A task name is at most 255 printable characters, without spaces.")
    return name


def _arguments(args: Any, kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    args = [] if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, list | tuple):
        raise ActionInvalid("args must be an array")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ActionInvalid("kwargs must be an object")
    try:
        size = len(json.dumps([args, kwargs], allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ActionInvalid(f"args and kwargs must be plain JSON: {exc}") from None
    if size > MAX_PAYLOAD:
        raise ActionInvalid(f"args and kwargs take {size:,} bytes; at most {MAX_PAYLOAD:,}.")
    return list(args), dict(kwargs)


def _options(options: Any) -> dict[str, Any]:
    """Flower passes every other key of the body to apply_async; these are the ones kept."""
    if not isinstance(options, dict):
        raise ActionInvalid("invalid options")
    unknown = sorted(set(options) - set(ALLOWED_OPTIONS))
    if unknown:
        raise ActionInvalid(
            f"Invalid option {', '.join(map(str, unknown))}; allowed: {', '.join(ALLOWED_OPTIONS)}."
        )
    parsed: dict[str, Any] = {}
    for key, value in options.items():
        if value is None:
            continue
        if key in STRING_OPTIONS:
            if not isinstance(value, str) or not value.strip() or len(value) > 255:
                raise ActionInvalid(f"Invalid option {key}: a name of at most 255 characters.")
            parsed[key] = value.strip()
        elif key in NUMBER_OPTIONS:
            parsed[key] = _number(key, value)
        elif key == "priority":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise ActionInvalid("Invalid option priority: a whole number from 0 to 255.")
            parsed[key] = value
        elif key == "eta":
            parsed[key] = _moment(key, value)
        elif key == "expires":
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric or (isinstance(value, str) and _is_number(value)):
                parsed[key] = _number(key, value)
            else:
                parsed[key] = _moment(key, value)
    return parsed


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ActionInvalid(f"Invalid option {key}: a number of seconds.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ActionInvalid(f"Invalid option {key}: a number of seconds.") from None
    if not math.isfinite(number) or not 0 <= number <= 366 * 86400:
        raise ActionInvalid(f"Invalid option {key}: from 0 to 31622400 seconds.")
    return number


def _moment(key: str, value: Any) -> dt.datetime:
    if isinstance(value, str):
        for parse in (
            lambda text: dt.datetime.strptime(text, FLOWER_DATE_FORMAT),
            dt.datetime.fromisoformat,
        ):
            try:
                moment = parse(value.strip())
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    raise ActionInvalid(
        f"Invalid option {key}: a time as {FLOWER_DATE_FORMAT} or ISO 8601, not {value!r}."
    )


def _short(value: Any, limit: int) -> str:
    """A repr for the audit entry, cut at ``limit`` characters."""
    try:
        text = repr(value)
    except Exception as exc:  # a caller's object whose repr fails
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _jsonable(value: Any) -> Any:
    """Flower's safe_result: the value when JSON can hold it, else its repr."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value
