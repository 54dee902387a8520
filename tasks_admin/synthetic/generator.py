"""Generating tasks, their events and rollups, and streaming them in with COPY (one job)."""

import contextlib
import dataclasses
import itertools
import math
import random
import time
from typing import Any

import orjson
import psycopg
from celery import states
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from tasks_admin import histogram
from tasks_admin.collector import rollups

TASKS = "tasks_admin_taskrecord"
EVENTS = "tasks_admin_taskevent"
ROLLUPS = "tasks_admin_taskminuterollup"
US = 1_000_000
MINUTE_US = 60 * US
DAY_US = 86_400 * US
MAX_RETRIES = 3
# Upper bound of events per task (sent, received, started, retried per attempt, final).
EVENTS_PER_TASK = 4 * (MAX_RETRIES + 2)
CHUNK = 5_000  # tasks per COPY round of the event log
QUEUE_SAMPLE_SECONDS = 30

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
    "runtime",
    "retries",
    "worker",
    "queue",
    "exchange",
    "routing_key",
    "root_id",
    "parent_id",
    "group_id",
    "args",
    "kwargs",
    "result",
    "exception",
    "exception_type",
    "traceback",
    "revoke_signal",
    "reconciled",
    "replay_of",
    "event_keys",
    "last_event_ts",
    "last_event_clock",
    "updated_at",
)
EVENT_COLUMNS = "id, recorded_at, task_id, type, event_at, hostname, clock, event_key, fields"
# A job's rollup of one (name, minute): a list in rollups.COLUMNS order, R[column] its index.
R = {column: i for i, column in enumerate(rollups.COLUMNS)}


def _empty_rollup() -> list[Any]:
    return [
        None if c.endswith("_hist") else 0.0 if c.endswith("_sum") else 0 for c in rollups.COLUMNS
    ]


# module: (queue, [(function, median runtime in seconds)])
MODULES: dict[str, tuple[str, list[tuple[str, float]]]] = {
    "billing": (
        "billing",
        [
            ("charge_invoice", 0.35),
            ("refund_payment", 0.4),
            ("sync_stripe_customer", 1.2),
            ("send_receipt", 0.15),
        ],
    ),
    "emails": (
        "emails",
        [
            ("send_welcome", 0.08),
            ("send_digest", 0.6),
            ("send_password_reset", 0.05),
            ("process_bounce", 0.02),
        ],
    ),
    "reports": (
        "reports",
        [("build_monthly_report", 25.0), ("export_csv", 8.0), ("refresh_dashboard", 3.0)],
    ),
    "search": (
        "celery",
        [("reindex_document", 0.12), ("rebuild_index", 120.0), ("update_synonyms", 0.5)],
    ),
    "media": (
        "media",
        [("resize_image", 0.9), ("transcode_video", 45.0), ("generate_thumbnail", 0.3)],
    ),
    "accounts": (
        "celery",
        [("sync_profile", 0.05), ("expire_sessions", 2.0), ("merge_duplicates", 1.5)],
    ),
    "webhooks": ("webhooks", [("deliver", 0.25), ("redeliver_failed", 0.4)]),
    "analytics": (
        "celery",
        [("aggregate_hourly", 12.0), ("track_event", 0.01), ("compact_partitions", 30.0)],
    ),
}

