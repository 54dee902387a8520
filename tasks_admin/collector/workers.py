"""Worker rows from worker-online / -heartbeat / -offline events.

Liveness uses the collector's receive time, not the worker's clock, so a worker with a
skewed clock is neither "dead" nor "alive forever". A heartbeat answering the ``heartbeat``
control command carries no load/processed/active: those keep their last values.
"""

import contextlib
import datetime as dt
from typing import Any

import orjson

from tasks_admin.collector.merge import utc

COLUMNS = (
    "hostname",
    "is_online",
    "first_seen_at",
    "online_at",
    "offline_at",
    "last_heartbeat_at",
    "heartbeat_freq",
    "sw_ident",
    "sw_ver",
    "sw_sys",
    "pid",
    "loadavg",
    "processed",
    "active",
    "updated_at",
)
_SELECT = ", ".join(COLUMNS)


def _fresh(hostname: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "hostname": hostname,
        "is_online": False,
        "first_seen_at": now,
        "online_at": None,
        "offline_at": None,
        "last_heartbeat_at": None,
        "heartbeat_freq": 2.0,
        "sw_ident": "",
        "sw_ver": "",
        "sw_sys": "",
        "pid": None,
        "loadavg": [],
        "processed": 0,
        "active": 0,
        "updated_at": now,
    }


def apply_event(row: dict[str, Any], event: dict[str, Any]) -> None:
    type_ = event["type"]
    seen_at = utc(event.get("local_received") or event["timestamp"])
    if type_ == "worker-offline":
        row["is_online"] = False
        row["offline_at"] = utc(event["timestamp"])
        return
    if type_ not in ("worker-online", "worker-heartbeat"):
        return
    if type_ == "worker-online" or not row["is_online"]:
        # offline_at stays: it is when the worker last went away, and the reconcile poller
        # needs it to mark tasks lost even when a restarted worker is already back.
        row["online_at"] = utc(event["timestamp"])
    row["is_online"] = True
    row["last_heartbeat_at"] = seen_at
    with contextlib.suppress(TypeError, ValueError):
        row["heartbeat_freq"] = float(event.get("freq") or row["heartbeat_freq"])
    for column in ("sw_ident", "sw_ver", "sw_sys"):
        if event.get(column):
            row[column] = str(event[column])[:64]
    if isinstance(event.get("pid"), int):
        row["pid"] = event["pid"]
    if isinstance(event.get("loadavg"), list):
        row["loadavg"] = event["loadavg"][:3]
    for column in ("processed", "active"):
        if isinstance(event.get(column), int):
            row[column] = event[column]


def write(cursor: Any, events: list[dict[str, Any]], now: dt.datetime) -> set[str]:
    """Fold worker events into their rows; returns hostnames seen for the first time."""
    hostnames = sorted({e["hostname"] for e in events if e["hostname"]})
    if not hostnames:
        return set()
    cursor.execute(
        f"SELECT {_SELECT} FROM tasks_admin_workerrecord WHERE hostname = ANY(%s) "
        "ORDER BY hostname FOR UPDATE",
        [hostnames],
    )
    rows = {r[0]: dict(zip(COLUMNS, r, strict=True)) for r in cursor.fetchall()}
    new = set(hostnames) - set(rows)
    for hostname in new:
        rows[hostname] = _fresh(hostname, now)
    ordered = sorted(events, key=lambda e: (e.get("local_received") or 0, e["timestamp"]))
    for event in ordered:
        if event["hostname"]:
            apply_event(rows[event["hostname"]], event)
    # A JSON column needs JSON text; psycopg would send a Python list as an array.
    values = []
    for row in rows.values():
        row["updated_at"] = now
        values.append(
            [orjson.dumps(row[c]).decode() if c == "loadavg" else row[c] for c in COLUMNS]
        )
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in ("hostname", "first_seen_at")
    )
    placeholders = ", ".join("%s::jsonb" if c == "loadavg" else "%s" for c in COLUMNS)
    cursor.executemany(
        f"INSERT INTO tasks_admin_workerrecord "
        f"({_SELECT}, pool, queues, registered, stats, conf, reserved) "
        f"VALUES ({placeholders}, '', '[]', '[]', '{{}}', '{{}}', '[]') "
        f"ON CONFLICT (hostname) DO UPDATE SET {updates}",
        values,
    )
    return new
