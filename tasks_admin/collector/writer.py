"""Batches of events into PostgreSQL: the event log, task rows, rollups and workers.

One batch is one transaction: the new events, a merge of the affected task rows
(read ``FOR UPDATE``, folded in Python by ``merge``, written back as one JSON record
set), the rollup deltas those rows imply, and the workers' rows. Because rows
remember the keys of the events folded into them, writing the same batch twice changes
nothing, which is what lets the receiver re-deliver after a crash.
"""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from tasks_admin.collector import merge, partitions, rollups, workers
from tasks_admin.collector.normalize import InvalidEvent, normalize

log = logging.getLogger(__name__)

TASK_TABLE = "tasks_admin_taskrecord"
EVENT_TABLE = "tasks_admin_taskevent"
COLUMN_LIST = ", ".join(merge.COLUMNS)
LOG_COLUMNS = "recorded_at, task_id, type, event_at, hostname, clock, event_key, fields"


class DatabaseUnavailable(Exception):
    """The database cannot be reached: keep the batch and try again later."""


@dataclass
class WriterCounters:
    events_in: int = 0
    invalid: int = 0
    duplicates: int = 0
    ignored_types: int = 0
    poison: int = 0
    task_events_written: int = 0
    tasks_written: int = 0
    refolds: int = 0
    worker_events: int = 0
    batches: int = 0
    unknown_types: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "unknown_types": dict(self.unknown_types)}


