"""/api/v1 reads: parse the query, call a selector, serialize. No queries of their own
beyond the small audit and worker tables; task history goes through the selectors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_not_required
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from tasks_admin import services
from tasks_admin.api import serializers as s
from tasks_admin.models import AuditEntry
from tasks_admin.selectors import dashboard as dashboard_selectors
from tasks_admin.selectors import queues as queue_selectors
from tasks_admin.selectors import task_story as story_selectors
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.selectors import workers as worker_selectors
from tasks_admin.selectors.tasks import Cursor, TaskFilters
from tasks_admin.views.filtering import parse_moment

# Query parameters every endpoint accepts besides its own (DRF's renderer choice).
COMMON_PARAMS = frozenset({"format"})

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Bad input (the detail says which)."),
    401: OpenApiResponse(s.ErrorSerializer, description="No or invalid credentials."),
    403: OpenApiResponse(s.ErrorSerializer, description="Not allowed for this role."),
    405: OpenApiResponse(s.ErrorSerializer, description="Method not allowed."),
    406: OpenApiResponse(s.ErrorSerializer, description="Unsupported Accept header."),
    429: OpenApiResponse(s.ErrorSerializer, description="Throttled; see Retry-After."),
}
NOT_FOUND = {404: OpenApiResponse(s.ErrorSerializer, description="No such object.")}


def responses(ok: Any, *extra: dict[int, OpenApiResponse]) -> dict[int, Any]:
    result: dict[int, Any] = {200: ok, **ERRORS}
    for more in extra:
        result.update(more)
    return result


def endpoint(methods: list[str]) -> Callable[[Callable[..., Any]], Any]:
    """An API function view: DRF does the authentication, so the site-wide login
    redirect must not (scripts want a 401, not a login page)."""

    def wrap(func: Callable[..., Any]) -> Any:
        return login_not_required(api_view(methods)(func))

    return wrap


def action_response(result: services.ActionResult, status: int = 200) -> Response:
    """The answer of every action endpoint. Errors need no handling: a service raises an
    ActionError and errors.exception_handler turns it into its status and JSON."""
    return Response(
        s.ActionResultSerializer({"detail": result.detail, "result": result.data}).data,
        status=status,
    )


# Phase 2 error responses of actions, for extend_schema(responses=...).
ACTION_ERRORS = {
    **NOT_FOUND,
    409: OpenApiResponse(s.ErrorSerializer, description="The action cannot apply now."),
    503: OpenApiResponse(s.ErrorSerializer, description="Broker or worker did not answer."),
}


def query(request: Request, serializer_class: type[s.serializers.Serializer]) -> dict[str, Any]:
    """The validated query string; 400 for an unknown parameter or a bad value."""
    shape = _query_shape(serializer_class)
    if not request.query_params and shape.empty is not None:
        return dict(shape.empty)
    data = _query_dict(request, shape.lists)
    unknown = sorted(set(request.query_params) - shape.allowed)
    if unknown:
        allowed = ", ".join(sorted(shape.allowed))
        raise exceptions.ValidationError(
            {key: "Unknown parameter; allowed: " + allowed for key in unknown}
        )
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@dataclass(frozen=True)
class QueryShape:
    allowed: frozenset[str]  # parameter names, the common ones included
    lists: frozenset[str]  # parameters that take several values
    empty: dict[str, Any] | None  # what no parameters validate to (None: they don't)


_query_shapes: dict[type[s.serializers.Serializer], QueryShape] = {}


def _query_shape(serializer_class: type[s.serializers.Serializer]) -> QueryShape:
    """What query() needs to know of a serializer class, worked out once: building a
    serializer's fields deep-copies them, and every API call parses its query."""
    shape = _query_shapes.get(serializer_class)
    if shape is None:
        fields = serializer_class().fields
        empty = serializer_class(data={})
        shape = _query_shapes[serializer_class] = QueryShape(
            allowed=frozenset(fields) | COMMON_PARAMS,
            lists=frozenset(k for k, f in fields.items() if isinstance(f, s.serializers.ListField)),
            empty=dict(empty.validated_data) if empty.is_valid() else None,
        )
    return shape


