"""Preparing the database for a fill, running the jobs, and indexing what they loaded."""

import dataclasses
import datetime as dt
import multiprocessing
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import psycopg
from django.db import connection
from psycopg import sql

from tasks_admin.collector import partitions
from tasks_admin.synthetic.generator import (
    DAY_US,
    EVENTS,
    EVENTS_PER_TASK,
    QUEUE_SAMPLE_SECONDS,
    ROLLUPS,
    TASKS,
    US,
    JobResult,
    JobSpec,
    cluster,
    run_job,
)


@dataclasses.dataclass
class FillReport:
    tasks: int
    events: int
    states: dict[str, int]
    seconds: dict[str, float]
    rebuilt_indexes: bool


def conninfo() -> dict[str, Any]:
    """psycopg.connect() arguments for Django's default database (the test one in tests)."""
    s = connection.settings_dict
    info = {"dbname": s["NAME"], "user": s["USER"], "password": s["PASSWORD"]}
    info.update(host=s["HOST"], port=s["PORT"])
    return {k: v for k, v in info.items() if v not in (None, "")}


def _scalar(cur: psycopg.Cursor, sql: Any, params: list[Any] | None = None) -> Any:
    row = cur.execute(sql, params)
    found = row.fetchone()
    return None if found is None else found[0]


def _day_start(day: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(day * 86_400, dt.UTC)


def _prepare_event_days(cur: psycopg.Cursor, days: range) -> tuple[dict[int, str], list[int]]:
    """The table each day's events go to: its partition if it exists, else a new plain
    table ``<partition>_fill`` to be indexed and attached after the load."""
    tables, fresh = {}, []
    for day in days:
        name = partitions.partition_name(_day_start(day).date())
        if _scalar(cur, "SELECT to_regclass(%s)", [name]) is not None:
            tables[day] = name
            continue
        fill = f"{name}_fill"
        cur.execute(f'DROP TABLE IF EXISTS "{fill}"')
        cur.execute(f'CREATE TABLE "{fill}" (LIKE {EVENTS} INCLUDING DEFAULTS)')
        tables[day] = fill
        fresh.append(day)
    return tables, fresh


def _index_event_day(info: dict[str, Any], day: int) -> None:
    name = partitions.partition_name(_day_start(day).date())
    fill = f"{name}_fill"
    start, end = _day_start(day), _day_start(day + 1)
    with psycopg.connect(**info, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        # Named as PostgreSQL names them on a partition created by the collector.
        conn.execute(
            f'ALTER TABLE "{fill}" ADD CONSTRAINT "{name}_pkey" PRIMARY KEY (id, recorded_at)'
        )
        conn.execute(f'CREATE INDEX "{name}_task_id_event_at_idx" ON "{fill}" (task_id, event_at)')
        # A valid CHECK of the partition bounds spares ATTACH its own validating scan.
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} ADD CONSTRAINT {} CHECK (recorded_at >= {} AND recorded_at < {})"
            ).format(
                sql.Identifier(fill),
                sql.Identifier(f"{fill}_bounds"),
                sql.Literal(start),
                sql.Literal(end),
            )
        )


def _attach_event_day(conn: psycopg.Connection, day: int) -> None:
    name = partitions.partition_name(_day_start(day).date())
    fill = f"{name}_fill"
    conn.execute(f'ALTER TABLE "{fill}" RENAME TO "{name}"')
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(EVENTS),
            sql.Identifier(name),
            sql.Literal(_day_start(day)),
            sql.Literal(_day_start(day + 1)),
        )
    )
    conn.execute(f'ALTER TABLE "{name}" DROP CONSTRAINT "{fill}_bounds"')


def _task_indexes(cur: psycopg.Cursor) -> list[tuple[str, str, bool]]:
    """(name, definition, is the primary key) of every index of the task table."""
    rows = cur.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid), x.indisprimary, c.conname, "
        "pg_get_constraintdef(c.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'p' "
        "WHERE x.indrelid = %s::regclass ORDER BY i.relname",
        [TASKS],
    ).fetchall()
    out = []
    for name, indexdef, primary, conname, condef in rows:
        if primary:
            out.append((conname, f"ALTER TABLE {TASKS} ADD CONSTRAINT {conname} {condef}", True))
        else:
            out.append((name, indexdef, False))
    return out


