"""Dead letters for any Celery app: keep the original message of a task that died.

Install it in the monitored app (the one the workers run) with one call::

    from tasks_admin import deadletter
    deadletter.install(app)                     # queue: app.conf.deadletter_queue
    deadletter.install(app, queue="myapp.dlq")  # or name it here

A worker then publishes, to a durable dead-letter queue on the same broker, the original
message of every task that

- failed for good (an exception that was not retried, or retries exhausted, lost workers
  included): reason ``failed``;
- was rejected without requeue (``raise Reject(requeue=False)``, or a late ack that rejects
  on failure): reason ``rejected``;
- is unknown to the worker (``NotRegistered``): reason ``unknown``; or could not be
  understood at all (``task_rejected``): reason ``invalid``.

The dead letter is JSON (never pickle): the message body ``[args, kwargs, embed]``
(``embed`` holds callbacks, errbacks, chain and chord), its headers and properties, its
routing (exchange, routing key, queue, priority), the exception and traceback. The
console's collector moves dead letters into its database; the console replays them.

Failures and rejects are caught in the worker's main process, by a ``Request`` subclass
that every task of the app gets at worker start: the main process still holds the message
exactly as the broker delivered it, before the task could mutate its arguments, and
publishes before the message is acknowledged (acks_late) or rejected. Unknown and invalid
messages come from Celery's ``task_unknown``/``task_rejected`` signals, which carry the
raw message too. ``task_failure`` is not used: it runs in the pool child, after the task.

This module imports only Celery and kombu: it runs inside any app, with or without Django.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from typing import Any

# billiard ships with Celery. Terminated means "revoked with terminate=True".
from billiard.einfo import ExceptionWithTraceback  # type: ignore[attr-defined]
from billiard.exceptions import Terminated
from celery import Celery, signals
from celery.exceptions import Ignore, Reject, Retry, TimeLimitExceeded, WorkerLostError
from celery.worker.request import Request
from kombu import Queue
from kombu.utils.encoding import safe_repr

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "celery.deadletter"
FORMAT = "celery-console.deadletter/1"
# Marks the hook's messages in a dead-letter queue (a RabbitMQ DLX queue holds raw tasks).
MARKER_HEADER = "x-console-deadletter"
# RabbitMQ's dead-lettering headers: kept in DeadLetter.x_death, never sent on replay.
DEATH_HEADERS = (
    "x-death",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
)
DEFAULT_REQUEST = "celery.worker.request:Request"
PROPERTY_KEYS = (
    "correlation_id",
    "reply_to",
    "priority",
    "delivery_mode",
    "content_type",
    "content_encoding",
)
RETRY_POLICY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2}


def install(app: Celery, *, queue: str | None = None) -> None:
    """Make ``app``'s workers dead-letter the tasks that die. Idempotent.

    Call it where the app is defined, before the worker starts. The queue is ``queue``,
    else the app's ``deadletter_queue`` setting, else ``celery.deadletter`` (read when a
    dead letter is published, so the app's configuration may still be lazy here). Tasks
    whose class sets its own ``Request`` keep it and are not covered for failures/rejects.
    """
    if queue:
        app._console_deadletter_queue = queue  # type: ignore[attr-defined]
    if getattr(app, "_console_deadletter_installed", False):
        return
    app._console_deadletter_installed = True  # type: ignore[attr-defined]

    def on_worker_init(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not app:
            return
        # Strategies read task.Request when the consumer starts, after worker_init.
        for task in app.tasks.values():
            current = getattr(task, "Request", DEFAULT_REQUEST)
            if current in (DEFAULT_REQUEST, Request):
                type(task).Request = DeadLetterRequest

    def on_unknown(sender: Any = None, message: Any = None, name: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and message is not None:
            publish(
                app,
                build(
                    message,
                    reason="unknown",
                    hostname=getattr(sender, "hostname", ""),
                    exception=f"NotRegistered({name!r})",
                    exception_type="NotRegistered",
                    app=app,
                ),
            )

    def on_rejected(sender: Any = None, message: Any = None, exc: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and message is not None:
            publish(
                app,
                build(
                    message,
                    reason="invalid",
                    hostname=getattr(sender, "hostname", ""),
                    exception=safe_repr(exc) if exc is not None else "",
                    exception_type=type(exc).__name__ if exc is not None else "",
                    app=app,
                ),
            )

    signals.worker_init.connect(on_worker_init, weak=False)
    signals.task_unknown.connect(on_unknown, weak=False)
    signals.task_rejected.connect(on_rejected, weak=False)


def queue_name(app: Celery) -> str:
    """The dead-letter queue ``app`` publishes to."""
    return str(
        getattr(app, "_console_deadletter_queue", None)
        or app.conf.get("deadletter_queue")
        or DEFAULT_QUEUE
    )


def fails_for_good(request: Request, exc: BaseException) -> bool:
    """Whether Celery's ``Request.on_failure`` ends this task for good with ``exc``.

    Mirrors celery/worker/request.py (5.5): terminate, Reject, Ignore and Retry have their
    own paths; acks_late tasks requeue on a lost worker (reject_on_worker_lost) and on a
    time limit when acks_on_failure_or_timeout is off.
    """
    if isinstance(exc, Terminated | Reject | Ignore | Retry | MemoryError):
        return False
    task = request.task
    if task.acks_late:
        if task.reject_on_worker_lost and isinstance(exc, WorkerLostError):
            return False
        if isinstance(exc, TimeLimitExceeded) and not task.acks_on_failure_or_timeout:
            return False
    return True


class DeadLetterRequest(Request):
    """Celery's Request, publishing the original message before a task dies for good."""

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> Any:
        exc = _unwrap(exc_info.exception)
        if isinstance(exc, Reject):
            # Request.reject() publishes; it needs the reason, which only this call sees.
            self.__dict__["_deadletter_exc"] = exc_info
        elif not self.__dict__.get("_deadlettered") and fails_for_good(self, exc):
            self._dead_letter("failed", exc_info)
        return super().on_failure(exc_info, send_failed_event, return_ok)

    def reject(self, requeue: bool = False) -> Any:
        # Also when already acknowledged (not acks_late): Reject(requeue=False) then drops
        # the task without a trace, which is exactly what a dead letter is for.
        if not requeue and not self.__dict__.get("_deadlettered"):
            self._dead_letter("rejected", self.__dict__.get("_deadletter_exc"))
        return super().reject(requeue=requeue)

    def _dead_letter(self, reason: str, exc_info: Any) -> None:
        self.__dict__["_deadlettered"] = True
        exception = exception_type = traceback = ""
        if exc_info is not None:
            exc = _unwrap(exc_info.exception)
            exception = safe_repr(exc)
            exception_type = type(exc).__name__
            traceback = str(exc_info.traceback or "")
        this: Any = self  # celery-types does not know Request's private attributes
        try:
            payload = build(
                this._message,
                reason=reason,
                hostname=this._hostname,
                exception=exception,
                exception_type=exception_type,
                traceback=traceback,
                decoded=this._payload,
                app=this._app,
            )
        except Exception:
            log.exception("could not build the dead letter of %s[%s]", self.name, self.id)
            return
        publish(this._app, payload)


