"""Websocket consumers: each page's live connection (htmx ws extension, ``ws-connect``).

A consumer checks the session, joins its page's channel group, registers what it watches
(so the collector renders it), and sends a snapshot of the page's live parts at once: a
reconnecting page shows the present, not what it missed while away. Then it relays the
collector's messages (``live.push``: fragments swapped by id). The task list filters
``live.tasks`` messages per connection: rows it shows, and how many new tasks match.

Anonymous connections are accepted and closed at once with code 4401, which the page's
script (static/console/live.js) answers by reloading, i.e. by going to the sign-in page;
htmx does not reconnect after such a close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from tasks_admin import broadcast, fragments
from tasks_admin.selectors import failures as failure_selectors
from tasks_admin.selectors import task_facts
from tasks_admin.selectors import tasks as task_selectors

log = logging.getLogger(__name__)

CLOSE_SIGNED_OUT = 4401
CLOSE_BAD_REQUEST = 4400

_redis: aioredis.Redis | None = None
_redis_loop: asyncio.AbstractEventLoop | None = None


def _watch_redis() -> aioredis.Redis:
    """One client per event loop (uvicorn runs one; tests may run several)."""
    global _redis, _redis_loop
    loop = asyncio.get_running_loop()
    if _redis is None or _redis_loop is not loop:
        _redis = aioredis.Redis.from_url(settings.REDIS_URL)
        _redis_loop = loop
    return _redis


class LiveConsumer(AsyncWebsocketConsumer):
    """A page's live connection: ``group``/``subject`` say what it watches; ``snapshot``
    renders its live parts now."""

    group: str = ""
    subject: str = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        self.query = QueryDict(self.scope.get("query_string", b"").decode("utf-8", "replace"))
        try:
            await self.setup()
        except ValueError as exc:
            log.info("live connection refused: %s", exc)
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.member = broadcast.watch_member(self.group, self.channel_name, self.subject)
        await self._watch()
        self.refresher = asyncio.create_task(self._keep_watching())
        html = await database_sync_to_async(self.snapshot)()
        if html:
            await self.send(text_data=html)

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "member"):
            return
        self.refresher.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)
        try:
            await _watch_redis().zrem(broadcast.watch_key(), self.member)
        except aioredis.RedisError as exc:  # the entry expires by itself
            log.debug("could not unregister %s: %s", self.member, exc)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Pages only listen; anything they send is ignored."""

    async def live_push(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["html"])

    async def setup(self) -> None:
        """Read what the connection is about from its query; ValueError if it is bad."""

    def snapshot(self) -> str:
        raise NotImplementedError

    async def _watch(self) -> None:
        try:
            expires = time.time() + broadcast.WATCH_TTL_SECONDS
            await _watch_redis().zadd(broadcast.watch_key(), {self.member: expires})
        except aioredis.RedisError as exc:
            log.warning("live updates: could not register %s: %s", self.group, exc)

    async def _keep_watching(self) -> None:
        while True:
            await asyncio.sleep(broadcast.WATCH_REFRESH_SECONDS)
            await self._watch()


class DashboardConsumer(LiveConsumer):
    group = broadcast.DASHBOARD

    def snapshot(self) -> str:
        return fragments.dashboard(timezone.now(), with_runtimes=True)


class WorkersConsumer(LiveConsumer):
    group = broadcast.WORKERS

    def snapshot(self) -> str:
        return fragments.workers(timezone.now())


class QueuesConsumer(LiveConsumer):
    group = broadcast.QUEUES

    def snapshot(self) -> str:
        return fragments.queues(timezone.now())


class FailuresConsumer(LiveConsumer):
    async def setup(self) -> None:
        self.subject = failure_selectors.window_or_default(self.query.get("window"))
        self.group = broadcast.failures_group(self.subject)

    def snapshot(self) -> str:
        return fragments.failures(self.subject, timezone.now())


class WorkerConsumer(LiveConsumer):
    async def setup(self) -> None:
        self.subject = self.query.get("hostname", "")
        if not self.subject:
            raise ValueError("no hostname")
        self.group = broadcast.worker_group(self.subject)

    def snapshot(self) -> str:
        return fragments.worker(self.subject, timezone.now())


class TaskConsumer(LiveConsumer):
    async def setup(self) -> None:
        self.subject = self.query.get("task_id", "")
        if not self.subject or "\x00" in self.subject:
            raise ValueError("no task id")
        self.group = broadcast.task_group(self.subject)

    def snapshot(self) -> str:
        return fragments.task(self.subject)


def row_html(facts: dict[str, Any]) -> str:
    """A changed task's list row, rendered at most once per web process and tick: every
    consumer of the process gets the same message dict, so the first keeps the HTML in it."""
    if "row" not in facts:
        facts["row"] = fragments.task_row(task_facts.row_from_facts(facts))
    return str(facts["row"])


class TaskListConsumer(LiveConsumer):
    """The task list: the query string is the page's own (filters, cursor, ``top``: the
    newest task the page was rendered with). Rows it shows are swapped in place; tasks
    newer than ``top`` that match its filter are counted into "N new tasks"."""

    group = broadcast.TASKS

    async def setup(self) -> None:
        from tasks_admin.views.tasks import TaskListForm

        now = timezone.now()
        form = TaskListForm(self.query, now=now)
        if not form.is_valid():
            raise ValueError("; ".join(form.error_messages()))
        self.filters = form.filters()
        self.after = form.cleaned_data["cursor"]
        self.top: task_selectors.Cursor | None = form.cleaned_data["newer_than"]
        self.now = now
        self.shown: set[str] = set()
        self.new_ids: set[str] = set()
        self.mode = "list"
        filters = {k: v for k, v in self.query.lists() if k not in ("cursor", "newer_than")}
        base = reverse("tasks_admin:tasks")
        query = urlencode([(k, v) for k, values in filters.items() for v in values if v])
        self.reload_url = f"{base}?{query}" if query else base

    def snapshot(self) -> str:
        page = task_selectors.task_page(self.filters, after=self.after, now=self.now)
        self.mode = page.mode
        self.filters = page.filters
        self.shown = {row.task_id for row in page.rows}
        html = "".join(fragments.task_row(row) for row in page.rows)
        if self.top is not None:
            self.new_ids = set(task_selectors.newer_ids(self.filters, self.top, now=timezone.now()))
            html += self._tasks_new()
        return html

    def _tasks_new(self) -> str:
        assert self.top is not None
        newer = f"{self.reload_url}{'&' if '?' in self.reload_url else '?'}"
        newer += urlencode({"newer_than": self.top.encode()})
        return fragments.tasks_new(
            count=len(self.new_ids), reload_url=self.reload_url, newer_url=newer
        )

    async def live_tasks(self, event: dict[str, Any]) -> None:
        rows = []
        counted = len(self.new_ids)
        cap = task_selectors.NEWER_CAP
        for facts in event["tasks"]:
            task_id = facts["task_id"]
            if task_id in self.shown:
                rows.append(row_html(facts))
            elif (
                self.top is not None
                and len(self.new_ids) <= cap
                and task_id not in self.new_ids
                and task_facts.is_newer(facts, self.top)
                and task_facts.matches(self.filters, self.mode, facts)
            ):
                self.new_ids.add(task_id)
        if len(self.new_ids) != counted:
            rows.append(self._tasks_new())
        if rows:
            await self.send(text_data="".join(rows) + event.get("tick", ""))
