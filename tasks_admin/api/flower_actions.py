"""Flower 2.x's action routes (worker control, send/revoke tasks), same paths, parameters
and success JSON, each through its service (role check and audit) with ``actor_of``.

Parameters come from the query string or a form (or JSON) body, as Tornado's
``get_argument`` reads them; apply/async-apply/send-task read Flower's JSON body
``{"args": [...], "kwargs": {...}, <apply_async options>}``. Errors keep Flower's status
codes where Flower has them (400 bad argument, 403 refused by the role or by the worker,
404 unknown worker or task, 503 broker unreachable) with the console's JSON error body
``{"error": code, "detail": text}`` instead of Flower's plain text; where Flower has none
the console's own apply (404 unknown task id for revoke, 409 a finished task, 503 a worker
that does not answer). README, "Flower compatibility", lists the differences.
"""

from __future__ import annotations

import json
from typing import Any

from celery import states
from django.http.request import RawPostDataException
from rest_framework import exceptions
from rest_framework.decorators import parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from tasks_admin import services
from tasks_admin.api.auth import actor_of
from tasks_admin.api.errors import error_body
from tasks_admin.api.flower import flower_view
from tasks_admin.models import TaskRecord, WorkerRecord
from tasks_admin.roles import Actor
from tasks_admin.services.broker import celery_app

PARSERS = [FormParser, MultiPartParser, JSONParser]
TRUE = ("y", "yes", "t", "true", "on", "1")
FALSE = ("n", "no", "f", "false", "off", "0")


# --- parameters, as Tornado's get_argument ---------------------------------------------


def _arg(request: Request, key: str) -> str | None:
    """``key`` from the body (form or JSON object), else from the query string."""
    value: Any = None
    data = request.data
    if hasattr(data, "get"):
        value = data.get(key)
    if value is None:
        value = request.query_params.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:  # an uploaded file, a JSON list or object
        raise exceptions.ValidationError(f"Invalid argument for {key}: give one plain value")
    if "\x00" in text:
        raise exceptions.ValidationError("NUL characters are not allowed")
    return text


def _required(request: Request, key: str) -> str:
    value = _arg(request, key)
    if value is None:
        raise exceptions.ValidationError(f"Missing argument {key}")
    return value


