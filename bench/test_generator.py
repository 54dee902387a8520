"""The generator's messages are the bytes Celery's own EventDispatcher publishes.

Run with: .venv/bin/pytest bench/test_generator.py -q -p no:django
(needs Redis on 127.0.0.1:6379; uses db 15's event channels only).
"""

import base64
import json
import os
import time

import pytest
import redis
from celery import Celery

from bench import generator

DB = 15


@pytest.fixture
def subscriber():
    client = redis.Redis(host="127.0.0.1", port=6379, db=DB)
    pubsub = client.pubsub()
    pubsub.psubscribe(f"/{DB}.celeryev/*")
    assert pubsub.get_message(timeout=2)["type"] == "psubscribe"
    yield pubsub
    pubsub.close()
    client.close()


def _next_message(pubsub) -> tuple[bytes, bytes]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "pmessage":
            return message["channel"], message["data"]
    raise AssertionError("no event arrived")


def _real(pubsub, event_type: str, fields: dict) -> tuple[bytes, dict, bytes]:
    app = Celery(broker=f"redis://127.0.0.1:6379/{DB}", set_as_current=False)
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname="celery@synthetic-0", enabled=True)
        dispatcher.send(event_type, **fields)
    channel, data = _next_message(pubsub)
    envelope = json.loads(data)
    return channel, envelope, base64.b64decode(envelope["body"])


def _ours(event_type: str, fields: dict, body: dict) -> tuple[bytes, dict, bytes]:
    builder = generator.EventBuilder(DB)
    builder.pids["celery@synthetic-0"] = os.getpid()
    built = builder.build(event_type, "celery@synthetic-0", fields, clock=body["clock"])
    [(channel, data)] = generator.render([built], body["timestamp"])
    envelope = json.loads(data)
    return channel, envelope, base64.b64decode(envelope["body"])


@pytest.mark.parametrize(
    ("event_type", "fields"),
    [
        (
            "task-received",
            {
                "uuid": "6f1c",
                "name": "emails.tasks.send_digest",
                "args": "(1, 'user1@example.com')",
                "kwargs": "{'dry_run': False}",
                "root_id": "6f1c",
                "parent_id": None,
                "retries": 0,
                "eta": None,
                "expires": None,
            },
        ),
        ("task-succeeded", {"uuid": "6f1c", "result": "{'ok': True}", "runtime": 0.0123}),
        ("task-failed", {"uuid": "6f1c", "exception": "KeyError('x')", "traceback": "Tb\n  é\n"}),
        ("worker-heartbeat", generator.worker_fields(3)),
    ],
)
def test_messages_are_byte_identical_to_the_dispatchers(subscriber, event_type, fields):
    real_channel, real_envelope, real_body = _real(subscriber, event_type, fields)
    channel, envelope, body = _ours(event_type, fields, json.loads(real_body))

    assert channel == real_channel
    assert body == real_body
    # The delivery tag is a fresh uuid4 per message; everything else must match.
    real_envelope["properties"].pop("delivery_tag")
    envelope["properties"].pop("delivery_tag")
    real_envelope.pop("body")
    envelope.pop("body")
    assert envelope == real_envelope


def test_stream_has_three_events_per_task_and_about_five_percent_failures():
    stream = generator.build_stream(events=30_000, db=DB)

    types = [e.suffix.decode().split('"')[3] for e in stream.events]
    assert len(types) == 30_000
    assert types.count("task-received") == types.count("task-started") == 10_000
    assert 400 < types.count("task-failed") < 600
