"""/api/v1 actions and dead letters: parse the body, call a service, say what happened.

Every action goes through its service (services.perform: the role check and the audit
entry, with source "api"); a refusal, a conflict or an unreachable broker is an
``ActionError`` that errors.exception_handler turns into ``{"error", "detail"}`` with
its status. The body is validated first, so bad input is a 400 that runs nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from tasks_admin import services
from tasks_admin.api import serializers as s
from tasks_admin.api.auth import actor_of
from tasks_admin.api.views import (
    ACTION_ERRORS,
    ERRORS,
    NOT_FOUND,
    _page_url,
    action_response,
    endpoint,
    query,
    responses,
)
from tasks_admin.models import BulkRun
from tasks_admin.redaction import redact_repr, redacted_names
from tasks_admin.selectors import deadletters as deadletter_selectors
from tasks_admin.views.deadletters import DeadLetterListForm
from tasks_admin.views.tasks import TaskListForm

# The filter fields of a bulk body, as the task list's query string names them.
BULK_FILTERS = ("state", "name", "worker", "queue", "search", "match", "sort", "from", "to")


def body(request: Request, serializer_class: type[s.serializers.Serializer]) -> dict[str, Any]:
    """The validated JSON body; 400 for a body that is not an object, an unknown field or
    a bad value. An empty body is an empty object."""
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ValidationError("The body must be a JSON object.")
    serializer = serializer_class(data=data)
    unknown = sorted(set(data) - set(serializer.fields))
    if unknown:
        allowed = ", ".join(sorted(serializer.fields)) or "no fields"
        raise exceptions.ValidationError(
            {str(key)[:64]: f"Unknown field; allowed: {allowed}" for key in unknown}
        )
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _no_nul(kind: str, value: str) -> None:
    """Path values reach the database and the broker: one with NUL names nothing."""
    if "\x00" in value:
        raise exceptions.NotFound(f"No {kind} with that name.")


def _pk(kind: str, pk: int) -> int:
    """A row id from the path; one past the database's bigint names nothing."""
    if pk >= 2**63:
        raise exceptions.NotFound(f"No {kind} {pk}.")
    return pk


# --- Tasks ---