# (exception repr, last traceback line)
EXCEPTIONS = (
    (
        "ConnectTimeout('upstream timed out after 10.0s')",
        "httpx.ConnectTimeout: upstream timed out after 10.0s",
    ),
    ("KeyError('customer_id')", "KeyError: 'customer_id'"),
    (
        "ValueError('invalid literal for int() with base 10: \\'n/a\\'')",
        "ValueError: invalid literal for int() with base 10: 'n/a'",
    ),
    (
        "IntegrityError('duplicate key value violates unique constraint \"orders_pkey\"')",
        "django.db.utils.IntegrityError: duplicate key value violates unique constraint "
        '"orders_pkey"',
    ),
    ("SoftTimeLimitExceeded()", "celery.exceptions.SoftTimeLimitExceeded: SoftTimeLimitExceeded()"),
)
TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/venv/lib/python3.11/site-packages/celery/app/trace.py", line 453, in trace_task
    R = retval = fun(*args, **kwargs)
                 ^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/venv/lib/python3.11/site-packages/celery/app/trace.py", line 736, in __call__
    return self.run(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/{module}/tasks.py", line {line}, in {func}
    response = client.post(url, json=payload, timeout=10)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
{last}
"""


@dataclasses.dataclass(frozen=True)
class TaskName:
    name: str
    queue: str
    mu: float  # log of the median runtime
    weight: float


@dataclasses.dataclass(frozen=True)
class Cluster:
    names: tuple[TaskName, ...]
    workers: tuple[str, ...]
    # Queue -> the workers consuming it.
    consumers: dict[str, tuple[str, ...]]


def cluster(*, names: int, workers: int) -> Cluster:
    """``names`` task names (Zipf-weighted: a few dominate) and ``workers`` workers."""
    base = [
        (f"{module}.tasks.{func}", queue, median)
        for module, (queue, funcs) in MODULES.items()
        for func, median in funcs
    ]
    chosen = []
    for i in range(names):
        name, queue, median = base[i % len(base)]
        if i >= len(base):
            name = f"{name}_v{i // len(base) + 1}"
        chosen.append(TaskName(name, queue, math.log(median), 1.0 / (i + 1)))
    hosts = tuple(f"celery@worker-{i + 1:02d}" for i in range(workers))
    queues = sorted({n.queue for n in chosen})
    consumers: dict[str, list[str]] = {q: [] for q in queues}
    for i, host in enumerate(hosts):
        for j, queue in enumerate(queues):
            if queue == "celery" or j % len(hosts) == i % len(hosts) or len(hosts) > 2 * j + i:
                consumers[queue].append(host)
    for j, queue in enumerate(queues):
        if not consumers[queue]:
            consumers[queue].append(hosts[j % len(hosts)])
    return Cluster(tuple(chosen), hosts, {q: tuple(h) for q, h in consumers.items()})


@dataclasses.dataclass(frozen=True)
class JobSpec:
    conninfo: dict[str, Any]
    job: int
    first: int  # task indexes [first, last) of the whole fill
    last: int
    total: int
    start_us: int  # the fill's time range
    end_us: int
    seed: int
    names: int
    workers: int
    id_base: int  # event ids [id_base, id_base + (last - first) * EVENTS_PER_TASK)
    # Day number (unix days) -> the table that day's events go to.
    day_tables: dict[int, str]


@dataclasses.dataclass
class JobResult:
    tasks: int = 0
    events: int = 0
    states: dict[str, int] = dataclasses.field(default_factory=dict)
    max_id: int = 0
    processed: dict[str, int] = dataclasses.field(default_factory=dict)


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format."""
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    )


class _Clock:
    """Microsecond instants to timestamptz text; whole seconds are cached."""

    def __init__(self) -> None:
        self.cache: dict[int, str] = {}

    def __call__(self, us: int) -> str:
        sec, frac = divmod(us, US)
        base = self.cache.get(sec)
        if base is None:
            if len(self.cache) > 500_000:
                self.cache.clear()
            base = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))
            self.cache[sec] = base
        return f"{base}.{frac:06d}+00"


