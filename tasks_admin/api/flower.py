"""Flower 2.x's HTTP API, same paths, parameters and JSON, answered from PostgreSQL.

Scripts written for Flower run unchanged: HTTP basic auth (the console's users) or a
bearer token, the same keys with the same meanings (timestamps as epoch seconds, args and
results as Celery's reprs, ``worker`` as a hostname). Where Flower holds everything in
memory and we hold millions of rows, answers are bounded: ``limit`` is capped
(CONSOLE_FLOWER_MAX_LIMIT), and search and the name/state/started sorts look at the newest
SCAN_CAP tasks of the ``received`` range, as the tasks page does.

Phase 2 adds the action routes (worker pool/shutdown/queue, task revoke/abort/apply/
send-task/timeout/rate-limit) here, each calling its service with ``auth.actor_of``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from celery import states
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django_celery_results.models import TaskResult
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import api_view, authentication_classes
from rest_framework.request import Request
from rest_framework.response import Response

from tasks_admin.api.auth import (
    ApiSessionAuthentication,
    BearerTokenAuthentication,
    FlowerBasicAuthentication,
)
from tasks_admin.models import QueueRecord, TaskRecord, WorkerRecord
from tasks_admin.redaction import redact_repr, redacted_names
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.selectors.tasks import TABLE, like_pattern

AUTHENTICATION = [BearerTokenAuthentication, FlowerBasicAuthentication, ApiSessionAuthentication]
# Flower's /api/task/result waits up to ``timeout`` seconds; a web thread waits at most this.
RESULT_WAIT_CAP = 10.0
MAX_OFFSET = task_selectors.SCAN_CAP
READY_STATES = states.READY_STATES

TASK_COLUMNS = (
    "task_id",
    "name",
    "state",
    "first_seen_at",
    "last_event_at",
    "sent_at",
    "received_at",
    "started_at",
    "succeeded_at",
    "failed_at",
    "retried_at",
    "revoked_at",
    "rejected_at",
    "runtime",
    "retries",
    "worker",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
    "eta",
    "expires",
    "args",
    "kwargs",
    "result",
    "exception",
    "traceback",
    "last_event_clock",
)


def flower_view(methods: list[str]) -> Any:
    """Flower's routes: basic auth too, kept out of the /api/v1 schema."""

    def wrap(func: Any) -> Any:
        @functools.wraps(func)
        def checked(request: Request, *args: Any, **kwargs: Any) -> Response:
            # PostgreSQL text cannot hold NUL: refuse it here, once, rather than a 500.
            values = [*request.query_params.values(), *map(str, kwargs.values())]
            if any("\x00" in value for value in values):
                raise exceptions.ValidationError("NUL characters are not allowed")
            return func(request, *args, **kwargs)

        view = api_view(methods)(authentication_classes(AUTHENTICATION)(checked))
        return login_not_required(extend_schema(exclude=True)(view))

    return wrap


