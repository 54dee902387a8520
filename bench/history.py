"""Fill tasks_admin_taskrecord with N finished tasks, fast (COPY), as history to ingest on top of.

The rows look like the stream's: the same 12 names and 4 workers, 5 % failures, spread
over the last 30 days, so every index of the table carries its real weight.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid

import psycopg

from bench.generator import TASK_NAMES, WORKERS

COLUMNS = [
    *("task_id", "name", "state", "first_seen_at", "last_event_at", "received_at"),
    *("started_at", "succeeded_at", "failed_at", "runtime", "retries", "worker", "queue"),
    *("exchange", "routing_key", "root_id", "parent_id", "group_id", "args", "kwargs"),
    *("result", "exception", "exception_type", "traceback", "revoke_signal", "reconciled"),
    *("replay_of", "event_keys", "last_event_ts", "last_event_clock", "updated_at"),
]

_TRACEBACK = "Traceback (most recent call last):\\n  ...\\nhttpx.ConnectTimeout: upstream timed out"


def _rows(count: int, rng: random.Random) -> str:
    now = time.time()
    lines = []
    for _ in range(count):
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        received = now - rng.random() * 30 * 86400
        started = received + rng.random() * 0.05
        runtime = rng.random() * 0.5
        done = started + runtime
        at = dt.datetime.fromtimestamp
        stamp = [at(x, dt.UTC).isoformat() for x in (received, started, done)]
        failed = rng.random() < 0.05
        key = rng.getrandbits(62)
        lines.append(
            "\t".join(
                [
                    task_id,
                    rng.choice(TASK_NAMES),
                    "FAILURE" if failed else "SUCCESS",
                    stamp[0],
                    stamp[2],
                    stamp[0],
                    stamp[1],
                    "\\N" if failed else stamp[2],
                    stamp[2] if failed else "\\N",
                    "\\N" if failed else f"{runtime:.6f}",
                    "0",
                    rng.choice(WORKERS),
                    "celery",
                    "celery",
                    "celery",
                    task_id,
                    "",
                    "",
                    f"({rng.randrange(10**6)}, 'user{rng.randrange(100_000)}@example.com')",
                    "{'dry_run': False}",
                    "" if failed else "{'ok': True}",
                    "ConnectTimeout('upstream timed out')" if failed else "",
                    "ConnectTimeout" if failed else "",
                    _TRACEBACK if failed else "",
                    "",
                    "f",
                    "",
                    f"{{{key},{key + 1},{key + 2}}}",
                    f"{done:.6f}",
                    "3",
                    stamp[2],
                ]
            )
        )
    return "\n".join(lines) + "\n"


def fill(conn: psycopg.Connection, *, rows: int, seed: int = 11, chunk: int = 20_000) -> float:
    """Append ``rows`` rows in one COPY, then ANALYZE; returns the seconds it took."""
    rng = random.Random(seed)
    start = time.monotonic()
    statement = f"COPY tasks_admin_taskrecord ({', '.join(COLUMNS)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for offset in range(0, rows, chunk):
            copy.write(_rows(min(chunk, rows - offset), rng))
    conn.execute("ANALYZE tasks_admin_taskrecord")
    return time.monotonic() - start