def _int(request: Request, key: str, default: int | None = None) -> int | None:
    raw = _arg(request, key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise exceptions.ValidationError(f"Invalid argument '{raw}' of type 'int'") from None


def _float(request: Request, key: str) -> float | None:
    raw = _arg(request, key)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise exceptions.ValidationError(f"Invalid argument '{raw}' of type 'float'") from None


def _bool(request: Request, key: str, default: bool = False) -> bool:
    raw = _arg(request, key)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise exceptions.ValidationError(f"Invalid argument '{raw}' of type 'bool'")


def _refuse(actor: Actor, action: str, target: str, params: dict[str, Any], error: Exception):
    """Audit and raise ``error`` through perform: a viewer still gets the role's 403 first."""

    def run() -> services.ActionResult:
        raise error

    services.perform(actor, action, targets=[target], params=params, run=run)


# --- workers ----------------------------------------------------------------------------


def _known_worker(actor: Actor, workername: str, params: dict[str, Any]) -> None:
    """Flower answers 404 for a worker it has not inspected; here: one never seen."""
    if "\x00" in workername or not WorkerRecord.objects.filter(hostname=workername).exists():
        _refuse(
            actor,
            "worker.control",
            workername,
            params,
            services.ActionNotFound(f"Unknown worker '{workername}'"),
        )


def _control(
    request: Request,
    workername: str,
    command: str,
    failure: str,
    *,
    checked: bool = False,
    **arguments: Any,
) -> tuple[Any, Response | None]:
    """Run ``command`` on the worker; (its reply, None) or (None, Flower's 403 refusal).
    ``checked``: the caller already made sure the worker is known."""
    actor = actor_of(request)
    if not checked:
        _known_worker(actor, workername, {"command": command, **arguments})
    try:
        result = services.worker_control(
            actor=actor, hostname=workername, command=command, **arguments
        )
    except services.ActionConflict as error:
        reason = error.detail.partition(f"refused {command}: ")[2] or error.detail
        return None, Response(error_body("refused", f"{failure}: {reason}"), status=403)
    return result.data.get("reply"), None


def _ok_text(reply: Any) -> str:
    return str(reply.get("ok")) if isinstance(reply, dict) else str(reply)


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_shutdown(request: Request, workername: str) -> Response:
    _, refused = _control(request, workername, "shutdown", "Failed to shut down")
    return refused or Response({"message": "Shutting down!"})


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_pool_restart(request: Request, workername: str) -> Response:
    _, refused = _control(
        request, workername, "pool_restart", f"Failed to restart the '{workername}' pool"
    )
    return refused or Response({"message": f"Restarting '{workername}' worker's pool"})


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_pool_grow(request: Request, workername: str) -> Response:
    n = _int(request, "n", 1)
    _, refused = _control(
        request, workername, "pool_grow", f"Failed to grow '{workername}' worker's pool", n=n
    )
    return refused or Response({"message": f"Growing '{workername}' worker's pool by {n}"})


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_pool_shrink(request: Request, workername: str) -> Response:
    n = _int(request, "n", 1)
    _, refused = _control(
        request, workername, "pool_shrink", f"Failed to shrink '{workername}' worker's pool", n=n
    )
    return refused or Response({"message": f"Shrinking '{workername}' worker's pool by {n}"})


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_pool_autoscale(request: Request, workername: str) -> Response:
    low = _int(request, "min")
    high = _int(request, "max")
    if low is None:
        raise exceptions.ValidationError("Missing argument min")
    if high is None:
        raise exceptions.ValidationError("Missing argument max")
    _, refused = _control(
        request,
        workername,
        "autoscale",
        f"Failed to autoscale '{workername}' worker",
        max=high,
        min=low,
    )
    return refused or Response(
        {"message": f"Autoscaling '{workername}' worker (min={low}, max={high})"}
    )


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_queue_add_consumer(request: Request, workername: str) -> Response:
    queue = _required(request, "queue")
    reply, refused = _control(
        request,
        workername,
        "add_consumer",
        f"Failed to add '{queue}' consumer to '{workername}' worker",
        queue=queue,
    )
    return refused or Response({"message": _ok_text(reply)})


@flower_view(["POST"])
@parser_classes(PARSERS)
def worker_queue_cancel_consumer(request: Request, workername: str) -> Response:
    queue = _required(request, "queue")
    reply, refused = _control(
        request,
        workername,
        "cancel_consumer",
        f"Failed to cancel '{queue}' consumer from '{workername}' worker",
        queue=queue,
    )
    return refused or Response({"message": _ok_text(reply)})


# --- task limits (worker control commands per task name) -------------------------------


def _registered(workername: str) -> list[str]:
    row = WorkerRecord.objects.filter(hostname=workername).only("registered").first()
    names = row.registered if row is not None and isinstance(row.registered, list) else []
    # `inspect registered` may append attributes: "demo.add [rate_limit=10/s]".
    return [name.split(" ", 1)[0] for name in names if isinstance(name, str)]


def _task_limit(
    request: Request, taskname: str, command: str, failure: str, **arguments: Any
) -> Response:
    workername = _required(request, "workername")
    actor = actor_of(request)
    params = {"command": command, "task_name": taskname, **arguments}
    _known_worker(actor, workername, params)
    registered = _registered(workername)
    if registered and taskname not in registered:
        _refuse(
            actor,
            "worker.control",
            workername,
            params,
            services.ActionNotFound(f"Unknown task '{taskname}'"),
        )
    reply, refused = _control(
        request, workername, command, failure, checked=True, task_name=taskname, **arguments
    )
    return refused or Response({"message": _ok_text(reply)})


@flower_view(["POST"])
@parser_classes(PARSERS)
def task_timeout(request: Request, taskname: str) -> Response:
    hard = _float(request, "hard")
    soft = _float(request, "soft")
    return _task_limit(
        request, taskname, "time_limit", "Failed to set timeouts", soft=soft, hard=hard
    )


@flower_view(["POST"])
@parser_classes(PARSERS)
def task_rate_limit(request: Request, taskname: str) -> Response:
    ratelimit = _required(request, "ratelimit")
    return _task_limit(
        request, taskname, "rate_limit", "Failed to set rate limit", rate_limit=ratelimit
    )


# --- revoke and abort -------------------------------------------------------------------


@flower_view(["POST"])
@parser_classes(PARSERS)
def task_revoke(request: Request, task_id: str) -> Response:
    """``terminate`` (bool) and ``signal`` (default SIGTERM), as Flower; the task must be
    one the console has seen (404) and not finished (409), where Flower answers 200."""
    terminate = _bool(request, "terminate")
    signal = _arg(request, "signal") or "SIGTERM"
    actor = actor_of(request)
    if terminate:
        services.task_terminate(actor=actor, task_id=task_id, signal=signal)
    else:
        services.task_revoke(actor=actor, task_id=task_id)
    return Response({"message": f"Revoked '{task_id}'"})


@flower_view(["POST"])
@parser_classes(PARSERS)
def task_abort(request: Request, task_id: str) -> Response:
    """Flower marks an AbortableTask aborted in the result backend (the task must poll
    ``is_aborted``); the console revokes the task instead (audited as task.revoke)."""
    services.task_revoke(actor=actor_of(request), task_id=task_id)
    return Response({"message": f"Aborted '{task_id}'"})


# --- apply, async-apply, send-task ------------------------------------------------------


def _task_args(request: Request) -> tuple[Any, Any, dict[str, Any]]:
    """Flower's get_task_args: the body as JSON (whatever its content type)."""
    try:
        body = request._request.body
    except RawPostDataException:
        raise exceptions.ValidationError("The body must be JSON, not a multipart form.") from None
    try:
        options = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError) as error:
        raise exceptions.ValidationError(str(error)) from None
    if not isinstance(options, dict):
        raise exceptions.ValidationError("invalid options")
    args = options.pop("args", [])
    kwargs = options.pop("kwargs", {})
    if not isinstance(args, list):
        raise exceptions.ValidationError("args must be an array")
    return args, kwargs, options