def _query_dict(request: Request, list_keys: frozenset[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        if key in list_keys:
            data[key] = [v.strip() for value in values for v in value.split(",")]
        else:
            if len(values) > 1:
                raise exceptions.ValidationError({key: "Give this parameter once."})
            data[key] = values[0]
        if any("\x00" in v for v in values):
            raise exceptions.ValidationError({key: "NUL characters are not allowed."})
    return data


def _moment(data: dict[str, Any], key: str, now: dt.datetime) -> dt.datetime | None:
    text = data.get(key)
    if not text:
        return None
    try:
        return parse_moment(text, now)
    except ValueError:
        raise exceptions.ValidationError(
            {key: f"{text!r} is not a time: use ISO 8601 (2025-01-31T14:00) or 15m, 1h, 7d."}
        ) from None


def _page_url(request: Request, **changes: str) -> str:
    pairs = [(k, v) for k, vs in request.query_params.lists() for v in vs if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v]
    return request.build_absolute_uri(request.path + ("?" + urlencode(pairs) if pairs else ""))


def _task_filters(data: dict[str, Any], now: dt.datetime) -> TaskFilters:
    since, until = _moment(data, "from", now), _moment(data, "to", now)
    if since and until and since > until:
        raise exceptions.ValidationError({"to": "'to' is before 'from'."})
    return TaskFilters(
        states=tuple(dict.fromkeys(data.get("state") or ())),
        name=data.get("name", ""),
        worker=data.get("worker", ""),
        queue=data.get("queue", ""),
        since=since,
        until=until,
        search=data.get("search", ""),
        match=data.get("match") or "auto",
        sort=data.get("sort") or "received",
    )


@extend_schema(
    operation_id="tasks_list",
    parameters=[
        s.TaskListQuery,
        # A list in the query string: repeated (state=A&state=B) or comma-separated.
        OpenApiParameter(
            "state",
            OpenApiTypes.STR,
            many=True,
            explode=True,
            enum=list(task_selectors.KNOWN_STATES),
            description="Repeat (or comma-separate) for several states.",
        ),
    ],
    responses=responses(s.TaskListSerializer),
)
@endpoint(["GET"])
def task_list(request: Request) -> Response:
    """Tasks, newest first (or by `sort`), with the tasks page's filters and search.

    Cursor-paginated: follow `next` until it is null. The order is stable (ties broken by
    task id), so no task is skipped or repeated while new tasks arrive.
    """
    now = timezone.now()
    data = query(request, s.TaskListQuery)
    filters = _task_filters(data, now)
    after = None
    if data.get("cursor"):
        try:
            after = Cursor.decode(data["cursor"], sort=filters.sort)
        except ValueError:
            raise exceptions.ValidationError({"cursor": "Not a cursor of this list."}) from None
    size = data.get("page_size") or task_selectors.PAGE_SIZE
    page = task_selectors.task_page(filters, after=after, now=now, size=size)
    next_cursor = page.next_cursor.encode() if page.next_cursor else None
    window = None
    if page.window is not None:
        w = page.window
        window = {
            "kind": w.kind,
            "since": w.since.isoformat() if w.since else None,
            "until": w.until.isoformat() if w.until else None,
            "scanned": w.scanned,
            "cap": w.cap,
            "full": w.full,
            "oldest": w.oldest.isoformat() if w.oldest else None,
        }
    body = {
        "results": s.TaskSummarySerializer(page.rows, many=True).data,
        "next": _page_url(request, cursor=next_cursor) if next_cursor else None,
        "next_cursor": next_cursor,
        "total": min(page.total, page.count_cap),
        "total_capped": page.total_capped,
        "total_cap": page.count_cap,
        "mode": page.mode,
        "window": window,
    }
    return Response(body)


@extend_schema(
    operation_id="tasks_retrieve", responses=responses(s.TaskDetailSerializer, NOT_FOUND)
)
@endpoint(["GET"])
def task_detail(request: Request, task_id: str) -> Response:
    """One task: every field, its event timeline (capped) and its lineage."""
    query(request, s.serializers.Serializer)
    story = None if "\x00" in task_id else story_selectors.task_story(task_id)
    if story is None:
        raise exceptions.NotFound(f"No task with id {task_id!r}.")
    return Response(s.TaskDetailSerializer(story).data)


@extend_schema(operation_id="task_names_list", responses=responses(s.TaskNamesSerializer))
@endpoint(["GET"])
def task_names(request: Request) -> Response:
    """Every task name in the history, sorted."""
    query(request, s.serializers.Serializer)
    return Response({"names": task_selectors.task_names()})


def _worker_data(row: worker_selectors.WorkerRow) -> dict[str, Any]:
    w = row.worker
    loadavg = w.loadavg if isinstance(w.loadavg, list) else []
    return {
        "hostname": w.hostname,
        "is_online": w.is_online,
        "heartbeat_late": row.heartbeat_late,
        "first_seen_at": w.first_seen_at,
        "online_at": w.online_at,
        "offline_at": w.offline_at,
        "last_heartbeat_at": w.last_heartbeat_at,
        "heartbeat_freq": w.heartbeat_freq,
        "sw_ident": w.sw_ident,
        "sw_ver": w.sw_ver,
        "sw_sys": w.sw_sys,
        "pid": w.pid,
        "loadavg": [v for v in loadavg if isinstance(v, int | float)],
        "processed": w.processed,
        "active": w.active,
        "pool": w.pool,
        "concurrency": w.concurrency,
        "queues": _queue_names(w.queues),
        "inspected_at": w.inspected_at,
    }


def _queue_names(queues: Any) -> list[str]:
    """WorkerRecord.queues holds `inspect active_queues` entries (dicts) or names."""
    names = []
    for queue in queues if isinstance(queues, list) else []:
        name = queue.get("name") if isinstance(queue, dict) else queue
        if isinstance(name, str):
            names.append(name)
    return names


@extend_schema(operation_id="workers_list", responses=responses(s.WorkerListSerializer))
@endpoint(["GET"])
def worker_list(request: Request) -> Response:
    """Every known worker, online first, then by hostname."""
    query(request, s.serializers.Serializer)
    rows = worker_selectors.worker_rows(now=timezone.now())
    return Response(s.WorkerListSerializer({"results": [_worker_data(r) for r in rows]}).data)


@extend_schema(
    operation_id="workers_retrieve", responses=responses(s.WorkerDetailSerializer, NOT_FOUND)
)
@endpoint(["GET"])
def worker_detail(request: Request, hostname: str) -> Response:
    """One worker: what the list shows, its last inspection, and its running and newest tasks."""
    query(request, s.serializers.Serializer)
    detail = (
        None if "\x00" in hostname else worker_selectors.worker_detail(hostname, now=timezone.now())
    )
    if detail is None:
        raise exceptions.NotFound(f"No worker named {hostname!r}.")
    w = detail.row.worker
    data = _worker_data(detail.row)
    data.update(
        registered=[r for r in w.registered if isinstance(r, str)]
        if isinstance(w.registered, list)
        else [],
        stats=w.stats if isinstance(w.stats, dict) else {},
        conf=w.conf if isinstance(w.conf, dict) else {},
        started=detail.started,
        started_capped=detail.started_capped,
        recent=detail.recent,
    )
    return Response(s.WorkerDetailSerializer(data).data)


@extend_schema(operation_id="queues_list", responses=responses(s.QueueListSerializer))
@endpoint(["GET"])
def queue_list(request: Request) -> Response:
    """Every known queue with its depth at the last sample and its trend over the last hour."""
    query(request, s.serializers.Serializer)
    rows = queue_selectors.queue_rows(now=timezone.now(), limit=queue_selectors.PAGE_LIMIT)
    results = [
        {
            "name": r.queue.name,
            "depth": r.queue.depth,
            "consumers": r.queue.consumers,
            "sampled_at": r.queue.sampled_at,
            "delta": r.delta,
            "trend": [{"minute": at, "depth": depth} for at, depth in r.points],
        }
        for r in rows
    ]
    total = queue_selectors.queue_totals()
    return Response(s.QueueListSerializer({"results": results, "total_depth": total.depth}).data)


def _audit_cursor(text: str) -> tuple[dt.datetime, int]:
    moment, sep, ident = text.partition("~")
    if not sep:
        raise ValueError(text)
    at = dt.datetime.fromisoformat(moment)
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)), int(ident)


