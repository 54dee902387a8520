"""Websocket tests against the real ASGI application (session auth, origin check, routing),
the real Redis channel layer and the test database."""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from console.asgi import application
from tasks_admin import broadcast

ORIGIN = (b"origin", b"http://127.0.0.1")


def run(coro_fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run an async test body to completion (consumers talk to the database in threads)."""
    return async_to_sync(coro_fn)()


def communicator(path: str, cookie: str | None, origin: bool = True) -> WebsocketCommunicator:
    headers = [ORIGIN] if origin else [(b"origin", b"http://evil.example")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(path: str, cookie: str) -> tuple[WebsocketCommunicator, str]:
    """A signed-in connection and the snapshot it was sent."""
    ws = communicator(path, cookie)
    ok, _ = await ws.connect(timeout=10)
    assert ok
    return ws, await ws.receive_from(timeout=10)


async def group_send(group: str, message: dict[str, Any]) -> None:
    await get_channel_layer().group_send(group, message)
    # The pub/sub layer delivers through Redis: let it arrive.
    await asyncio.sleep(0.05)


@pytest.fixture
def session_cookie(client, django_user_model) -> str:
    user = django_user_model.objects.create_user("watcher", password="not-used-1")
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.fixture
def watch_set() -> Any:
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(broadcast.watch_key())
    yield lambda: {m.decode() for m in client.zrange(broadcast.watch_key(), 0, -1)}
    client.delete(broadcast.watch_key())
