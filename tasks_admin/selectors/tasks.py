"""Task list reads: filters, search, sorts and keyset pages (the story: task_story.py).

The list never counts or offsets over the whole history. Plain filters walk one of the
``(column, -first_seen_at)`` indexes and stop after a page (``LIMIT``); totals stop at
``COUNT_CAP + 1``. What no index can serve (text search, sorting by started or runtime)
runs over a *window*: at most ``SCAN_CAP`` of the newest tasks in the time range (the last
24 hours unless the user set one), so its cost is bounded whatever the history holds; the
page says so. An id prefix is a range scan of the primary key, capped the same way.
"""

import datetime as dt
import time
from dataclasses import dataclass, replace
from typing import Any

from celery import states
from django.db import connection
from django.utils import timezone

from tasks_admin.collector.merge import EVENT_STATE
from tasks_admin.models import QueueRecord, TaskMinuteRollup, TaskRecord, WorkerRecord
from tasks_admin.redaction import redact_repr, redacted_names

PAGE_SIZE = 50
# Totals are exact up to this, then "10,000+".
COUNT_CAP = 10_000
# Rows a windowed query (text search, started/runtime sort) or an id prefix may read.
SCAN_CAP = 20_000
PREFIX_CAP = 10_000
# "N new tasks" stops counting here ("50+").
NEWER_CAP = 50
# Text search and the started/runtime sorts look at this much history unless told otherwise.
DEFAULT_WINDOW = dt.timedelta(hours=24)
# An id prefix shorter than this is searched as text unless the user asks for ids.
MIN_PREFIX = 4


KNOWN_STATES: tuple[str, ...] = tuple(dict.fromkeys([states.PENDING, *EVENT_STATE.values()]))
SORTS = ("received", "started", "runtime")
MATCHES = ("auto", "id", "text")

TABLE = "tasks_admin_taskrecord"
LIST_COLUMNS = (
    "task_id",
    "name",
    "state",
    "first_seen_at",
    "started_at",
    "runtime",
    "retries",
    "worker",
    "queue",
    "args",
    "kwargs",
)
TEXT_COLUMNS = ("args", "kwargs", "result", "exception")
# The list's order, and the index it walks: task_seen_idx is (first_seen_at DESC, task_id).
RECEIVED_ORDER = "first_seen_at DESC, task_id ASC"
# Sort name -> (column, ORDER BY). Every sort breaks ties on task_id, the keyset's second key.
SORT_ORDER = {
    "received": ("first_seen_at", RECEIVED_ORDER),
    "started": ("started_at", "started_at DESC, task_id ASC"),
    "runtime": ("runtime", "runtime DESC, task_id ASC"),
}


@dataclass(frozen=True)
class Cursor:
    """A position in a sorted list: the sort key's value and the task id (the tie-break)."""

    value: dt.datetime | float
    task_id: str

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, dt.datetime) else repr(self.value)
        return f"{value}~{self.task_id}"

    @classmethod
    def decode(cls, text: str, *, sort: str = "received") -> "Cursor":
        """Parse ``encode``'s output; raise ValueError for anything else."""
        value, sep, task_id = text.partition("~")
        if not sep:
            raise ValueError("a cursor is <value>~<task id>")
        if sort == "runtime":
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError("not a finite number")
            return cls(number, task_id)
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return cls(moment, task_id)


@dataclass(frozen=True)
class TaskFilters:
    states: tuple[str, ...] = ()
    name: str = ""
    worker: str = ""
    queue: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    search: str = ""
    match: str = "auto"
    sort: str = "received"