def _unwrap(exc: Any) -> Any:
    # Only the pool's wrapper: Retry has an ``exc`` attribute of its own.
    return exc.exc if isinstance(exc, ExceptionWithTraceback) else exc


def build(
    message: Any,
    *,
    reason: str,
    hostname: str = "",
    exception: str = "",
    exception_type: str = "",
    traceback: str = "",
    decoded: Any = None,
    app: Celery | None = None,
) -> dict[str, Any]:
    """The dead letter (a JSON-ready dict) of one kombu ``message``."""
    headers = _jsonable(dict(message.headers or {}))
    properties = dict(message.properties or {})
    delivery_info = dict(message.delivery_info or {})
    body, complete, body_repr = _body(message, headers, decoded)
    exchange = delivery_info.get("exchange") or ""
    routing_key = delivery_info.get("routing_key") or ""
    return {
        "format": FORMAT,
        "reason": reason,
        "task_id": str(headers.get("id") or properties.get("correlation_id") or ""),
        "task": str(headers.get("task") or ""),
        "hostname": hostname or "",
        "failed_at": dt.datetime.now(dt.UTC).isoformat(),
        "exception": exception,
        "exception_type": exception_type,
        "traceback": traceback,
        "message": {
            "body": body,
            "body_complete": complete,
            "body_repr": body_repr,
            "content_type": message.content_type or "",
            "content_encoding": message.content_encoding or "",
            "headers": headers,
            "properties": _jsonable({k: properties[k] for k in PROPERTY_KEYS if k in properties}),
            "exchange": exchange,
            "routing_key": routing_key,
            "queue": _queue_of(app, exchange, routing_key),
            "priority": properties.get("priority"),
            "redelivered": bool(delivery_info.get("redelivered")),
        },
    }


