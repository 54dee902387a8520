"""demo_traffic, run as a user runs it, against a Redis database of its own."""

import re
import signal
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings

from tests.demo.helpers import ROOT, manage

# A Redis database no other test uses: the messages left in it are exactly what was sent.
# (The slow queue appears early in seed 2's mix: the third submission is a report.)
TRAFFIC_REDIS_DB = 13
SUMMARY = re.compile(r"demo_traffic: (\d+) submissions \((\d+) messages, (\d+) errors\)")


@pytest.fixture
def traffic_broker(subprocess_env):
    url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + f"/{TRAFFIC_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client, {**subprocess_env, "CELERY_BROKER_URL": url}
    client.flushdb()


def _depth(client: redis.Redis, queue: str) -> int:
    # Celery's Redis priority sub-queues: "<name>", "<name>\x06\x163", ...
    return sum(client.llen(queue + ("" if p == 0 else f"\x06\x16{p}")) for p in (0, 3, 6, 9))


@pytest.mark.integration
def test_demo_traffic_puts_every_message_it_reports_on_the_default_and_slow_queues(
    traffic_broker,
):
    client, env = traffic_broker

    result = manage("demo_traffic", "--rate", "30", "--duration", "1", "--seed", "2", env=env)

    assert result.returncode == 0, result.stderr
    summary = SUMMARY.search(result.stdout)
    assert summary, result.stdout
    submissions, messages, errors = map(int, summary.groups())
    assert 20 <= submissions <= 31
    assert errors == 0
    default, slow = _depth(client, "default"), _depth(client, "slow")
    assert slow > 0
    assert default + slow == messages >= submissions


@pytest.mark.integration
def test_demo_traffic_stops_cleanly_on_sigterm_and_prints_its_summary(traffic_broker):
    client, env = traffic_broker
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo_traffic", "--rate", "20", "--duration", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Signal only once it is sending (its handlers are installed by then).
    deadline = time.monotonic() + 20
    while _depth(client, "default") < 5 and time.monotonic() < deadline:
        time.sleep(0.1)

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=10)

    assert process.returncode == 0, stderr
    summary = SUMMARY.search(stdout)
    assert summary, stdout
    assert int(summary[1]) > 0