@dataclass(frozen=True)
class Window:
    """What a windowed query looked at: newest tasks of a time range, or ids with a prefix."""

    kind: str  # "time" or "prefix"
    since: dt.datetime | None
    until: dt.datetime | None
    scanned: int
    cap: int
    # The oldest first_seen_at in the window: where "search older" continues.
    oldest: dt.datetime | None

    @property
    def full(self) -> bool:
        return self.scanned >= self.cap


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A task as the task list shows it: LIST_COLUMNS, in that order, with args and kwargs
    as people may see them (CONSOLE_REDACT_ARGS applied)."""

    task_id: str
    name: str
    state: str
    first_seen_at: dt.datetime
    started_at: dt.datetime | None
    runtime: float | None
    retries: int
    worker: str
    queue: str
    args: str
    kwargs: str

    @classmethod
    def shown(cls, *values: Any, names: frozenset[str]) -> "TaskRow":
        """A row of LIST_COLUMNS values, with the values of redacted ``names`` hidden."""
        row = cls(*values)
        if names and (row.args or row.kwargs):
            row = replace(
                row, args=redact_repr(row.args, names), kwargs=redact_repr(row.kwargs, names)
            )
        return row


@dataclass
class TaskPage:
    mode: str  # see search_mode
    filters: TaskFilters
    rows: list[TaskRow]
    total: int
    next_cursor: Cursor | None
    # Tasks newer than this are "new": the list's top on the first page, else None.
    newest: Cursor | None
    window: Window | None = None
    count_cap: int = COUNT_CAP

    @property
    def total_capped(self) -> bool:
        return self.total > self.count_cap

    @property
    def total_display(self) -> str:
        return f"{self.count_cap:,}+" if self.total_capped else f"{self.total:,}"


class _Sql:
    """WHERE clauses with their parameters, in order (values always go as parameters)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, sql: str, *params: Any) -> "_Sql":
        self.parts.append(sql)
        self.params.extend(params)
        return self

    def copy(self) -> "_Sql":
        other = _Sql()
        other.parts, other.params = list(self.parts), list(self.params)
        return other

    def where(self, prefix: str = "WHERE") -> str:
        return f"{prefix} {' AND '.join(self.parts)}" if self.parts else ""

    def condition(self) -> str:
        return " AND ".join(self.parts) if self.parts else "TRUE"


def like_pattern(text: str) -> str:
    """``%text%`` for (I)LIKE, with the user's own ``%``, ``_`` and ``\\`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``[low, high)`` holding exactly the strings that start with ``prefix`` in code-point
    (C collation) order; high is None when no string is above the prefix's range."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # PostgreSQL stores no surrogates
                nxt = 0xE000
            return prefix, "".join(chars) + chr(nxt)
    return prefix, None


def _column_filters(filters: TaskFilters, *, with_states: bool, with_time: bool = True) -> _Sql:
    sql = _Sql()
    if with_states and filters.states:
        if len(filters.states) == 1:
            sql.add("state = %s", filters.states[0])
        else:
            sql.add("state = ANY(%s)", list(filters.states))
    for column in ("name", "worker", "queue"):
        value = getattr(filters, column)
        if value:
            sql.add(f"{column} = %s", value)
    if with_time:
        if filters.since is not None:
            sql.add("first_seen_at >= %s", filters.since)
        if filters.until is not None:
            sql.add("first_seen_at <= %s", filters.until)
    return sql


def _source(
    filters: TaskFilters, extra: _Sql, columns: str, order: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The newest ``limit`` tasks matching ``filters`` and ``extra``, in ``order``.

    Several states become one ``LIMIT``-ed scan of the (state, -first_seen_at) index per
    state, merged: ``state = ANY(...)`` cannot walk that index in first_seen_at order.
    """
    base = _column_filters(filters, with_states=False)
    base.parts += extra.parts
    base.params += extra.params
    order_by = f"ORDER BY {order}" if order else ""
    if len(filters.states) <= 1:
        sql = base.copy()
        if filters.states:
            sql.add("state = %s", filters.states[0])
        return (
            f"SELECT {columns} FROM {TABLE} {sql.where()} {order_by} LIMIT %s",
            [*sql.params, limit],
        )
    branches, params = [], []
    for state in filters.states:
        sql = base.copy().add("state = %s", state)
        branches.append(f"(SELECT {columns} FROM {TABLE} {sql.where()} {order_by} LIMIT %s)")
        params += [*sql.params, limit]
    return (
        f"SELECT * FROM ({' UNION ALL '.join(branches)}) AS s {order_by} LIMIT %s",
        [*params, limit],
    )