@extend_schema(
    operation_id="tasks_retry",
    request=s.RetryBody,
    responses=responses(s.RetryAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def task_retry(request: Request, task_id: str) -> Response:
    """Run a failed, revoked, lost or rejected task again under a new task id, with its
    captured original message (or arguments rebuilt from their reprs when complete).

    409 when the task's state does not allow a retry (it is running, or it succeeded)
    or when neither its message nor complete arguments are known.
    """
    data = body(request, s.RetryBody)
    _no_nul("task", task_id)
    result = services.task_retry(
        actor=actor_of(request),
        task_id=task_id,
        queue=data.get("queue") or None,
        keep_chord=data["keep_chord"],
    )
    return action_response(result)


@extend_schema(
    operation_id="tasks_revoke",
    request=s.RevokeBody,
    responses=responses(s.RevokeAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def task_revoke(request: Request, task_id: str) -> Response:
    """Revoke a task: workers discard it when its message reaches them. With `terminate`,
    also signal the process running it (`signal`, default SIGTERM).

    409 for a task that already finished; 503 when no worker acknowledged the revoke.
    """
    data = body(request, s.RevokeBody)
    _no_nul("task", task_id)
    actor = actor_of(request)
    if data["terminate"]:
        result = services.task_terminate(
            actor=actor, task_id=task_id, signal=data.get("signal") or "SIGTERM"
        )
    elif data.get("signal"):
        raise exceptions.ValidationError({"signal": "A signal is sent only with terminate: true."})
    else:
        result = services.task_revoke(actor=actor, task_id=task_id)
    return action_response(result)


@extend_schema(
    operation_id="tasks_bulk",
    request=s.BulkBody,
    responses={
        200: OpenApiResponse(s.BulkDryRunAnswer, description="A dry run: the count."),
        202: OpenApiResponse(
            s.BulkStartedAnswer, description="Started: follow /api/v1/tasks/bulk/{run_id}/."
        ),
        **ERRORS,
        **ACTION_ERRORS,
    },
)
@endpoint(["POST"])
def tasks_bulk(request: Request) -> Response:
    """Retry or revoke every task GET /api/v1/tasks/ lists for the same filters, in the
    states the action applies to (revoke: PENDING, RECEIVED, RETRY; retry: FAILURE,
    REVOKED, LOST), at most `cap` (never above CONSOLE_BULK_MAX).

    `dry_run` only counts (200). Otherwise the run starts and the answer is 202 with its
    `run_id`; GET /api/v1/tasks/bulk/{run_id}/ shows its progress. More matches than the
    cap is a 400 as a whole: narrow the filter.
    """
    data = body(request, s.BulkBody)
    filters = {key: data[key] for key in BULK_FILTERS if data.get(key)}
    form = TaskListForm(filters, now=timezone.now())
    if not form.is_valid():
        raise exceptions.ValidationError(form.error_messages())
    result = services.tasks_bulk(
        actor=actor_of(request),
        action=data["action"],
        filters=form.filters(),
        dry_run=data["dry_run"],
        cap=data.get("cap"),
        query=urlencode(filters, doseq=True),
        wait=False,
    )
    return action_response(result, status=200 if data["dry_run"] else 202)


@extend_schema(
    operation_id="tasks_bulk_retrieve", responses=responses(s.BulkRunSerializer, NOT_FOUND)
)
@endpoint(["GET"])
def bulk_run(request: Request, run_id: int) -> Response:
    """A bulk run's progress: done of total, succeeded, failed, and how it ended."""
    query(request, s.serializers.Serializer)
    run = BulkRun.objects.filter(pk=_pk("bulk run", run_id)).first()
    if run is None:
        raise exceptions.NotFound(f"No bulk run {run_id}.")
    return Response(s.BulkRunSerializer(run).data)


# --- Workers and queues ---


@extend_schema(
    operation_id="workers_control",
    request=s.WorkerControlBody,
    responses=responses(s.WorkerControlAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def worker_control(request: Request, hostname: str) -> Response:
    """Send one command to one worker and answer its reply: pool_grow/pool_shrink (`n`),
    autoscale (`max`, `min`), add_consumer/cancel_consumer (`queue`), rate_limit
    (`task_name`, `rate_limit`), time_limit (`task_name`, `soft`, `hard`), pool_restart,
    shutdown.

    400 for an argument the command does not take; 409 when the worker refuses (say,
    autoscale on a worker without --autoscale); 503 when it does not answer.
    """
    data = body(request, s.WorkerControlBody)
    _no_nul("worker", hostname)
    command = data.pop("command")
    result = services.worker_control(
        actor=actor_of(request), hostname=hostname, command=command, **data
    )
    return action_response(result)


@extend_schema(
    operation_id="queues_purge",
    request=s.PurgeBody,
    responses=responses(s.PurgeAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def queue_purge(request: Request, name: str) -> Response:
    """Delete every message waiting in the queue; `confirm` must be its name, typed again.
    Answers the broker's count of messages deleted (prefetched messages stay)."""
    data = body(request, s.PurgeBody)
    _no_nul("queue", name)
    result = services.queue_purge(actor=actor_of(request), queue=name, confirm=data["confirm"])
    return action_response(result)


# --- Dead letters ---


def _summary(letter: Any) -> dict[str, Any]:
    return {field: getattr(letter, field) for field in s.DeadLetterSummarySerializer().fields}


@extend_schema(
    operation_id="dead_letters_list",
    parameters=[s.DeadLetterQuery],
    responses=responses(s.DeadLetterListSerializer),
)
@endpoint(["GET"])
def deadletter_list(request: Request) -> Response:
    """Dead letters, newest first, with the Dead letters page's filters; cursor-paginated
    (follow `next` until it is null). `counts` are the filter's letters by state."""
    data = query(request, s.DeadLetterQuery)
    cursor = data.pop("cursor", "") or ""
    if cursor and not (cursor.isascii() and cursor.isdigit() and 0 < int(cursor) < 2**63):
        raise exceptions.ValidationError({"cursor": "Not a cursor of this list."})
    form = DeadLetterListForm({**data, "before": cursor})
    if not form.is_valid():
        raise exceptions.ValidationError(form.error_messages())
    page = deadletter_selectors.deadletter_page(form.filters(), before=form.cleaned_data["before"])
    next_cursor = str(page.next_before) if page.next_before is not None else None
    return Response(
        s.DeadLetterListSerializer(
            {
                "results": [_summary(letter) for letter in page.rows],
                "next": _page_url(request, cursor=next_cursor) if next_cursor else None,
                "next_cursor": next_cursor,
                "counts": page.counts,
            }
        ).data
    )


@extend_schema(
    operation_id="dead_letters_retrieve",
    responses=responses(s.DeadLetterDetailSerializer, NOT_FOUND),
)
@endpoint(["GET"])
def deadletter_detail(request: Request, pk: int) -> Response:
    """One dead letter with its original message: arguments, headers and properties, the
    values of arguments named in CONSOLE_REDACT_ARGS hidden as on the page."""
    query(request, s.serializers.Serializer)
    view = deadletter_selectors.deadletter_view(_pk("dead letter", pk))
    if view is None:
        raise exceptions.NotFound(f"No dead letter {pk}.")
    letter = view.letter
    data = _summary(letter)
    data.update(
        args=view.args,
        kwargs=view.kwargs,
        embed=view.embed,
        headers=view.headers,
        properties=letter.properties,
        body_repr=redact_repr(letter.body_repr, redacted_names()),
        exchange=letter.exchange,
        routing_key=letter.routing_key,
        priority=letter.priority,
        traceback=letter.traceback,
        x_death=letter.x_death,
        hostname=letter.hostname,
        deadletter_queue=letter.deadletter_queue,
        replayed_at=letter.replayed_at,
        replay_queue=letter.replay_queue,
        discarded_at=letter.discarded_at,
    )
    return Response(s.DeadLetterDetailSerializer(data).data)


@extend_schema(
    operation_id="dead_letters_replay",
    request=s.DeadLetterReplayBody,
    responses=responses(s.DeadLetterReplayAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def deadletter_replay(request: Request, pk: int) -> Response:
    """Publish the letter's original message again under a new task id (optionally into
    another `queue`). 409 when it was already replayed or discarded, or is not replayable."""
    data = body(request, s.DeadLetterReplayBody)
    result = services.deadletter_replay(
        actor=actor_of(request), ids=[_pk("dead letter", pk)], queue=data.get("queue") or None
    )
    return action_response(result)


@extend_schema(
    operation_id="dead_letters_discard",
    request=None,
    responses=responses(s.DeadLetterDiscardAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def deadletter_discard(request: Request, pk: int) -> Response:
    """Mark the letter discarded: kept for the record, never replayed. 409 when it is not new."""
    body(request, s.serializers.Serializer)
    result = services.deadletter_discard(actor=actor_of(request), ids=[_pk("dead letter", pk)])
    return action_response(result)


@extend_schema(
    operation_id="dead_letters_replay_many",
    request=s.DeadLetterReplayManyBody,
    responses=responses(s.DeadLetterReplayAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def deadletter_replay_many(request: Request) -> Response:
    """Replay several letters (`ids`, at most 500). Letters that cannot be replayed are
    listed in `skipped` with the reason, unknown ids in `missing`; 409 when none was
    replayed, 404 when none exists."""
    data = body(request, s.DeadLetterReplayManyBody)
    result = services.deadletter_replay(
        actor=actor_of(request), ids=data["ids"], queue=data.get("queue") or None
    )
    return action_response(result)


@extend_schema(
    operation_id="dead_letters_discard_many",
    request=s.DeadLetterIdsBody,
    responses=responses(s.DeadLetterDiscardAnswer, ACTION_ERRORS),
)
@endpoint(["POST"])
def deadletter_discard_many(request: Request) -> Response:
    """Discard several letters (`ids`, at most 500); as replay, `skipped` and `missing`."""
    data = body(request, s.DeadLetterIdsBody)
    result = services.deadletter_discard(actor=actor_of(request), ids=data["ids"])
    return action_response(result)