def _task_id(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _json(value: str) -> str:
    return orjson.dumps(value).decode()


class _Generator:
    """One job's tasks: rows, their events and their rollup contributions."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed * 1_000_003 + spec.job)
        self.cluster = cluster(names=spec.names, workers=spec.workers)
        names = self.cluster.names
        self.name_range = range(len(names))
        self.cum_weights = list(itertools.accumulate(n.weight for n in names))
        self.name_json = [_json(n.name) for n in names]
        self.stamp = _Clock()
        self.tracebacks: dict[tuple[int, int], tuple[str, str]] = {}
        for i, n in enumerate(names):
            for j, (_, last) in enumerate(EXCEPTIONS):
                text = TRACEBACK.format(
                    module=n.name.split(".")[0],
                    func=n.name.rsplit(".", 1)[1],
                    line=40 + 7 * j,
                    last=last,
                )
                self.tracebacks[(i, j)] = (_copy_text(text), _json(text))
        self.exception_json = [_json(e[0]) for e in EXCEPTIONS]
        self.exception_copy = [_copy_text(e[0]) for e in EXCEPTIONS]
        self.exception_type = [e[0].split("(", 1)[0] for e in EXCEPTIONS]
        self.publishers = [f"gen{1000 + 17 * i}@web-{i + 1}" for i in range(3)]
        self.pids = {host: 3000 + 11 * i for i, host in enumerate(self.cluster.workers)}
        for host in self.publishers:
            self.pids[host] = int(host[3:7])
        self.rollup: dict[tuple[int, int], list[Any]] = {}
        self.processed: dict[str, int] = dict.fromkeys(self.cluster.workers, 0)
        self.result = JobResult()
        self.next_id = spec.id_base
        self.clock = 1_000_000 * (spec.job + 1)
        # Workflow members still to generate: (task id, name, first event, root, parent, group).
        self.pending: list[tuple[str, int, int, str, str, str]] = []

    def _pick_name(self) -> int:
        return self.rng.choices(self.name_range, cum_weights=self.cum_weights)[0]

    def _next_identity(self) -> tuple[str, int, int, str, str, str]:
        if self.pending:
            return self.pending.pop()
        spec, rng = self.spec, self.rng
        # Workflow members count too, so the slice's tasks fill its whole stretch of time.
        position = min(spec.first + self.result.tasks + rng.random(), spec.last) / spec.total
        t0 = spec.start_us + int(position * (spec.end_us - spec.start_us))
        name_i = self._pick_name()
        task_id = _task_id(rng)
        roll = rng.random()
        if roll < 0.03:  # a chain: each link's parent is the link before it
            ids = [task_id] + [_task_id(rng) for _ in range(rng.randint(1, 4))]
            at, links = t0, []
            for k in range(1, len(ids)):
                at += int(rng.uniform(0.5, 5.0) * US)
                links.append((ids[k], self._pick_name(), at, task_id, ids[k - 1], ""))
            self.pending.extend(reversed(links))
        elif roll < 0.05:  # a group of siblings published by this task
            group_id = _task_id(rng)
            child = self._pick_name()
            for _ in range(rng.randint(3, 12)):
                at = t0 + int(rng.uniform(0.05, 2.0) * US)
                self.pending.append((_task_id(rng), child, at, task_id, task_id, group_id))
        return task_id, name_i, t0, task_id, "", ""

    def _bucket(self, name_i: int, at_us: int) -> list[Any]:
        key = (name_i, at_us // MINUTE_US)
        bucket = self.rollup.get(key)
        if bucket is None:
            bucket = self.rollup[key] = _empty_rollup()
        return bucket

    def _contribute(self, name_i: int, at_us: int, column: int, amount: int = 1) -> list[Any]:
        bucket = self._bucket(name_i, at_us)
        bucket[column] += amount
        return bucket

    def _observe(self, bucket: list[Any], column: int, seconds: float) -> None:
        """One observation in the (count, sum, histogram) starting at ``column``."""
        bucket[column] += 1
        bucket[column + 1] += seconds
        if bucket[column + 2] is None:
            bucket[column + 2] = histogram.empty()
        bucket[column + 2][histogram.bucket_of(seconds)] += 1

    def task(self, task_lines: list[str], event_lines: dict[int, list[str]]) -> None:
        """Append one task's row and events (or nothing, if none of it happened yet)."""
        rng = self.rng
        task_id, name_i, t0, root_id, parent_id, group_id = self._next_identity()
        name = self.cluster.names[name_i]
        queue = name.queue
        hosts = self.cluster.consumers[queue]
        worker = hosts[int(rng.random() * len(hosts))]
        publisher = self.publishers[int(rng.random() * len(self.publishers))]
        pid = self.pids[worker]
        user = int(rng.random() * 200_000)
        args = f"({int(rng.random() * 10**7)}, 'user{user}@example.com')"
        kwargs = (
            f"{{'priority': {int(rng.random() * 10)}, 'dry_run': False, "
            f"'locale': '{'en-GB' if user % 3 else 'de-DE'}'}}"
        )
        roll = rng.random()
        if roll < 0.90:
            outcome, attempts = "SUCCESS", 1
        elif roll < 0.94:
            outcome, attempts = "FAILURE", 1
        elif roll < 0.97:
            outcome, attempts = "SUCCESS", rng.randint(2, MAX_RETRIES + 1)
        elif roll < 0.975:
            outcome, attempts = "FAILURE", MAX_RETRIES + 1
        elif roll < 0.98:
            outcome, attempts = "RETRY", 1  # retried; the next attempt never came
        elif roll < 0.99:
            outcome, attempts = "REVOKED", 1  # revoked while queued
        elif roll < 0.995:
            outcome, attempts = "REVOKED-RUNNING", 1  # terminated
        elif roll < 0.9955:
            outcome, attempts = "RECEIVED", 1  # reserved by a worker that never ran it
        else:
            outcome, attempts = "SUCCESS", 1
        exc_i = int(rng.random() * len(EXCEPTIONS))
        head = f'{{"utcoffset": 0, "pid": {pid}'
        common = (
            f'"name": {self.name_json[name_i]}, "args": {_json(args)}, '
            f'"kwargs": {_json(kwargs)}, "root_id": "{root_id}", '
            f'"parent_id": {_json(parent_id) if parent_id else "null"}'
        )
        group_json = f', "group": "{group_id}"' if group_id else ""
        # (type, at, hostname, attempt, fields json)
        events: list[tuple[str, int, str, int, str]] = []
        at = t0
        runtime = 0.0
        value = ""
        for attempt in range(attempts):
            sender = publisher if attempt == 0 else f"gen{pid}@{worker[7:]}"
            events.append(
                (
                    "task-sent",
                    at,
                    sender,
                    attempt,
                    f'{{"utcoffset": 0, "pid": {self.pids.get(sender, pid)}, {common}, '
                    f'"retries": {attempt}, "eta": null, "expires": null, '
                    f'"queue": "{queue}", "exchange": "", "routing_key": "{queue}"{group_json}}}',
                )
            )
            wait = rng.lognormvariate(-4.0, 1.5) if attempt == 0 else 2.0**attempt
            at += int(wait * US) + 1
            events.append(
                (
                    "task-received",
                    at,
                    worker,
                    attempt,
                    f'{head}, {common}, "retries": {attempt}, "eta": null, '
                    f'"expires": null{group_json}}}',
                )
            )
            if outcome in ("RECEIVED", "REVOKED"):
                break
            at += int(rng.lognormvariate(-5.0, 1.0) * US) + 1
            events.append(("task-started", at, worker, attempt, f"{head}}}"))
            if outcome == "REVOKED-RUNNING":
                break
            runtime = round(rng.lognormvariate(name.mu, 0.7), 6)
            at += int(runtime * US) + 1
            if attempt < attempts - 1 or outcome == "RETRY":
                tb = self.tracebacks[(name_i, exc_i)][1]
                events.append(
                    (
                        "task-retried",
                        at,
                        worker,
                        attempt,
                        f'{head}, "exception": {self.exception_json[exc_i]}, "traceback": {tb}}}',
                    )
                )
                at += 1000
        if outcome == "SUCCESS":
            value = (
                f"{{'ok': True, 'id': {int(rng.random() * 10**6)}, "
                f"'rows': {int(rng.random() * 500)}}}"
            )
            events.append(
                (
                    "task-succeeded",
                    at,
                    worker,
                    attempts - 1,
                    f'{head}, "result": {_json(value)}, "runtime": {runtime!r}}}',
                )
            )
        elif outcome == "FAILURE":
            tb = self.tracebacks[(name_i, exc_i)][1]
            events.append(
                (
                    "task-failed",
                    at,
                    worker,
                    attempts - 1,
                    f'{head}, "exception": {self.exception_json[exc_i]}, "traceback": {tb}}}',
                )
            )
        elif outcome.startswith("REVOKED"):
            at += int(rng.uniform(0.5, 30) * US)
            running = outcome == "REVOKED-RUNNING"
            events.append(
                (
                    "task-revoked",
                    at,
                    worker,
                    0,
                    f'{head}, "terminated": {"true" if running else "false"}, '
                    f'"signum": {15 if running else "null"}, "expired": false}}',
                )
            )
        # What has not happened by the end of the fill is cut: the newest tasks are still
        # queued or running, as on a live cluster.
        end = self.spec.end_us
        while events and events[-1][1] > end:
            events.pop()
        if not events:
            return
        self._emit(
            task_lines,
            event_lines,
            events,
            task_id=task_id,
            name_i=name_i,
            queue=queue,
            ids=(root_id, parent_id, group_id),
            texts=(args, kwargs, value),
            exc_i=exc_i,
            runtime=runtime,
            revoked_running=outcome == "REVOKED-RUNNING",
        )

    def _emit(
        self,
        task_lines: list[str],
        event_lines: dict[int, list[str]],
        events: list[tuple[str, int, str, int, str]],
        *,
        task_id: str,
        name_i: int,
        queue: str,
        ids: tuple[str, str, str],
        texts: tuple[str, str, str],
        exc_i: int,
        runtime: float,
        revoked_running: bool,
    ) -> None:
        """Write the events and the row they fold into (merge's rules: here each event
        wins, since they are in lifecycle order with increasing times)."""
        rng, stamp = self.rng, self.stamp
        keys = []
        sent_at: int | None = None
        received_at: int | None = None
        started_at: int | None = None
        retried_at: int | None = None
        final_at: int | None = None
        state: str = states.PENDING
        retries = 0
        failed = False
        row_worker = ""
        recorded = 0
        for type_, at, host, attempt, fields in events:
            key = rng.getrandbits(63) - (1 << 62)
            keys.append(str(key))
            self.clock += 1
            recorded = at + 20_000 + int(rng.random() * 80_000)
            day = recorded // DAY_US
            lines = event_lines.get(day)
            if lines is None:
                lines = event_lines[day] = []
            lines.append(
                f"{self.next_id}\t{stamp(recorded)}\t{task_id}\t{type_}\t{stamp(at)}\t{host}\t"
                f"{self.clock}\t{key}\t{fields.replace(chr(92), chr(92) * 2)}\n"
            )
            self.next_id += 1
            if type_ == "task-sent":
                state = states.PENDING
                sent_at = sent_at or at
                retries = attempt
                continue
            row_worker = host
            if type_ == "task-received":
                state = states.RECEIVED
                received_at = received_at or at
                retries = attempt
            elif type_ == "task-started":
                state = states.STARTED
                started_at = at
            elif type_ == "task-retried":
                state = states.RETRY
                retried_at = at
                failed = True
            elif type_ == "task-succeeded":
                state = states.SUCCESS
                final_at = at
            elif type_ == "task-failed":
                state = states.FAILURE
                final_at = at
                failed = True
            else:
                state = states.REVOKED
                final_at = at
        last = events[-1]
        # rollups._contribute's rules, on the values this row is written with (no task here
        # is rejected: rejected_at stays NULL, so nothing counts as rejected).
        if sent_at is not None:
            self._contribute(name_i, sent_at, R["sent"])
        if received_at is not None:
            self._contribute(name_i, received_at, R["received"])
        if started_at is not None:
            self._contribute(name_i, started_at, R["started"])
        if retries and retried_at is not None:
            self._contribute(name_i, retried_at, R["retried"], retries)
        if final_at is not None:
            if state == states.SUCCESS:
                bucket = self._contribute(name_i, final_at, R["succeeded"])
                self._observe(bucket, R["runtime_count"], runtime)
            else:
                failed_or_revoked = "failed" if state == states.FAILURE else "revoked"
                self._contribute(name_i, final_at, R[failed_or_revoked])
            # rollups.queue_wait: finished, never retried, sent and started (no ETAs here).
            if not retries and sent_at is not None and started_at is not None:
                wait = max((started_at - sent_at) / US, 0.0)
                self._observe(self._bucket(name_i, started_at), R["queue_wait_count"], wait)
            if state != states.REVOKED:
                self.processed[row_worker] += 1
        result = self.result
        result.states[state] = result.states.get(state, 0) + 1
        result.events += len(events)
        result.tasks += 1
        args, kwargs, value = texts
        nul = "\\N"
        task_lines.append(
            "\t".join(
                (
                    task_id,
                    self.cluster.names[name_i].name,
                    state,
                    stamp(events[0][1]),
                    stamp(last[1]),
                    stamp(sent_at) if sent_at else nul,
                    stamp(received_at) if received_at else nul,
                    stamp(started_at) if started_at else nul,
                    stamp(final_at) if final_at and state == states.SUCCESS else nul,
                    stamp(final_at) if final_at and state == states.FAILURE else nul,
                    stamp(retried_at) if retried_at else nul,
                    stamp(final_at) if final_at and state == states.REVOKED else nul,
                    repr(runtime) if state == states.SUCCESS else nul,
                    str(retries),
                    row_worker,
                    queue,
                    "",
                    queue,
                    *ids,
                    _copy_text(args),
                    _copy_text(kwargs),
                    _copy_text(value) if state == states.SUCCESS else "",
                    self.exception_copy[exc_i] if failed else "",
                    self.exception_type[exc_i] if failed else "",
                    self.tracebacks[(name_i, exc_i)][0] if failed else "",
                    "15" if revoked_running and state == states.REVOKED else "",
                    "f",
                    "",
                    "{" + ",".join(keys) + "}",
                    repr(last[1] / US),
                    str(self.clock),
                    stamp(recorded),
                )
            )
            + "\n"
        )


class _DayStreams:
    """One open COPY per event log day, each on its own connection, so that no COPY waits
    for another to finish. A job moves forward in time, so days it has left are closed."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.open: dict[int, tuple[psycopg.Connection, contextlib.ExitStack, Any]] = {}

    def write(self, day: int, data: str) -> None:
        stream = self.open.get(day)
        if stream is None:
            conn = psycopg.connect(**self.spec.conninfo, autocommit=True)
            conn.execute("SET synchronous_commit = off")
            stack = contextlib.ExitStack()
            cur = stack.enter_context(conn.cursor())
            table = sql.Identifier(self.spec.day_tables[day])
            copy = stack.enter_context(
                cur.copy(
                    sql.SQL("COPY {} ({}) FROM STDIN").format(table, sql.SQL(EVENT_COLUMNS)),
                    writer=QueuedLibpqWriter(cur),
                )
            )
            stream = self.open[day] = (conn, stack, copy)
        stream[2].write(data)

    def close_before(self, day: int) -> None:
        for old in [d for d in self.open if d < day]:
            self._close(old)

    def _close(self, day: int) -> None:
        conn, stack, _ = self.open.pop(day)
        try:
            stack.close()
        finally:
            conn.close()

    def close_all(self) -> None:
        for day in list(self.open):
            self._close(day)


def run_job(spec: JobSpec) -> JobResult:
    """Generate one slice of the history and COPY it in (runs in a child process)."""
    gen = _Generator(spec)
    count = spec.last - spec.first
    tconn = psycopg.connect(**spec.conninfo)
    days = _DayStreams(spec)
    try:
        tconn.execute("SET synchronous_commit = off")
        statement = f"COPY {TASKS} ({', '.join(TASK_COLUMNS)}) FROM STDIN"
        with tconn.cursor() as tcur, tcur.copy(statement, writer=QueuedLibpqWriter(tcur)) as tcopy:
            while gen.result.tasks < count:
                task_lines: list[str] = []
                event_lines: dict[int, list[str]] = {}
                goal = min(gen.result.tasks + CHUNK, count)
                while gen.result.tasks < goal:
                    gen.task(task_lines, event_lines)
                tcopy.write("".join(task_lines))
                for day, lines in event_lines.items():
                    days.write(day, "".join(lines))
                # Workflow members and retries reach a day or so past the newest task.
                days.close_before(min(event_lines, default=0) - 1)
            days.close_all()
        tconn.commit()
        with psycopg.connect(**spec.conninfo, autocommit=True) as conn:
            _write_rollups(conn, gen.rollup, gen.cluster)
    finally:
        days.close_all()
        tconn.close()
    gen.result.max_id = gen.next_id - 1
    gen.result.processed = gen.processed
    return gen.result


def _copy_row(values: list[Any]) -> str:
    return "\t".join(
        ("{" + ",".join(map(str, v)) + "}" if v else "{}") if c.endswith("_hist") else repr(v)
        for c, v in zip(rollups.COLUMNS, values, strict=True)
    )


def _add_into(into: list[Any], values: list[Any]) -> None:
    for i, column in enumerate(rollups.COLUMNS):
        if not column.endswith("_hist"):
            into[i] += values[i]
        elif values[i] is not None:
            into[i] = histogram.add(into[i] or histogram.empty(), values[i])


def _write_rollups(conn: psycopg.Connection, rollup: dict, cl: Cluster) -> None:
    """Add this job's rollups to the table (several jobs may share a minute of a name), and
    their sums per name to the running totals, as the collector's rollups.apply does."""
    columns = ", ".join(rollups.COLUMNS)
    totals: dict[str, list[Any]] = {}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE fill_rollup (LIKE {ROLLUPS} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cur.copy(f"COPY fill_rollup (id, name, minute, {columns}) FROM STDIN") as copy:
            lines = []
            for i, ((name_i, minute), b) in enumerate(rollup.items()):
                name = cl.names[name_i].name
                when = time.strftime("%Y-%m-%d %H:%M:00+00", time.gmtime(minute * 60))
                lines.append(f"{i}\t{name}\t{when}\t{_copy_row(b)}\n")
                _add_into(totals.setdefault(name, _empty_rollup()), b)
            copy.write("".join(lines))
        # In time order, as the collector writes them: the dashboard's range scans of the
        # minute index depend on that physical order.
        cur.execute(
            f"INSERT INTO {ROLLUPS} AS r (name, minute, {columns}) "
            f"SELECT name, minute, {columns} FROM fill_rollup ORDER BY minute, name "
            f"ON CONFLICT (name, minute) DO UPDATE SET {rollups.ADD_EXCLUDED}"
        )
        cur.executemany(
            rollups.TOTALS_UPSERT,
            [
                (
                    name,
                    *(
                        v or [] if c.endswith("_hist") else v
                        for c, v in zip(rollups.COLUMNS, b, strict=True)
                    ),
                )
                for name, b in sorted(totals.items())
            ],
        )