def _task_known(name: str) -> bool:
    """Flower's apply needs the task in its own app; here: the console's app, a worker's
    registered list or the history knows the name."""
    return (
        name in celery_app().tasks
        or WorkerRecord.objects.filter(registered__contains=[name]).exists()
        or TaskRecord.objects.filter(name=name).exists()
    )


def _send(request: Request, taskname: str, *, wait: bool, known_only: bool) -> Response:
    args, kwargs, options = _task_args(request)
    actor = actor_of(request)
    if known_only and ("\x00" in taskname or not _task_known(taskname)):
        _refuse(
            actor,
            "task.send",
            taskname,
            {"wait": wait},
            services.ActionNotFound(f"Unknown task '{taskname}'"),
        )
    result = services.task_send(
        actor=actor, name=taskname, args=args, kwargs=kwargs, options=options, wait=wait
    )
    data = result.data
    body: dict[str, Any] = {"task-id": data["task_id"]}
    if wait:
        body["result"] = data.get("result")
        if data["state"] == states.FAILURE:
            body["traceback"] = data.get("traceback")
    body["state"] = data["state"]
    return Response(body)


@flower_view(["POST"])
def task_apply(request: Request, taskname: str) -> Response:
    """Send the task and wait for its result (at most tasks_send.APPLY_WAIT seconds)."""
    return _send(request, taskname, wait=True, known_only=True)


@flower_view(["POST"])
def task_async_apply(request: Request, taskname: str) -> Response:
    return _send(request, taskname, wait=False, known_only=True)


@flower_view(["POST"])
def task_send_task(request: Request, taskname: str) -> Response:
    """As Celery's send_task: the name need not be known anywhere."""
    return _send(request, taskname, wait=False, known_only=False)