def _epoch(moment: dt.datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _bool(request: Request, key: str, default: bool = False) -> bool:
    """Tornado's strtobool: y/yes/t/true/on/1 and n/no/f/false/off/0."""
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("y", "yes", "t", "true", "on", "1"):
        return True
    if lowered in ("n", "no", "f", "false", "off", "0"):
        return False
    raise exceptions.ValidationError(f"Invalid argument '{raw}' of type 'bool'")


def _int(request: Request, key: str) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise exceptions.ValidationError(f"Invalid argument '{raw}' of type 'int'") from None


def task_dict(
    task: TaskRecord, children: list[str], *, keep_empty_worker: bool, redact: frozenset[str]
) -> dict:
    """One task as Flower's ``Task.as_dict()`` with ``worker`` as a hostname, the values of
    ``redact`` argument names hidden."""
    data: dict[str, Any] = {
        "uuid": task.task_id,
        "name": task.name or None,
        "state": task.state,
        "received": _epoch(task.received_at),
        "sent": _epoch(task.sent_at),
        "started": _epoch(task.started_at),
        "rejected": _epoch(task.rejected_at),
        "succeeded": _epoch(task.succeeded_at),
        "failed": _epoch(task.failed_at),
        "retried": _epoch(task.retried_at),
        "revoked": _epoch(task.revoked_at),
        "args": redact_repr(task.args, redact) or None,
        "kwargs": redact_repr(task.kwargs, redact) or None,
        "eta": task.eta.isoformat() if task.eta else None,
        "expires": task.expires.isoformat() if task.expires else None,
        "retries": task.retries,
        "result": task.result or None,
        "exception": task.exception or None,
        "timestamp": _epoch(task.last_event_at),
        "runtime": task.runtime,
        "traceback": task.traceback or None,
        "exchange": task.exchange or None,
        "routing_key": task.routing_key or None,
        "clock": task.last_event_clock,
        "client": None,
        "root": task.root_id or None,
        "root_id": task.root_id or None,
        "parent": task.parent_id or None,
        "parent_id": task.parent_id or None,
        "children": children,
    }
    if task.worker or keep_empty_worker:
        data["worker"] = task.worker or None
    return data


def _children(task_ids: list[str]) -> dict[str, list[str]]:
    """Child ids of each task, one query through task_parent_idx (capped per page)."""
    found: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
    if not task_ids:
        return found
    rows = (
        TaskRecord.objects.filter(parent_id__in=task_ids)
        .exclude(parent_id="")
        .values_list("parent_id", "task_id")[:10_000]
    )
    for parent, child in rows:
        if parent != child:  # a retry names the task as its own parent
            found[parent].append(child)
    return found


# --- GET /api/workers ------------------------------------------------------------------


def _active_tasks(hostname: str) -> list[dict[str, Any]]:
    """Like ``inspect active``: what runs on the worker now, from the history."""
    rows = (
        TaskRecord.objects.filter(state=states.STARTED, worker=hostname)
        .only("task_id", "name", "args", "kwargs", "started_at", "exchange", "routing_key")
        .order_by("-first_seen_at")[:100]
    )
    names = redacted_names()
    return [
        {
            "id": t.task_id,
            "name": t.name,
            "args": redact_repr(t.args, names),
            "kwargs": redact_repr(t.kwargs, names),
            "type": t.name,
            "hostname": hostname,
            "time_start": _epoch(t.started_at),
            "acknowledged": True,
            "delivery_info": {"exchange": t.exchange, "routing_key": t.routing_key},
            "worker_pid": None,
        }
        for t in rows
    ]


@flower_view(["GET"])
def workers(request: Request) -> Response:
    """``{name: {stats, active_queues, registered, scheduled, active, reserved, revoked,
    conf, timestamp}}``; with ``status``: ``{name: online}``. ``refresh`` is accepted: the
    collector inspects workers every CONSOLE_INSPECT_INTERVAL, and this answers from that."""
    _bool(request, "refresh")
    status = _bool(request, "status")
    workername = request.query_params.get("workername") or None
    records = WorkerRecord.objects.order_by("hostname")
    if status:
        # As Flower: every worker's liveness, whatever workername says.
        return Response({w.hostname: w.is_online for w in records.only("hostname", "is_online")})
    if workername is not None:
        records = records.filter(hostname=workername)
        if not records.exists():
            raise exceptions.NotFound(f"Unknown worker '{workername}'")
    body = {}
    for w in records:
        body[w.hostname] = {
            "stats": w.stats if isinstance(w.stats, dict) else {},
            "active_queues": [
                {"name": name, "exchange": {"name": name}, "routing_key": name}
                for name in (w.queues if isinstance(w.queues, list) else [])
                if isinstance(name, str)
            ],
            "registered": w.registered if isinstance(w.registered, list) else [],
            "scheduled": [],
            "active": _active_tasks(w.hostname) if w.is_online else [],
            "reserved": [],
            "revoked": [],
            "conf": w.conf if isinstance(w.conf, dict) else {},
            "timestamp": _epoch(w.inspected_at or w.last_heartbeat_at or w.updated_at),
        }
    return Response(body)


# --- Flower's search syntax ------------------------------------------------------------

MAX_SEARCH_CHARS = 2048
MAX_TOKENS = 128
MAX_DEPTH = 5
MIN_TERM = 3
TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*")|([^\s()"]+(?:"(?:[^"\\]|\\.)*")?))')
SUBSTRING_FIELDS = {"name": "name", "worker": "worker", "args": "args", "result": "result"}
ANY_COLUMNS = ("name", "task_id", "state", "worker", "args", "kwargs", "result")