def publish(app: Celery, payload: dict[str, Any]) -> bool:
    """Publish a dead letter to the app's dead-letter queue; never raises (logs instead)."""
    name = queue_name(app)
    try:
        with app.producer_or_acquire() as producer:
            producer.publish(
                payload,
                serializer="json",
                exchange="",
                routing_key=name,
                declare=[Queue(name, durable=True, auto_delete=False)],
                headers={MARKER_HEADER: FORMAT},
                delivery_mode=2,
                retry=True,
                retry_policy=RETRY_POLICY,
            )
    except Exception:
        log.exception("could not dead-letter %s[%s]", payload.get("task"), payload.get("task_id"))
        return False
    log.info(
        "dead-lettered %s[%s] (%s) to %s",
        payload.get("task"),
        payload.get("task_id"),
        payload.get("reason"),
        name,
    )
    return True


def _body(message: Any, headers: dict[str, Any], decoded: Any) -> tuple[Any, bool, str]:
    """``(body, complete, repr)``: the body as JSON, whether it is the exact one, a repr.

    A JSON message's own bytes are parsed with the plain json module, so kombu's type
    markers (datetimes, UUIDs) stay as they were sent and a replay sends them back as is.
    Other serializers (pickle, msgpack, yaml) give the decoded values, kept only when
    JSON can represent them exactly; otherwise only a repr (not replayable) is kept.
    """
    raw = message.body
    if message.content_type == "application/json" and "compression" not in headers:
        try:
            text = (
                raw.decode(message.content_encoding or "utf-8") if isinstance(raw, bytes) else raw
            )
            return json.loads(text), True, ""
        except (ValueError, UnicodeDecodeError, LookupError):
            pass
    if decoded is None:
        try:
            decoded = message.decode()
        except Exception:
            encoded = base64.b64encode(raw if isinstance(raw, bytes) else str(raw).encode())
            return None, False, f"undecodable body (base64): {encoded.decode()[:4096]}"
    try:
        body = json.loads(json.dumps(list(decoded) if isinstance(decoded, tuple) else decoded))
    except (TypeError, ValueError):
        return None, False, safe_repr(decoded)
    exact = body == (list(decoded) if isinstance(decoded, tuple) else decoded)
    return body, exact, "" if exact else safe_repr(decoded)


def _queue_of(app: Celery | None, exchange: str, routing_key: str) -> str:
    """The app's queue this (exchange, routing key) delivers to, else the routing key."""
    if app is not None:
        try:
            for queue in app.amqp.queues.values():
                queue_exchange = queue.exchange.name if queue.exchange is not None else ""
                if queue.routing_key == routing_key and queue_exchange == exchange:
                    return str(queue.name)
        except Exception:  # a broken queue config must not stop the dead letter
            log.debug("could not map routing to a queue", exc_info=True)
    return routing_key


def _jsonable(value: Any) -> Any:
    """``value`` with what JSON cannot hold made text (AMQP timestamps, bytes)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