class BatchWriter:
    def __init__(
        self,
        *,
        max_chars: int,
        on_new_workers: Callable[[set[str]], None] | None = None,
        on_commit: Callable[[set[str], set[str]], None] | None = None,
    ) -> None:
        self.max_chars = max_chars
        self.on_new_workers = on_new_workers
        # Told the task ids and worker hostnames of each committed batch (live updates).
        self.on_commit = on_commit
        self.counters = WriterCounters()
        self._partitions_ready_for: dt.date | None = None

    def write(self, events: list[dict[str, Any]]) -> None:
        """Store a batch of decoded events; never raises for bad data, only for outages."""
        self.write_prepared(self.prepare(events))

    def prepare(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Normalise events (no database work: the pipeline runs this in its own thread)."""
        self.counters.events_in += len(events)
        clean = []
        for event in events:
            try:
                clean.append(normalize(event, max_chars=self.max_chars))
            except InvalidEvent as exc:
                self.counters.invalid += 1
                log.warning("skipped malformed event: %s", exc)
        return clean

    def write_prepared(self, events: list[dict[str, Any]]) -> None:
        """Store normalised events in one transaction.

        A batch the database refuses (a value it cannot store) is split in halves until the
        offending event is alone; that one is logged, counted and skipped. Raises
        DatabaseUnavailable when the database cannot be reached, with nothing written.
        """
        self._write_isolating(events)

    def _write_isolating(self, events: list[dict[str, Any]]) -> None:
        try:
            self._write_once(events)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        except DatabaseError as exc:
            if len(events) <= 1:
                self.counters.poison += len(events)
                for event in events:
                    log.error(
                        "database refused event %s of task %s, skipped: %s",
                        event.get("type"),
                        event.get("uuid"),
                        exc,
                    )
                return
            middle = len(events) // 2
            self._write_isolating(events[:middle])
            self._write_isolating(events[middle:])

    def _write_once(self, events: list[dict[str, Any]]) -> None:
        by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
        worker_events = []
        for event in events:
            type_ = event["type"]
            if type_.startswith("task-"):
                by_task[event["uuid"]].append(event)
                if type_ not in merge.EVENT_STATE and type_ != "task-cancelled":
                    self._count_unknown(type_)
            elif type_.startswith("worker-"):
                worker_events.append(event)
            else:
                self.counters.ignored_types += 1
                self._count_unknown(type_)
        now = timezone.now()
        self._ensure_partitions(now.date())
        new_hosts: set[str] = set()
        with transaction.atomic(), connection.cursor() as cursor:
            if by_task:
                self._write_tasks(cursor, by_task, now)
            if worker_events:
                new_hosts = workers.write(cursor, worker_events, now)
                self.counters.worker_events += len(worker_events)
        self.counters.batches += 1
        if self.on_commit:
            self.on_commit(set(by_task), {e["hostname"] for e in worker_events})
        if new_hosts and self.on_new_workers:
            self.on_new_workers(new_hosts)

    def _count_unknown(self, type_: str) -> None:
        if len(self.counters.unknown_types) < 100 or type_ in self.counters.unknown_types:
            self.counters.unknown_types[type_] = self.counters.unknown_types.get(type_, 0) + 1

    def _ensure_partitions(self, today: dt.date) -> None:
        if self._partitions_ready_for != today:
            partitions.ensure_partitions(today)
            self._partitions_ready_for = today

    def _write_tasks(
        self, cursor: Any, by_task: dict[str, list[dict[str, Any]]], now: dt.datetime
    ) -> None:
        existing = self._lock_rows(cursor, sorted(by_task))
        fresh_events: list[dict[str, Any]] = []
        changed: list[tuple[dict[str, Any] | None, dict[str, Any]]] = []
        late: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        for task_id, events in by_task.items():
            row = existing.get(task_id)
            seen = set(row["event_keys"]) if row else set()
            fresh = []
            for event in events:
                if event["_key"] in seen:
                    self.counters.duplicates += 1
                    continue
                seen.add(event["_key"])
                fresh.append(event)
            if not fresh:
                continue
            fresh_events.extend(fresh)
            if row is None:
                changed.append((None, merge.fold(merge.new_row(task_id), fresh)))
            elif merge.needs_refold(row, fresh):
                late[task_id] = (row, fresh)
            else:
                old = {**row, "event_keys": list(row["event_keys"])}
                changed.append((old, merge.fold(row, fresh)))
        if late:
            changed.extend(self._refold(cursor, late))
        if not changed:
            return
        for _, row in changed:
            row["updated_at"] = now
        self._copy_events(cursor, fresh_events, now)
        self._upsert_rows(cursor, [row for _, row in changed])
        rollups.apply(cursor, rollups.delta(changed))
        self.counters.task_events_written += len(fresh_events)
        self.counters.tasks_written += len(changed)

    def _lock_rows(self, cursor: Any, task_ids: list[str]) -> dict[str, dict[str, Any]]:
        cursor.execute(
            f"SELECT {COLUMN_LIST} FROM {TASK_TABLE} WHERE task_id = ANY(%s) "
            "ORDER BY task_id FOR UPDATE",
            [task_ids],
        )
        return {row[0]: dict(zip(merge.COLUMNS, row, strict=True)) for row in cursor.fetchall()}

    def _refold(
        self, cursor: Any, late: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]
    ) -> Iterable[tuple[dict[str, Any], dict[str, Any]]]:
        """Rebuild rows from their whole event log when an event arrived out of order."""
        logged: dict[str, list[dict[str, Any]]] = defaultdict(list)
        cursor.execute(
            "SELECT task_id, type, event_at, hostname, clock, event_key, fields "
            f"FROM {EVENT_TABLE} WHERE task_id = ANY(%s)",
            [list(late)],
        )
        for task_id, type_, event_at, hostname, clock, key, fields in cursor.fetchall():
            event = dict(fields) if isinstance(fields, dict) else orjson.loads(fields)
            event.update(
                type=type_,
                uuid=task_id,
                timestamp=event_at.timestamp(),
                hostname=hostname,
                clock=clock,
                _key=key,
            )
            logged[task_id].append(event)
        self.counters.refolds += len(late)
        for task_id, (old, fresh) in late.items():
            row = merge.new_row(task_id)
            # Not derived from events: set by the console's own actions.
            row["replay_of"] = old["replay_of"]
            yield old, merge.fold(row, [*logged[task_id], *fresh])

    def _copy_events(self, cursor: Any, events: list[dict[str, Any]], now: dt.datetime) -> None:
        # One JSON document per batch, parsed by PostgreSQL: orjson builds it in C, and the
        # server parses it on the other core, where per-row COPY adaptation in Python would
        # spend this process's only core.
        envelope = merge.ENVELOPE
        records = [
            {
                "task_id": event["uuid"],
                "type": event["type"],
                "event_at": merge.utc(event["timestamp"]),
                "hostname": event["hostname"],
                "clock": event["clock"],
                "event_key": event["_key"],
                "fields": {k: v for k, v in event.items() if k not in envelope and k != "_key"},
            }
            for event in events
        ]
        cursor.execute(
            f"INSERT INTO {EVENT_TABLE} ({LOG_COLUMNS}) "
            "SELECT %s, r.task_id, r.type, r.event_at, r.hostname, r.clock, r.event_key, r.fields "
            f"FROM json_populate_recordset(NULL::{EVENT_TABLE}, %s::json) AS r",
            [now, orjson.dumps(records).decode()],
        )

    def _upsert_rows(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in merge.COLUMNS if c != "task_id")
        cursor.execute(
            f"INSERT INTO {TASK_TABLE} ({COLUMN_LIST}) SELECT {COLUMN_LIST} "
            f"FROM json_populate_recordset(NULL::{TASK_TABLE}, %s::json) "
            f"ON CONFLICT (task_id) DO UPDATE SET {updates}",
            [orjson.dumps(rows).decode()],
        )