@extend_schema(
    operation_id="audit_list",
    parameters=[s.AuditQuery],
    responses=responses(s.AuditListSerializer),
)
@endpoint(["GET"])
def audit_list(request: Request) -> Response:
    """Audit entries (every action attempt, allowed or refused), newest first."""
    data = query(request, s.AuditQuery)
    entries = AuditEntry.objects.all()
    for key in ("action", "username", "outcome"):
        if data.get(key):
            entries = entries.filter(**{key: data[key]})
    if data.get("cursor"):
        try:
            at, ident = _audit_cursor(data["cursor"])
        except (ValueError, OverflowError):
            raise exceptions.ValidationError({"cursor": "Not a cursor of this list."}) from None
        entries = entries.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=ident))
    size = data.get("page_size") or 50
    rows = list(entries.order_by("-created_at", "-id")[: size + 1])
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = f"{rows[-1].created_at.isoformat()}~{rows[-1].id}"
    return Response(
        {
            "results": s.AuditEntrySerializer(rows, many=True).data,
            "next": _page_url(request, cursor=next_cursor) if next_cursor else None,
            "next_cursor": next_cursor,
        }
    )


def _stats_row(name: str, counts: dict[str, int], hist: list[int], minutes: int) -> dict:
    done = counts["succeeded"] + counts["failed"]
    return {
        "name": name,
        **counts,
        "failure_rate": counts["failed"] / done if done else None,
        "per_minute": done / minutes,
        "runtime": {
            label: dashboard_selectors.histogram.percentile(hist, q)
            for label, q in dashboard_selectors.PERCENTILES
        },
    }


