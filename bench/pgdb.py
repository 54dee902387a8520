"""The benchmark's own PostgreSQL database: create, reset, count, lag."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

TABLES = [
    "tasks_admin_taskrecord",
    "tasks_admin_taskevent",
    "tasks_admin_taskminuterollup",
    "tasks_admin_workerrecord",
]


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in ("console", "postgres"):
        raise SystemExit(f"refusing to benchmark into database {name!r}; use a dedicated one")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with connect(admin) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def truncate(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, TABLES))))


def event_count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM tasks_admin_taskevent").fetchone()
    return int(row[0]) if row else 0


def last_recorded_at(conn: psycopg.Connection) -> float | None:
    """The writer's clock just before its last commit: when the last event landed."""
    row = conn.execute(
        "SELECT extract(epoch FROM max(recorded_at))::float8 FROM tasks_admin_taskevent"
    ).fetchone()
    return row[0] if row else None


def lag_percentiles(conn: psycopg.Connection) -> dict:
    row = conn.execute(
        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM recorded_at - event_at)) FROM tasks_admin_taskevent"
    ).fetchone()
    if not row or row[0] is None:
        return {"lag_p50": None, "lag_p99": None}
    p50, p99 = row[0]
    return {"lag_p50": round(float(p50), 4), "lag_p99": round(float(p99), 4)}


def backend_pids(conn: psycopg.Connection) -> list[int]:
    """The other sessions on this database: the consumer's (the poller's own excluded)."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    ).fetchall()
    return [row[0] for row in rows]


def collector_counters(conn: psycopg.Connection, node: str) -> dict:
    row = conn.execute(
        "SELECT counters FROM tasks_admin_collectorstatus WHERE node = %s", [node]
    ).fetchone()
    return row[0] if row and isinstance(row[0], dict) else {}
