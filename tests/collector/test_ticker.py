import asyncio
import time
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from tasks_admin import broadcast, fragments
from tasks_admin.collector.ticker import ChangeTracker, Ticker
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.consumers import row_html
from tasks_admin.models import TaskRecord
from tests import factories
from tests.pages.markup import ESCAPED, HOSTILE

pytestmark = pytest.mark.django_db


class Recorder:
    """Stands in for the Broadcaster: what the ticker decided to send, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> int:
        self.sent.extend(messages)
        return len(messages)

    def groups(self) -> list[str]:
        return [group for group, _ in self.sent]


@pytest.fixture
def watching():
    # Pages left open by earlier tests (a web process stopped mid-connection) expire in a
    # minute; start from nobody watching.
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(broadcast.watch_key())

    def watch(group: str, subject: str = "", ttl: float = 60) -> None:
        member = broadcast.watch_member(group, "test-channel", subject)
        client.zadd(broadcast.watch_key(), {member: time.time() + ttl})

    yield watch
    client.delete(broadcast.watch_key())


@pytest.fixture
def ticker(watching):
    tracker = ChangeTracker()
    writer = BatchWriter(max_chars=65536, on_commit=tracker.add)
    ticker = Ticker(tracker=tracker, sender=Recorder(), redis_url=settings.REDIS_URL)  # type: ignore[arg-type]
    ticker.writer = writer  # type: ignore[attr-defined]
    return ticker


def test_nothing_is_rendered_or_sent_while_nobody_watches(ticker) -> None:
    ticker.writer.write(factories.succeeded_task())
    assert ticker.tick() == 0 and ticker.sender.sent == []


def test_changed_tasks_go_to_the_task_lists_as_facts_that_render_escaped_rows(
    ticker, watching
) -> None:
    watching(broadcast.TASKS)
    task_id = factories.new_task_id()
    ticker.writer.write(factories.succeeded_task(task_id, name=HOSTILE))
    assert ticker.tick() == 1
    ((group, message),) = ticker.sender.sent
    assert group == broadcast.TASKS and message["type"] == broadcast.TASKS_CHANGED
    (facts,) = message["tasks"]
    assert (facts["task_id"], facts["state"], facts["name"]) == (task_id, "SUCCESS", HOSTILE)
    # The web process renders the row from the facts (once per process, for shown tasks).
    row = row_html(facts)
    assert f'id="{broadcast.dom_id("task", task_id)}"' in row and "SUCCESS" in row
    assert ESCAPED in row and HOSTILE not in row
    assert row == fragments.task_row(TaskRecord.objects.get(pk=task_id))
    # Nothing new committed: nothing for the lists.
    assert ticker.tick() == 0


def test_overview_pages_are_sent_once_and_again_only_when_they_change(ticker, watching) -> None:
    watching(broadcast.DASHBOARD)
    watching(broadcast.WORKERS)
    ticker.tick()
    assert sorted(ticker.sender.groups()) == [broadcast.DASHBOARD, broadcast.WORKERS]
    html = dict(ticker.sender.sent)[broadcast.WORKERS]["html"]
    assert html.startswith('<div id="workers-table">')
    ticker.sender.sent.clear()
    ticker.tick()
    assert ticker.sender.sent == []
    ticker.writer.write(
        [factories.event("worker-online", "", at=time.time(), hostname=f"celery@{HOSTILE}")]
    )
    ticker.tick()
    assert sorted(ticker.sender.groups()) == [broadcast.DASHBOARD, broadcast.WORKERS]
    for _, message in ticker.sender.sent:
        assert ESCAPED in message["html"] and HOSTILE not in message["html"]


def test_a_watched_task_page_is_rendered_when_its_task_changes(ticker, watching) -> None:
    task_id, other = factories.new_task_id(), factories.new_task_id()
    events = factories.succeeded_task(task_id)
    ticker.writer.write(events[:2])  # sent, received
    watching(broadcast.task_group(task_id), task_id)
    ticker.tick()  # the first (slow) beat renders every watched page
    ticker.sender.sent.clear()
    ticker.writer.write(factories.succeeded_task(other))
    ticker.tick()
    assert ticker.sender.sent == []
    ticker.writer.write(events[2:])
    ticker.tick()
    ((group, message),) = ticker.sender.sent
    assert group == broadcast.task_group(task_id)
    html = message["html"]
    assert html.startswith('<div id="task-head"') and '<div id="task-body">' in html
    assert 'data-state="SUCCESS"' in html and "<form" not in html


def test_expired_watchers_stop_the_rendering(ticker, watching) -> None:
    watching(broadcast.QUEUES, ttl=-1)
    assert ticker.tick() == 0


def test_broadcaster_delivers_to_group_members_through_redis() -> None:
    sender = broadcast.Broadcaster()
    message = broadcast.push("<p id='x'>1</p>")

    async def body() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(broadcast.QUEUES, channel)
        await asyncio.sleep(0.1)  # the subscription reaches Redis
        sent = await asyncio.to_thread(sender.send_many, [(broadcast.QUEUES, message)])
        assert sent == 1
        return await asyncio.wait_for(layer.receive(channel), 5)

    try:
        assert async_to_sync(body)() == message
    finally:
        sender.close()