@extend_schema(
    operation_id="stats_retrieve",
    parameters=[s.StatsQuery],
    responses=responses(s.StatsSerializer),
)
@endpoint(["GET"])
def stats(request: Request) -> Response:
    """Counts, rates and runtime percentiles per task name over the last `window` minutes,
    from the per-minute rollups (the dashboard's numbers), plus worker and queue totals."""
    data = query(request, s.StatsQuery)
    minutes = data.get("window") or 60
    now = timezone.now()
    current = now.replace(second=0, microsecond=0)
    since = current - dt.timedelta(minutes=minutes - 1)
    names = dashboard_selectors.name_totals(since=since, name=data.get("name"))
    totals = dict.fromkeys(dashboard_selectors.ROLLUP_COUNTS, 0)
    total_hist = dashboard_selectors.histogram.empty()
    for t in names:
        for key, value in t.counts.items():
            totals[key] += value
        dashboard_selectors.histogram.add(total_hist, t.hist)
    workers = worker_selectors.worker_counts()
    queues = queue_selectors.queue_totals()
    body = {
        "window_minutes": minutes,
        "since": since,
        "until": now,
        "totals": _stats_row("", totals, total_hist, minutes),
        "tasks": [_stats_row(t.name, t.counts, t.hist, minutes) for t in names],
        "workers": {"online": workers.online, "offline": workers.offline, "active": workers.active},
        "queues": {"queues": queues.queues, "depth": queues.depth},
    }
    return Response(s.StatsSerializer(body).data)
