"""The API throttle's buckets in Redis: shared by processes, atomic, per scope, fail open."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from tasks_admin.api import throttle

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

# A web process of its own: only settings and the throttle module, no Django app.
HITTER = """
import json, sys, time
from django.conf import settings
settings.configure(REDIS_URL=sys.argv[1], CHANNEL_LAYER_PREFIX=sys.argv[2])
from tasks_admin.api import throttle
start, count = float(sys.argv[3]), int(sys.argv[4])
time.sleep(max(0.0, start - time.time()))
print(json.dumps([
    [throttle.hit(throttle.key("token", f"shared-{bucket}"), 15, 60) for _ in range(count)]
    for bucket in range(8)
]))
"""


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_processes_hitting_one_bucket_at_once_let_exactly_its_limit_through():
    # Four processes start together, 8 requests each to each of 8 buckets of 15/minute:
    # with a get-then-set, two processes often take the same last slot of some bucket.
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                HITTER,
                settings.REDIS_URL,
                settings.CHANNEL_LAYER_PREFIX,
                str(start),
                "8",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [json.loads(proc.communicate(timeout=30)[0]) for proc in procs]
    for bucket in range(8):
        waits = [wait for result in results for wait in result[bucket]]
        assert waits.count(0.0) == 15, bucket
        assert all(wait is not None and 0 < wait <= 60 for wait in waits if wait != 0.0)


@override_settings(CONSOLE_API_THROTTLE="3/minute")
def test_a_token_is_counted_once_across_connections(client, token):
    # A new client (connection pool) per request stands in for a request per process.
    statuses = []
    for _ in range(4):
        throttle.reset()
        statuses.append(client.get("/api/v1/task-names/", headers=bearer(token)).status_code)
    assert statuses == [200, 200, 200, 429]


@override_settings(CONSOLE_API_THROTTLE="2/minute")
def test_retry_after_is_when_the_oldest_request_leaves_the_window(client, token):
    for _ in range(2):
        client.get("/api/v1/task-names/", headers=bearer(token))
    response = client.get("/api/v1/task-names/", headers=bearer(token))
    assert response.status_code == 429
    assert int(response["Retry-After"]) in (59, 60)


@override_settings(CONSOLE_API_THROTTLE_ANON="2/minute")
def test_requests_without_credentials_are_bucketed_by_address(client):
    first = [client.get("/api/v1/tasks/", REMOTE_ADDR="10.1.0.1").status_code for _ in range(3)]
    other = client.get("/api/v1/tasks/", REMOTE_ADDR="10.1.0.2").status_code
    assert (first, other) == ([401, 401, 429], 401)
    buckets = redis.Redis.from_url(settings.REDIS_URL)
    assert buckets.zcard(f"{settings.CHANNEL_LAYER_PREFIX}:api-throttle:anon:10.1.0.1") == 2
    assert buckets.zcard(f"{settings.CHANNEL_LAYER_PREFIX}:api-throttle:anon:10.1.0.2") == 1


@override_settings(CONSOLE_API_THROTTLE="1/minute")
def test_consoles_with_other_prefixes_do_not_share_buckets(client, token):
    other = settings.CHANNEL_LAYER_PREFIX + "-other-console"
    assert client.get("/api/v1/task-names/", headers=bearer(token)).status_code == 200
    try:
        with override_settings(CHANNEL_LAYER_PREFIX=other):
            assert client.get("/api/v1/task-names/", headers=bearer(token)).status_code == 200
    finally:
        buckets = redis.Redis.from_url(settings.REDIS_URL)
        for key in buckets.scan_iter(match=f"{other}:api-throttle:*"):
            buckets.delete(key)
    assert client.get("/api/v1/task-names/", headers=bearer(token)).status_code == 429


def test_an_empty_rate_does_not_throttle_or_touch_redis(client, token, settings):
    settings.CONSOLE_API_THROTTLE = ""
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    statuses = {client.get("/api/v1/task-names/", headers=bearer(token)).status_code}
    assert statuses == {200}
    assert throttle._client is None


def test_redis_down_lets_requests_through_and_warns_once(
    client, token, settings, monkeypatch, caplog
):
    settings.CONSOLE_API_THROTTLE = "1/minute"
    monkeypatch.setattr(throttle, "RETRY_AFTER", 0.0)  # ask Redis on every request
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    with caplog.at_level(logging.WARNING, logger="tasks_admin.api.throttle"):
        statuses = [
            client.get("/api/v1/task-names/", headers=bearer(token)).status_code for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 200]
    warnings = [r for r in caplog.records if r.name == "tasks_admin.api.throttle"]
    assert len(warnings) == 1
    assert "API throttle off" in warnings[0].getMessage()


def test_counting_resumes_when_redis_is_back(client, token, settings, monkeypatch):
    settings.CONSOLE_API_THROTTLE = "1/minute"
    monkeypatch.setattr(throttle, "RETRY_AFTER", 0.0)
    working = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert client.get("/api/v1/task-names/", headers=bearer(token)).status_code == 200
    settings.REDIS_URL = working
    statuses = [client.get("/api/v1/task-names/", headers=bearer(token)).status_code for _ in "ab"]
    assert statuses == [200, 429]


def test_a_hung_redis_is_not_asked_again_for_a_while(settings):
    # A listening socket that never answers: the first hit times out, the next is skipped.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        settings.REDIS_URL = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
        started = time.monotonic()
        first = throttle.hit(throttle.key("token", "hung"), 5, 60)
        timed_out = time.monotonic() - started
        started = time.monotonic()
        second = throttle.hit(throttle.key("token", "hung"), 5, 60)
        skipped = time.monotonic() - started
    assert (first, second) == (None, None)
    assert throttle.SOCKET_TIMEOUT <= timed_out < throttle.SOCKET_TIMEOUT + 1.0
    assert skipped < 0.05