def _run_sql(info: dict[str, Any], statement: str) -> None:
    with psycopg.connect(**info, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(statement)


def fill_history(
    *,
    tasks: int,
    days: float = 7.0,
    names: int = 20,
    workers: int = 8,
    seed: int = 1,
    jobs: int = 2,
    now: dt.datetime | None = None,
    rebuild_indexes: bool | None = None,
    vacuum: bool = True,
    log: Callable[[str], None] = lambda _msg: None,
) -> FillReport:
    """Add ``tasks`` synthetic tasks spread over the ``days`` before ``now``.

    ``rebuild_indexes`` (default: when the task table is empty) drops the task table's
    indexes for the load and recreates them afterwards, whatever happens.
    """
    if tasks < 1 or days <= 0 or names < 1 or workers < 1 or jobs < 1:
        raise ValueError("tasks, days, names, workers and jobs must be positive")
    now = now or dt.datetime.now(dt.UTC)
    end_us = int(now.timestamp() * US)
    start_us = end_us - int(days * DAY_US)
    jobs = min(jobs, tasks)
    info = conninfo()
    connection.close()  # children fork: they must not inherit Django's connection
    seconds: dict[str, float] = {}
    began = time.monotonic()
    with psycopg.connect(**info, autocommit=True) as conn, conn.cursor() as cur:
        empty = _scalar(cur, f"SELECT NOT EXISTS (SELECT 1 FROM {TASKS})")
        rebuild = empty if rebuild_indexes is None else rebuild_indexes
        # Event ids: one block from the log's own sequence, so the collector never reuses one.
        sequence = _scalar(cur, "SELECT pg_get_serial_sequence(%s, 'id')", [EVENTS])
        id_base = _scalar(cur, "SELECT nextval(%s)", [sequence])
        block = tasks * EVENTS_PER_TASK
        cur.execute("SELECT setval(%s, %s)", [sequence, id_base + block])
        event_days = range(start_us // DAY_US, (end_us + DAY_US) // DAY_US + 1)
        day_tables, fresh_days = _prepare_event_days(cur, event_days)
        indexes = _task_indexes(cur) if rebuild else []
        for name, definition, _ in indexes:
            log(f"dropping {name} for the load; if this run dies, recreate it with: {definition}")
        for name, _, primary in indexes:
            if primary:
                cur.execute(f"ALTER TABLE {TASKS} DROP CONSTRAINT {name}")
            else:
                cur.execute(f'DROP INDEX "{name}"')
    specs = []
    for job in range(jobs):
        first, last = tasks * job // jobs, tasks * (job + 1) // jobs
        specs.append(
            JobSpec(
                conninfo=info,
                job=job,
                first=first,
                last=last,
                total=tasks,
                start_us=start_us,
                end_us=end_us,
                seed=seed,
                names=names,
                workers=workers,
                id_base=id_base + first * EVENTS_PER_TASK,
                day_tables=day_tables,
            )
        )
    results: list[JobResult] = []
    try:
        step = time.monotonic()
        if jobs == 1:
            results = [run_job(specs[0])]
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.map(run_job, specs)
        seconds["load"] = time.monotonic() - step
        log(f"loaded in {seconds['load']:.1f} s; indexing")
        step = time.monotonic()
        with ThreadPoolExecutor(max(jobs, 1)) as pool:
            list(pool.map(lambda day: _index_event_day(info, day), fresh_days))
        with psycopg.connect(**info) as conn:
            for day in fresh_days:
                _attach_event_day(conn, day)
        seconds["event_indexes"] = time.monotonic() - step
    finally:
        step = time.monotonic()
        # The primary key first: the other indexes are not needed to build it.
        ordered = sorted(indexes, key=lambda index: not index[2])
        with ThreadPoolExecutor(max(jobs, 1)) as pool:
            list(pool.map(lambda index: _run_sql(info, index[1]), ordered))
        seconds["task_indexes"] = time.monotonic() - step
        # Day tables not attached (the load failed): their events belong to no task row.
        with psycopg.connect(**info, autocommit=True) as conn:
            for day in fresh_days:
                name = partitions.partition_name(_day_start(day).date())
                conn.execute(f'DROP TABLE IF EXISTS "{name}_fill"')
    step = time.monotonic()
    _fill_workers_and_queues(info, results, names=names, workers=workers, now=now, days=days)
    partitions.ensure_partitions(now.date())
    seconds["workers_queues"] = time.monotonic() - step
    step = time.monotonic()
    with psycopg.connect(**info, autocommit=True) as conn:
        for table in (TASKS, EVENTS, ROLLUPS, "tasks_admin_queuesample"):
            # VACUUM sets the visibility map (index-only scans) and hint bits, as
            # autovacuum would on a cluster that has been running for days.
            conn.execute(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {table}")
    seconds["vacuum_analyze"] = time.monotonic() - step
    seconds["total"] = time.monotonic() - began
    states_total: dict[str, int] = {}
    for r in results:
        for state, n in r.states.items():
            states_total[state] = states_total.get(state, 0) + n
    return FillReport(
        tasks=sum(r.tasks for r in results),
        events=sum(r.events for r in results),
        states=states_total,
        seconds=seconds,
        rebuilt_indexes=bool(indexes),
    )


def _fill_workers_and_queues(
    info: dict[str, Any],
    results: list[JobResult],
    *,
    names: int,
    workers: int,
    now: dt.datetime,
    days: float,
) -> None:
    """Workers (the last one offline when there are several) with the tasks they
    processed, queues with a depth sample every QUEUE_SAMPLE_SECONDS over the last day."""
    cl = cluster(names=names, workers=workers)
    rng = random.Random(7)
    processed = dict.fromkeys(cl.workers, 0)
    for r in results:
        for host, n in r.processed.items():
            processed[host] += n
    registered = sorted(n.name for n in cl.names)
    with psycopg.connect(**info) as conn, conn.cursor() as cur:
        for i, host in enumerate(cl.workers):
            online = i < len(cl.workers) - 1 or len(cl.workers) == 1
            queues = [
                {"name": q, "exchange": {"name": q}, "routing_key": q}
                for q, hosts in cl.consumers.items()
                if host in hosts
            ]
            stats = {
                "pid": 3000 + 11 * i,
                "pool": {
                    "max-concurrency": 8,
                    "implementation": "celery.concurrency.prefork:TaskPool",
                },
                "total": {},
            }
            cur.execute(
                "INSERT INTO tasks_admin_workerrecord (hostname, is_online, first_seen_at, "
                "online_at, offline_at, last_heartbeat_at, heartbeat_freq, sw_ident, sw_ver, "
                "sw_sys, pid, loadavg, processed, active, pool, concurrency, queues, "
                "registered, stats, conf, reserved, inspected_at, updated_at) VALUES (%s, %s, "
                "%s, %s, %s, %s, 2.0, 'py-celery', '5.5.3', 'Linux', %s, %s, %s, %s, "
                "'prefork', 8, %s, %s, %s, '{}', '[]', %s, %s) "
                "ON CONFLICT (hostname) DO UPDATE SET processed = "
                "tasks_admin_workerrecord.processed + EXCLUDED.processed",
                [
                    host,
                    online,
                    now - dt.timedelta(days=days),
                    now - dt.timedelta(days=days),
                    None if online else now - dt.timedelta(minutes=20),
                    now - dt.timedelta(seconds=1) if online else now - dt.timedelta(minutes=20),
                    3000 + 11 * i,
                    orjson.dumps([round(rng.uniform(0.2, 1.8), 2) for _ in range(3)]).decode(),
                    processed[host],
                    rng.randint(0, 8) if online else 0,
                    orjson.dumps(queues).decode(),
                    orjson.dumps(registered).decode(),
                    orjson.dumps(stats).decode(),
                    now,
                    now,
                ],
            )
        samples = []
        start = now - dt.timedelta(days=min(days, 1.0))
        steps = int((now - start).total_seconds() // QUEUE_SAMPLE_SECONDS)
        for q, hosts in cl.consumers.items():
            depth = 0
            for k in range(steps + 1):
                at = start + dt.timedelta(seconds=k * QUEUE_SAMPLE_SECONDS)
                depth = max(0, depth + int(rng.gauss(0, 15)))
                samples.append(f"{q}\t{at.isoformat()}\t{depth}\t{len(hosts)}\n")
            cur.execute(
                "INSERT INTO tasks_admin_queuerecord (name, depth, consumers, sampled_at, "
                "first_seen_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "depth = EXCLUDED.depth, consumers = EXCLUDED.consumers, "
                "sampled_at = EXCLUDED.sampled_at",
                [q, depth, len(hosts), now, now - dt.timedelta(days=days)],
            )
        with cur.copy(
            "COPY tasks_admin_queuesample (queue, sampled_at, depth, consumers) FROM STDIN"
        ) as copy:
            copy.write("".join(samples))
