"""Daily partitions of the event log: created ahead of the writer, dropped by the pruner.

Dropping a whole day is a catalogue change, not a DELETE, so pruning old timelines costs
the collector nothing however much history there is.
"""

import datetime as dt
import logging
import re

from django.db import connection, transaction

log = logging.getLogger(__name__)

PARENT = "tasks_admin_taskevent"
# Any fixed number: the advisory lock that serialises partition DDL.
LOCK_KEY = 7_305_117_042
_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")


def partition_name(day: dt.date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def ensure_partitions(today: dt.date, days_ahead: int = 2) -> list[str]:
    """Create the partitions for ``today`` and the next ``days_ahead`` days if missing.

    Idempotent; safe to call from several processes (CREATE ... IF NOT EXISTS).
    """
    created = []
    # Serialise creators (several writer threads, the pruner): concurrent CREATE TABLE IF
    # NOT EXISTS of one name can still fail on the catalogue's unique index.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        for offset in range(days_ahead + 1):
            day = today + dt.timedelta(days=offset)
            name = partition_name(day)
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is not None:
                continue
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
            cursor.execute(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF {PARENT} '
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
            created.append(name)
    return created


def existing_partitions() -> dict[str, dt.date]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = {}
    for name in names:
        match = _NAME.match(name)
        if match:
            found[name] = dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    return found


def drop_partitions_before(day: dt.date) -> list[str]:
    """Drop every daily partition whose whole day lies before ``day``."""
    dropped = []
    with connection.cursor() as cursor:
        for name, partition_day in sorted(existing_partitions().items()):
            if partition_day < day:
                cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
                dropped.append(name)
    if dropped:
        log.info("dropped %d event log partitions before %s", len(dropped), day)
    return dropped
