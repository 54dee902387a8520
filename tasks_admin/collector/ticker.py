"""Live updates: once per tick, render what changed for the pages someone watches, and
send one message per channel group (tasks_admin.broadcast knows the groups).

The writers report what each commit touched (``ChangeTracker.add``, called after the
transaction commits, so a pushed fragment never shows an uncommitted row). The ticker
thread takes those sets every ``interval`` seconds: a task committed just after a tick is
on the page at most one interval plus the render later.

Pages without a change source of their own (workers going offline, queue depths, the
runtime table) are rendered on every tick while watched and sent only when their HTML
differs from what was last sent; the costly parts only every ``slow_interval``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from django.db import DatabaseError, connection
from django.utils import timezone

from tasks_admin import broadcast, fragments
from tasks_admin.models import TaskRecord
from tasks_admin.selectors import task_facts
from tasks_admin.selectors import tasks as task_selectors

log = logging.getLogger(__name__)

ROW_COLUMNS = tuple(dict.fromkeys((*task_selectors.LIST_COLUMNS, *task_selectors.TEXT_COLUMNS)))


class ChangeTracker:
    """Task ids and worker hostnames committed since the last tick (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: set[str] = set()
        self._workers: set[str] = set()
        self._committed_at: float | None = None

    def add(self, task_ids: set[str], hostnames: set[str]) -> None:
        with self._lock:
            self._tasks |= task_ids
            self._workers |= hostnames
            self._committed_at = time.time()

    def take(self) -> tuple[set[str], set[str], float | None]:
        """What changed since the last call, and when the newest of it was committed."""
        with self._lock:
            tasks, workers, committed_at = self._tasks, self._workers, self._committed_at
            self._tasks, self._workers, self._committed_at = set(), set(), None
        return tasks, workers, committed_at


@dataclass
class Watched:
    """The groups some page watches now, with the key each detail group is about."""

    groups: set[str] = field(default_factory=set)
    tasks: dict[str, str] = field(default_factory=dict)  # group -> task id
    workers: dict[str, str] = field(default_factory=dict)  # group -> hostname
    failures: dict[str, str] = field(default_factory=dict)  # group -> window


class Ticker:
    def __init__(
        self,
        *,
        tracker: ChangeTracker,
        sender: broadcast.Broadcaster,
        redis_url: str,
        interval: float = 0.5,
        slow_interval: float = 10.0,
    ) -> None:
        self.tracker = tracker
        self.sender = sender
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.interval = interval
        self.slow_interval = slow_interval
        self._last_html: dict[str, str] = {}
        self._next_slow = 0.0
        self.sequence = 0
        self.counters = {"ticks": 0, "messages": 0, "errors": 0, "last_tick_ms": 0.0}

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.interval):
                started = time.perf_counter()
                try:
                    self.counters["messages"] += self.tick()
                except (DatabaseError, redis.RedisError) as exc:
                    # Live updates are best effort: the next tick renders from the database.
                    self.counters["errors"] += 1
                    log.warning("live update tick failed: %s", exc)
                    connection.close()
                except Exception:
                    # A bug in one tick (a template, a selector) must not end live updates
                    # for good, nor the collector: say so loudly and go on.
                    self.counters["errors"] += 1
                    log.exception("live update tick failed")
                self.counters["ticks"] += 1
                self.counters["last_tick_ms"] = round((time.perf_counter() - started) * 1000, 1)
        finally:
            connection.close()

    def tick(self) -> int:
        """Render and send this tick's messages; return how many were sent."""
        changed_tasks, changed_workers, committed_at = self.tracker.take()
        watched = self.watched()
        if not watched.groups:
            self._last_html.clear()
            return 0
        now = timezone.now()
        self.sequence += 1
        tick = broadcast.tick_marker(self.sequence, committed_at)
        slow = time.monotonic() >= self._next_slow
        if slow:
            self._next_slow = time.monotonic() + self.slow_interval
        messages: list[tuple[str, dict[str, Any]]] = []
        if broadcast.TASKS in watched.groups and changed_tasks:
            messages.append((broadcast.TASKS, self._task_changes(changed_tasks, tick)))
        for group, task_id in watched.tasks.items():
            if slow or task_id in changed_tasks:
                self._if_changed(messages, group, fragments.task(task_id), tick)
        for group, hostname in watched.workers.items():
            if slow or hostname in changed_workers:
                self._if_changed(messages, group, fragments.worker(hostname, now), tick)
        if broadcast.DASHBOARD in watched.groups:
            parts = fragments.dashboard_parts(now, with_runtimes=slow)
            # "As of" differs every time: sent along with a change, never a change itself.
            as_of = parts.pop("as_of")
            key = broadcast.DASHBOARD
            changed = [html for name, html in parts.items() if self._changed(f"{key}:{name}", html)]
            if changed:
                messages.append((key, broadcast.push(as_of + "".join(changed) + tick)))
        if broadcast.WORKERS in watched.groups:
            self._if_changed(messages, broadcast.WORKERS, fragments.workers(now), tick)
        if broadcast.QUEUES in watched.groups:
            self._if_changed(messages, broadcast.QUEUES, fragments.queues(now), tick)
        if slow:
            for group, window in watched.failures.items():
                self._if_changed(messages, group, fragments.failures(window, now), tick)
        # Forget what nobody watches any more (a page reopened later gets a snapshot).
        for key in [k for k in self._last_html if k.split(":")[0] not in watched.groups]:
            del self._last_html[key]
        return self.sender.send_many(messages) if messages else 0

    def _if_changed(
        self, messages: list[tuple[str, dict[str, Any]]], group: str, html: str, tick: str
    ) -> None:
        if self._changed(group, html):
            messages.append((group, broadcast.push(html + tick)))

    def _changed(self, key: str, html: str) -> bool:
        """Whether ``html`` differs from what was last sent under ``key`` (and remember it)."""
        digest = hashlib.blake2b(html.encode(), digest_size=16).hexdigest()
        if not html or self._last_html.get(key) == digest:
            return False
        self._last_html[key] = digest
        return True

    def _task_changes(self, task_ids: set[str], tick: str) -> dict[str, Any]:
        """Facts and row fields of every changed task. Rows are rendered by the web process,
        once per process and only for tasks some open list shows (consumers.row_html):
        most changed tasks are new, shown nowhere, only counted."""
        rows = TaskRecord.objects.filter(task_id__in=list(task_ids)).only(*ROW_COLUMNS)
        return broadcast.tasks_changed([task_facts.task_facts(row) for row in rows], tick)

    def watched(self) -> Watched:
        """The groups some connected page watches (two Redis commands, whatever its size)."""
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(broadcast.watch_key(), "-inf", time.time())
        pipe.zrange(broadcast.watch_key(), 0, -1)
        members = pipe.execute()[1]
        watched = Watched()
        for member in members:
            group, subject = broadcast.parse_watch(member)
            watched.groups.add(group)
            if group.startswith("live.task."):
                watched.tasks[group] = subject
            elif group.startswith("live.worker."):
                watched.workers[group] = subject
            elif group.startswith("live.failures."):
                watched.failures[group] = subject
        return watched