class SearchError(ValueError):
    pass


@dataclass
class _Token:
    text: str
    kind: str  # "(", ")", "AND", "OR", "term"
    position: int


def _tokens(text: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise SearchError(f"unexpected character at position {position}")
        start = match.start(match.lastindex or 0)
        if match.group(1):
            tokens.append(_Token("(", "(", start))
        elif match.group(2):
            tokens.append(_Token(")", ")", start))
        else:
            word = match.group(3) or match.group(4)
            kind = word if word in ("AND", "OR") else "term"
            tokens.append(_Token(word, kind, start))
        position = match.end()
        if len(tokens) > MAX_TOKENS:
            raise SearchError(f"too many terms (at most {MAX_TOKENS})")
    return tokens


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _term_sql(token: _Token) -> tuple[str, list[Any]]:
    text = token.text
    field, sep, value = text.partition(":")
    if sep and not field.startswith('"') and field in ("state", "kwargs", *SUBSTRING_FIELDS):
        value = _unquote(value)
        if field == "state":
            if not value:
                raise SearchError(f"empty state at position {token.position}")
            return "state = %s", [value]
        if field == "kwargs":
            key, eq, wanted = value.partition("=")
            key, wanted = key.strip(), _unquote(wanted.strip())
            if not eq or not key:
                raise SearchError(f"kwargs needs key=value at position {token.position}")
            quote = "['\"]"
            pattern = (
                f"{quote}{re.escape(key)}{quote}: {quote}?{re.escape(wanted)}{quote}?\\s*[,}}]"
            )
            return "kwargs ~ %s", [pattern]
        if len(value) < MIN_TERM:
            raise SearchError(
                f"'{text}' at position {token.position}: terms need {MIN_TERM}+ characters"
            )
        return f"lower({SUBSTRING_FIELDS[field]}) LIKE lower(%s)", [like_pattern(value)]
    value = _unquote(text)
    if len(value) < MIN_TERM:
        raise SearchError(
            f"'{text}' at position {token.position}: terms need {MIN_TERM}+ characters"
        )
    haystack = " || chr(31) || ".join(ANY_COLUMNS)
    return f"lower({haystack}) LIKE lower(%s)", [like_pattern(value.replace("\x1f", ""))]


class _Parser:
    """expr := and ("OR" and)*; and := atom (["AND"] atom)*; atom := term | "(" expr ")"."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> tuple[str, list[Any]]:
        sql, params = self.expr(0)
        extra = self.peek()
        if extra is not None:
            raise SearchError(f"unexpected '{extra.text}' at position {extra.position}")
        return sql, params

    def expr(self, depth: int) -> tuple[str, list[Any]]:
        parts = [self.conj(depth)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.i += 1
            parts.append(self.conj(depth))
        if len(parts) == 1:
            return parts[0]
        return "(" + " OR ".join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]

    def conj(self, depth: int) -> tuple[str, list[Any]]:
        parts = [self.atom(depth)]
        while (token := self.peek()) is not None and token.kind in ("AND", "term", "("):
            if token.kind == "AND":
                self.i += 1
            parts.append(self.atom(depth))
        if len(parts) == 1:
            return parts[0]
        return "(" + " AND ".join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]

    def atom(self, depth: int) -> tuple[str, list[Any]]:
        token = self.peek()
        if token is None:
            raise SearchError("the search ends where a term was expected")
        self.i += 1
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                raise SearchError(f"parentheses nest deeper than {MAX_DEPTH}")
            inner = self.expr(depth + 1)
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise SearchError(f"unclosed '(' at position {token.position}")
            self.i += 1
            return inner
        if token.kind != "term":
            raise SearchError(f"unexpected '{token.text}' at position {token.position}")
        return _term_sql(token)


def search_sql(text: str) -> tuple[str, list[Any]]:
    """A WHERE condition for Flower's search syntax; SearchError says where it is wrong."""
    if len(text) > MAX_SEARCH_CHARS:
        raise SearchError(f"the search is longer than {MAX_SEARCH_CHARS} characters")
    if "\x00" in text:
        raise SearchError("the search holds a NUL character")
    tokens = _tokens(text)
    if not tokens:
        return "TRUE", []
    return _Parser(tokens).parse()


# --- GET /api/tasks --------------------------------------------------------------------

SORT_COLUMNS = {"received": "first_seen_at", "started": "started_at", "name": "name"}
SORT_COLUMNS["state"] = "state"


def _received_bound(request: Request, key: str) -> dt.datetime | None:
    raw = request.query_params.get(key)
    if not raw:
        return None
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(raw, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise exceptions.ValidationError(f"Invalid argument '{raw}' for {key}: use YYYY-MM-DD HH:MM")


@flower_view(["GET"])
def tasks(request: Request) -> Response:
    """Flower's task list: a JSON object ``{uuid: task}`` in the requested order."""
    limit = _int(request, "limit")
    offset = max(_int(request, "offset") or 0, 0)
    cap = settings.CONSOLE_FLOWER_MAX_LIMIT
    limit = cap if limit is None or limit <= 0 else min(limit, cap)
    if offset > MAX_OFFSET:
        raise exceptions.ValidationError(f"offset is at most {MAX_OFFSET}; narrow the filters")
    sort_by = request.query_params.get("sort_by") or ""
    descending = sort_by.startswith("-")
    sort_key = sort_by.lstrip("-")
    if sort_key and sort_key not in SORT_COLUMNS:
        raise exceptions.ValidationError(
            f"Invalid argument '{sort_by}' for sort_by: use received, started, name or state"
        )
    where, params = [], []
    for key, column in (("workername", "worker"), ("taskname", "name")):
        value = request.query_params.get(key)
        if value and value != "All":  # Flower's "All" means no filter
            where.append(f"{column} = %s")
            params.append(value)
    state = request.query_params.get("state")
    if state and state != "All":
        where.append("state = %s")
        params.append(state)
    for key, op in (("received_start", ">="), ("received_end", "<=")):
        bound = _received_bound(request, key)
        if bound is not None:
            where.append(f"first_seen_at {op} %s")
            params.append(bound)
    if any("\x00" in str(p) for p in params):
        raise exceptions.ValidationError("NUL characters are not allowed")
    search = request.query_params.get("search") or ""
    try:
        search_condition, search_params = search_sql(search) if search else ("TRUE", [])
    except SearchError as error:
        raise exceptions.ValidationError(str(error)) from None
    columns = ", ".join(TASK_COLUMNS)
    where_sql = f"WHERE {' AND '.join(where)}" if where else ""
    if search_condition == "TRUE" and sort_key in ("", "received"):
        # Flower's default (newest first) and the received sorts: an index walk.
        direction = "ASC" if sort_key == "received" and not descending else "DESC"
        tie = "ASC" if direction == "DESC" else "DESC"
        sql = (
            f"SELECT {columns} FROM {TABLE} {where_sql} "
            f"ORDER BY first_seen_at {direction}, task_id {tie} LIMIT %s OFFSET %s"
        )
        rows = list(TaskRecord.objects.raw(sql, [*params, limit, offset]))
    else:
        # Search and the other sorts read a bounded window of the newest tasks.
        column = SORT_COLUMNS.get(sort_key, "first_seen_at")
        direction = "DESC" if descending or not sort_key else "ASC"
        nulls = "NULLS LAST"
        sql = (
            f"SELECT * FROM (SELECT {columns} FROM {TABLE} {where_sql} "
            "ORDER BY first_seen_at DESC, task_id ASC LIMIT %s) AS w "
            f"WHERE {search_condition} ORDER BY {column} {direction} {nulls}, task_id ASC "
            "LIMIT %s OFFSET %s"
        )
        rows = list(
            TaskRecord.objects.raw(
                sql, [*params, task_selectors.SCAN_CAP, *search_params, limit, offset]
            )
        )
    children = _children([t.task_id for t in rows])
    names = redacted_names()
    body = {
        t.task_id: task_dict(t, children[t.task_id], keep_empty_worker=False, redact=names)
        for t in rows
    }
    return Response(body)


@flower_view(["GET"])
def task_types(request: Request) -> Response:
    return Response({"task-types": task_selectors.task_names()})


def _one_task(task_id: str) -> TaskRecord | None:
    if "\x00" in task_id:
        return None
    return TaskRecord.objects.filter(pk=task_id).only(*TASK_COLUMNS).first()


@flower_view(["GET"])
def task_info(request: Request, task_id: str) -> Response:
    task = _one_task(task_id)
    if task is None:
        raise exceptions.NotFound(f"Unknown task '{task_id}'")
    children = _children([task.task_id])[task.task_id]
    return Response(task_dict(task, children, keep_empty_worker=True, redact=redacted_names()))


def _backend_result(task_id: str) -> tuple[str, Any, str | None] | None:
    """(state, result, traceback) from django-celery-results, the result itself decoded."""
    row = (
        TaskResult.objects.filter(task_id=task_id)
        .only("status", "result", "traceback", "content_type")
        .first()
    )
    if row is None:
        return None
    value: Any = row.result
    if row.content_type == "application/json" and row.result is not None:
        try:
            value = json.loads(row.result)
        except ValueError:
            value = row.result
    if row.status == states.FAILURE and isinstance(value, dict) and "exc_type" in value:
        value = f"{value.get('exc_type')}({', '.join(map(repr, value.get('exc_message') or []))})"
    return row.status, value, row.traceback


def _result_body(task_id: str) -> dict[str, Any]:
    backend = _backend_result(task_id)
    task = _one_task(task_id)
    state = backend[0] if backend else (task.state if task else states.PENDING)
    body: dict[str, Any] = {"task-id": task_id, "state": state}
    if state in READY_STATES:
        if backend is not None:
            body["result"] = backend[1]
            traceback = backend[2]
        else:
            assert task is not None
            body["result"] = (task.exception if state == states.FAILURE else task.result) or None
            traceback = task.traceback
        if state == states.FAILURE:
            body["traceback"] = traceback or None
    return body


@flower_view(["GET"])
def task_result(request: Request, task_id: str) -> Response:
    """``{"task-id", "state", "result"?, "traceback"?}``: the result backend's view when it
    is django-celery-results, else the collector's (reprs). Unknown ids are PENDING, as
    Celery's AsyncResult says."""
    raw_timeout = request.query_params.get("timeout")
    wait = 0.0
    if raw_timeout:
        try:
            wait = float(raw_timeout)
        except ValueError:
            raise exceptions.ValidationError(
                f"Invalid argument '{raw_timeout}' of type 'float'"
            ) from None
        if wait != wait or wait < 0:
            raise exceptions.ValidationError("timeout must be a positive number of seconds")
    deadline = time.monotonic() + min(wait, RESULT_WAIT_CAP)
    body = _result_body(task_id)
    while body["state"] not in READY_STATES and time.monotonic() < deadline:
        time.sleep(0.25)
        body = _result_body(task_id)
    return Response(body)


@flower_view(["GET"])
def queues_length(request: Request) -> Response:
    rows = QueueRecord.objects.order_by("name").values_list("name", "depth")
    return Response({"active_queues": [{"name": n, "messages": d} for n, d in rows]})