def _after(column: str, cursor: Cursor) -> _Sql:
    """Rows after ``cursor`` in ``column DESC, task_id ASC`` order; the redundant first bound
    lets the index range-scan instead of filtering."""
    return _Sql().add(
        f"{column} <= %s AND ({column} < %s OR task_id > %s)",
        cursor.value,
        cursor.value,
        cursor.task_id,
    )


def _newer(cursor: Cursor) -> _Sql:
    """Rows before ``cursor`` in the received order: received later, or at the same moment
    with a smaller id."""
    return _Sql().add(
        "first_seen_at >= %s AND (first_seen_at > %s OR task_id < %s)",
        cursor.value,
        cursor.value,
        cursor.task_id,
    )


def _text_match(text: str) -> _Sql:
    """Case-insensitive substring of any text column.

    What ILIKE does, but folding one string per row instead of four: about half the cost.
    The unit separator between columns keeps a match from spanning two of them.
    """
    haystack = " || chr(31) || ".join(TEXT_COLUMNS)
    pattern = like_pattern(text.replace("\x1f", ""))
    return _Sql().add(f"(lower({haystack}) LIKE lower(%s))", pattern)


def _fetch(sql: str, params: list[Any]) -> list[TaskRow]:
    """Rows of a query selecting LIST_COLUMNS. Plain rows rather than model instances: a
    page is 50 of them on every list request, and building TaskRecords was about a fifth
    of an API task-list request's CPU."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        records = cursor.fetchall()
    names = redacted_names()
    return [TaskRow.shown(*record, names=names) for record in records]


def _scalar_row(sql: str, params: list[Any]) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(cursor.fetchone())


def _sort_value(row: TaskRow, sort: str) -> Any:
    return getattr(row, SORT_ORDER[sort][0])


def search_mode(filters: TaskFilters) -> str:
    """How a query runs: "list" (an index walk), "id" (an exact task id), "prefix" (an id
    prefix), "text" (text search in a window) or "window" (an unindexed sort in a window).

    "auto" tries an exact id (a primary-key lookup), then an id prefix (a primary-key range
    probe) when the text could be one, and otherwise searches text.
    """
    text = filters.search
    if not text:
        return "list" if filters.sort == "received" else "window"
    if filters.match == "text":
        return "text"
    if TaskRecord.objects.filter(pk=text).exists():
        return "id"
    if filters.match == "id":
        return "prefix"
    if len(text) >= MIN_PREFIX and not any(c.isspace() for c in text) and _prefix_exists(text):
        return "prefix"
    return "text"


def _prefix_sql(prefix: str) -> _Sql:
    low, high = prefix_bounds(prefix)
    sql = _Sql().add("task_id >= %s", low)
    if high is not None:
        sql.add("task_id < %s", high)
    # Exact under any collation: the range is only what lets the primary key serve it.
    return sql.add("starts_with(task_id, %s)", prefix)


def _prefix_exists(prefix: str) -> bool:
    sql = _prefix_sql(prefix)
    return _scalar_row(f"SELECT EXISTS(SELECT 1 FROM {TABLE} {sql.where()})", sql.params)[0]


def effective_filters(filters: TaskFilters, mode: str, now: dt.datetime) -> TaskFilters:
    """Text search and the unindexed sorts default to the last DEFAULT_WINDOW."""
    if mode in ("text", "window") and filters.since is None:
        return replace(filters, since=(filters.until or now) - DEFAULT_WINDOW)
    return filters


def task_page(
    filters: TaskFilters,
    *,
    after: Cursor | None = None,
    now: dt.datetime | None = None,
    size: int = PAGE_SIZE,
) -> TaskPage:
    """One page of the task list: ``size`` rows after ``after`` in ``filters.sort`` order."""
    now = now or timezone.now()
    mode = search_mode(filters)
    filters = effective_filters(filters, mode, now)
    if mode == "id":
        rows = (
            []
            if after
            else _fetch(
                f"SELECT {', '.join(LIST_COLUMNS)} FROM {TABLE} WHERE task_id = %s",
                [filters.search],
            )
        )
        return TaskPage(mode, filters, rows, 1, None, None, count_cap=COUNT_CAP)
    if mode == "list":
        return _list_page(filters, after, size)
    return _window_page(filters, mode, after, size)


def _list_page(filters: TaskFilters, after: Cursor | None, size: int = PAGE_SIZE) -> TaskPage:
    extra = _after("first_seen_at", after) if after else _Sql()
    sql, params = _source(filters, extra, ", ".join(LIST_COLUMNS), RECEIVED_ORDER, size + 1)
    rows = _fetch(sql, params)
    count_sql, count_params = _source(filters, _Sql(), "1", None, COUNT_CAP + 1)
    total = _capped_count(f"SELECT count(*) FROM ({count_sql}) AS c", count_params)
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = Cursor(rows[-1].first_seen_at, rows[-1].task_id)
    newest = None
    if after is None:
        # An empty list: every matching task that arrives is new.
        top = rows[0] if rows else None
        newest = Cursor(top.first_seen_at, top.task_id) if top else Cursor(_EPOCH, "")
    return TaskPage(
        "list", filters, rows, min(total, COUNT_CAP + 1), next_cursor, newest, count_cap=COUNT_CAP
    )


# Totals that reached the cap, by query, in this process: query -> when to count again.
# Reaching the cap means walking COUNT_CAP index entries (2-5 ms of PostgreSQL with 10M
# tasks, on every page and every API call), and a capped total stays capped as history
# grows, so "10,000+" is reused for CAPPED_TOTAL_SECONDS. Totals under the cap are counted
# every time: they are cheaper, and a script may be waiting for one to change.
#
# A relative time range ("from=1h") moves with the clock, so its bounds differ on every
# request: they are keyed to the CAPPED_TOTAL_SECONDS step they fall in. A window that
# slid by less than that keeps nearly all of more than COUNT_CAP tasks, and counting
# the newest hour anew took 5-10 ms of PostgreSQL per request while the collector wrote
# (its newest pages are not yet all-visible, so the count reads the heap).
CAPPED_TOTAL_SECONDS = 10.0
CAPPED_TOTALS_KEPT = 1000
_capped_totals: dict[tuple[str, tuple[Any, ...]], float] = {}


def _capped_count(sql: str, params: list[Any]) -> int:
    key = (sql, tuple(_time_step(p) if isinstance(p, dt.datetime) else p for p in params))
    now = time.monotonic()
    if _capped_totals.get(key, 0.0) > now:
        return COUNT_CAP + 1
    total = int(_scalar_row(sql, params)[0])
    if total > COUNT_CAP:
        if len(_capped_totals) >= CAPPED_TOTALS_KEPT:
            _capped_totals.clear()
        _capped_totals[key] = now + CAPPED_TOTAL_SECONDS
    else:
        _capped_totals.pop(key, None)
    return total


def _time_step(moment: dt.datetime) -> float:
    return moment.timestamp() // CAPPED_TOTAL_SECONDS


def forget_capped_totals() -> None:
    _capped_totals.clear()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _window(filters: TaskFilters, mode: str) -> tuple[str, list[Any], _Sql]:
    """The bounded set a windowed query reads, and the conditions rows of it must meet."""
    columns = ", ".join(dict.fromkeys((*LIST_COLUMNS, *TEXT_COLUMNS)))
    match = _Sql()
    if mode == "prefix":
        # The first PREFIX_CAP ids with the prefix, in primary-key order; the other filters
        # apply to those (a selective filter must not turn the range into a long walk).
        probe = _prefix_sql(filters.search)
        sql = f"SELECT {columns} FROM {TABLE} {probe.where()} ORDER BY task_id LIMIT %s"
        params = [*probe.params, PREFIX_CAP]
        own = _column_filters(filters, with_states=True)
        match.parts += own.parts
        match.params += own.params
    else:
        sql, params = _source(filters, _Sql(), columns, RECEIVED_ORDER, SCAN_CAP)
        if filters.search:
            match = _text_match(filters.search)
    column = SORT_ORDER[filters.sort][0]
    if column != "first_seen_at":
        match.add(f"{column} IS NOT NULL")
    return sql, params, match


def _window_page(
    filters: TaskFilters, mode: str, after: Cursor | None, size: int = PAGE_SIZE
) -> TaskPage:
    window_sql, window_params, match = _window(filters, mode)
    column, order = SORT_ORDER[filters.sort]
    conditions = match.copy()
    if after is not None:
        keyset = _after(column, after)
        conditions.parts += keyset.parts
        conditions.params += keyset.params
    rows = _fetch(
        f"SELECT {', '.join(LIST_COLUMNS)} FROM ({window_sql}) AS w {conditions.where()} "
        f"ORDER BY {order} LIMIT %s",
        [*window_params, *conditions.params, size + 1],
    )
    # One pass over the window; the match is evaluated once per row.
    total, scanned, oldest, newest_at = _scalar_row(
        "SELECT count(*) FILTER (WHERE hit), count(*), min(first_seen_at), "
        "max(first_seen_at) FILTER (WHERE hit) "
        f"FROM (SELECT first_seen_at, {match.condition()} AS hit FROM ({window_sql}) AS w) AS h",
        [*match.params, *window_params],
    )
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = Cursor(_sort_value(rows[-1], filters.sort), rows[-1].task_id)
    newest = None
    if after is None:
        # Every match in the window at or before its newest match is on some page of it, so
        # anything received later is new (an empty task id: strictly later).
        newest = Cursor(newest_at or _EPOCH, "")
    window = Window(
        kind="prefix" if mode == "prefix" else "time",
        since=filters.since,
        until=filters.until,
        scanned=scanned,
        cap=PREFIX_CAP if mode == "prefix" else SCAN_CAP,
        oldest=oldest,
    )
    return TaskPage(
        mode,
        filters,
        rows,
        min(total, COUNT_CAP + 1),
        next_cursor,
        newest,
        window,
        count_cap=COUNT_CAP,
    )


def count_newer(
    filters: TaskFilters, cursor: Cursor, *, cap: int | None = None, now: dt.datetime | None = None
) -> int:
    """How many tasks matching ``filters`` were received after ``cursor`` (a list's top),
    counting at most ``cap + 1`` (NEWER_CAP by default): "50+" needs no more."""
    return len(newer_ids(filters, cursor, cap=cap, now=now))


def newer_ids(
    filters: TaskFilters, cursor: Cursor, *, cap: int | None = None, now: dt.datetime | None = None
) -> list[str]:
    """The ids of at most ``cap + 1`` tasks matching ``filters`` received after ``cursor``.

    The live push starts from these when a list connects, then adds the matching tasks
    each tick brings (``matches``), so no task is counted twice.
    """
    cap = NEWER_CAP if cap is None else cap
    mode = search_mode(filters)
    if mode == "id":
        return []
    filters = effective_filters(filters, mode, now or timezone.now())
    newer = _newer(cursor)
    if mode == "list":
        sql, params = _source(filters, newer, "task_id", None, cap + 1)
        return _column(sql, params)
    columns = ", ".join(dict.fromkeys(("task_id", *LIST_COLUMNS, *TEXT_COLUMNS)))
    if mode == "prefix":
        probe = _prefix_sql(filters.search)
        match = _column_filters(filters, with_states=True)
        match.parts += newer.parts
        match.params += newer.params
        inner = f"SELECT {columns} FROM {TABLE} {probe.where()} ORDER BY task_id LIMIT %s"
        params = [*probe.params, PREFIX_CAP]
    else:
        # Oldest first from the cursor, so a page left open for days still reads a bounded
        # number of rows.
        inner, params = _source(
            filters, newer, columns, "first_seen_at ASC, task_id DESC", SCAN_CAP
        )
        match = _text_match(filters.search) if filters.search else _Sql()
    column = SORT_ORDER[filters.sort][0]
    if column != "first_seen_at":
        match.add(f"{column} IS NOT NULL")
    sql = f"SELECT task_id FROM ({inner}) AS w {match.where()} LIMIT %s"
    return _column(sql, [*params, *match.params, cap + 1])


def _column(sql: str, params: list[Any]) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class FilterChoices:
    names: list[str]
    workers: list[str]
    queues: list[str]


def filter_choices(now: dt.datetime | None = None) -> FilterChoices:
    """Suggestions for the filter inputs, from small tables (never the history)."""
    now = now or timezone.now()
    names = (
        TaskMinuteRollup.objects.filter(minute__gte=now - dt.timedelta(hours=1))
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()[:200]
    )
    workers = WorkerRecord.objects.order_by("hostname").values_list("hostname", flat=True)[:200]
    queues = QueueRecord.objects.order_by("name").values_list("name", flat=True)[:200]
    return FilterChoices(list(names), list(workers), list(queues))


def matching_task_ids(
    filters: TaskFilters,
    *,
    only_states: tuple[str, ...] | None = None,
    limit: int,
    now: dt.datetime | None = None,
) -> list[str]:
    """The ids of the tasks the list shows for ``filters`` (every page of it), newest first,
    at most ``limit``: what a bulk action acts on, so the same query means the same set.

    ``only_states`` narrows to the states an action applies to (intersected with the
    filter's own states). Windowed modes read the same bounded window the list reads.
    """
    now = now or timezone.now()
    if only_states is not None:
        wanted = [s for s in (filters.states or only_states) if s in only_states]
        if not wanted:
            return []
        filters = replace(filters, states=tuple(wanted))
    mode = search_mode(filters)
    filters = effective_filters(filters, mode, now)
    if mode == "id":
        found = TaskRecord.objects.filter(pk=filters.search)
        if only_states is not None:
            found = found.filter(state__in=filters.states)
        return list(found.values_list("task_id", flat=True)[:limit])
    if mode == "list":
        sql, params = _source(filters, _Sql(), "task_id, first_seen_at", RECEIVED_ORDER, limit)
    else:
        window_sql, window_params, match = _window(filters, mode)
        order = SORT_ORDER[filters.sort][1]
        sql = f"SELECT task_id FROM ({window_sql}) AS w {match.where()} ORDER BY {order} LIMIT %s"
        params = [*window_params, *match.params, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


TASK_NAMES_CAP = 10_000


def task_names(cap: int = TASK_NAMES_CAP) -> list[str]:
    """Every distinct task name in the history, sorted, at most ``cap``.

    A loose index scan of task_name_order_idx (one probe per name), so it costs the number
    of names, not the number of tasks.
    """
    sql = f"""
        WITH RECURSIVE names(name) AS (
            (SELECT name FROM {TABLE} ORDER BY name LIMIT 1)
            UNION ALL
            SELECT (SELECT t.name FROM {TABLE} t WHERE t.name > n.name ORDER BY t.name LIMIT 1)
            FROM names n WHERE n.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL AND name <> '' LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [cap])
        return [row[0] for row in cursor.fetchall()]
