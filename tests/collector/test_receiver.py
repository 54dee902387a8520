"""The receivers against the real brokers, fed by Celery's own EventDispatcher.

Every test uses its own Redis key prefix or RabbitMQ queue and its own worker hostname,
so events from other suites sharing the brokers never count here.
"""

import base64
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
import redis
from celery import Celery
from kombu import Connection, Queue

from tasks_admin.collector.buffer import RawBuffer, RawMessage
from tasks_admin.collector.envelope import Decoder
from tasks_admin.collector.receiver import (
    AmqpEventReceiver,
    EventReceiver,
    RedisEventReceiver,
    receiver_for,
)

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
TIMESTAMP = 1_767_225_599.123456  # fixed, so an unshifted arrival is an exact match


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@contextlib.contextmanager
def _running(receiver: EventReceiver) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=receiver.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert receiver.ready.wait(10), "receiver never became ready"
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


class _Collected:
    """Drains a RawBuffer, keeping only this test's events (by worker hostname)."""

    def __init__(self, buffer: RawBuffer, hostname: str) -> None:
        self.buffer, self.hostname = buffer, hostname
        self.events: list[dict[str, Any]] = []
        self.messages: list[RawMessage] = []
        self.decoder = Decoder()

    def until(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        def enough() -> bool:
            for message in self.buffer.take(10_000, 0.05):
                decoded = self.decoder.decode(message)[0]
                ours = [e for e in decoded if e["hostname"] == self.hostname]
                if ours:
                    self.messages.append(message)
                    self.events.extend(ours)
            return len(self.events) >= count

        _wait_for(enough, timeout)
        return self.events


def _dispatch(app: Celery, hostname: str, *, buffered: bool) -> list[dict[str, Any]]:
    """Send received/started/succeeded for one task; return what a receiver should see."""
    task_id = str(uuid.uuid4())
    sent = [
        ("task-received", {"name": "demo.add", "args": "(1, 2)", "kwargs": "{}", "retries": 0}),
        ("task-started", {}),
        ("task-succeeded", {"result": "3", "runtime": 0.0042}),
    ]
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(
            conn, hostname=hostname, enabled=True, buffer_group=["task"] if buffered else None
        )
        for type_, fields in sent:
            # A worker claiming UTC+5 (buffered path only): a localizing receiver would
            # move the timestamp by hours.
            extra = {"utcoffset": lambda: -5} if buffered else {}
            dispatcher.send(type_, uuid=task_id, timestamp=TIMESTAMP, **fields, **extra)
        dispatcher.flush()
        dispatcher.close()
    return [{"type": t, "uuid": task_id, "timestamp": TIMESTAMP, **f} for t, f in sent]


def _assert_arrived(expected: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    assert len(events) == len(expected)
    for want, got in zip(expected, events, strict=True):
        assert {key: got[key] for key in want} == want
        assert {"hostname", "clock", "pid", "utcoffset", "local_received"} <= got.keys()


# ---------------------------------------------------------------------------------- Redis


@pytest.fixture
def keyprefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


def _redis_app(keyprefix: str) -> Celery:
    return Celery(
        "receiver-test",
        broker=REDIS_URL,
        set_as_current=False,
        config_source={"broker_transport_options": {"global_keyprefix": keyprefix}},
    )


def _redis_receiver(keyprefix: str, url: str = REDIS_URL) -> tuple[EventReceiver, RawBuffer]:
    buffer = RawBuffer(1 << 30)
    receiver = receiver_for(
        url,
        buffer,
        queue_name="unused-on-redis",
        queue_max_length=1,
        transport_options={"global_keyprefix": keyprefix},
    )
    assert isinstance(receiver, RedisEventReceiver)
    receiver.client_name = f"console-test-{keyprefix.strip(':')}"
    return receiver, buffer


@pytest.mark.parametrize("buffered", [False, True], ids=["single", "task.multi"])
def test_celery_dispatcher_events_arrive_over_redis_as_sent(keyprefix, buffered):
    receiver, buffer = _redis_receiver(keyprefix)
    hostname = f"celery@{keyprefix}"
    with _running(receiver):
        expected = _dispatch(_redis_app(keyprefix), hostname, buffered=buffered)
        collected = _Collected(buffer, hostname)
        events = collected.until(3)

    _assert_arrived(expected, events)
    assert collected.decoder.messages == (1 if buffered else 3)


def _capture_envelopes(keyprefix: str, hostname: str) -> list[tuple[bytes, bytes]]:
    """What kombu publishes for the dispatcher's events: (channel, envelope) pairs."""
    client = redis.Redis.from_url(REDIS_URL)
    pubsub = client.pubsub()
    pubsub.psubscribe(f"{keyprefix}/0.celeryev/*")
    captured: list[tuple[bytes, bytes]] = []
    try:
        _dispatch(_redis_app(keyprefix), hostname, buffered=False)
        while len(captured) < 3:
            message = pubsub.get_message(timeout=5)
            assert message is not None, "dispatcher events never arrived"
            if message["type"] == "pmessage":
                captured.append((message["channel"], message["data"]))
    finally:
        pubsub.close()
        client.close()
    return captured


def _clone(captured: list[tuple[bytes, bytes]], count: int) -> list[bytes]:
    """``count`` real envelopes, each with its own task id, as tab-separated lines."""
    templates = []
    for channel, data in captured:
        envelope = json.loads(data)
        body = base64.b64decode(envelope["body"])
        old_id = json.loads(body)["uuid"].encode()
        head, tail = data.split(envelope["body"].encode())
        templates.append((channel, head, tail, body, old_id))
    lines = []
    for n in range(count):
        channel, head, tail, body, old_id = templates[n % 3]
        new_body = body.replace(old_id, b"%036d" % (n // 3))
        lines.append(channel + b"\t" + head + base64.b64encode(new_body) + tail)
    return lines


PUBLISHER = """
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
lines = open(sys.argv[2], "rb").read().split(b"\\n")
for start in range(0, len(lines), 1000):
    pipe = client.pipeline(transaction=False)
    for line in lines[start:start + 1000]:
        channel, data = line.split(b"\\t", 1)
        pipe.publish(channel, data)
    pipe.execute()
"""


def test_redis_burst_of_100k_pipelined_events_arrives_complete(keyprefix, tmp_path):
    count = 100_002
    hostname = f"celery@{keyprefix}"
    lines = _clone(_capture_envelopes(keyprefix, hostname), count)
    (tmp_path / "events").write_bytes(b"\n".join(lines))
    receiver, buffer = _redis_receiver(keyprefix)
    events: list[dict[str, Any]] = []
    decoder = Decoder()

    def decode_meanwhile(stop: threading.Event) -> None:
        # As the collector's decoder does: it competes with the receiver for the GIL.
        while not stop.is_set() or len(buffer):
            for message in buffer.take(2000, 0.05):
                events.extend(decoder.decode(message)[0])

    with _running(receiver) as stop:
        writer = threading.Thread(target=decode_meanwhile, args=(stop,))
        writer.start()
        subprocess.run(
            [sys.executable, "-c", PUBLISHER, REDIS_URL, str(tmp_path / "events")],
            check=True,
            timeout=60,
        )
        _wait_for(lambda: len(events) >= count, timeout=30)
    writer.join(10)

    assert len(events) == count
    assert len({(event["uuid"], event["type"]) for event in events}) == count
    assert receiver.counters["reconnects"] == 0


def _kill_client(name: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        clients: list[dict[str, str]] = client.client_list(_type="pubsub")  # type: ignore[assignment]
        ids = [c["id"] for c in clients if c["name"] == name]
        assert len(ids) == 1
        client.client_kill_filter(_id=ids[0])
    finally:
        client.close()


def test_redis_receiver_resubscribes_after_the_server_drops_it(keyprefix, caplog):
    receiver, buffer = _redis_receiver(keyprefix)
    assert isinstance(receiver, RedisEventReceiver)
    hostname = f"celery@{keyprefix}"
    with _running(receiver), caplog.at_level(logging.WARNING):
        _kill_client(receiver.client_name)
        _wait_for(lambda: receiver.counters["reconnects"] == 1 and receiver.ready.is_set())
        expected = _dispatch(_redis_app(keyprefix), hostname, buffered=True)
        events = _Collected(buffer, hostname).until(3)

    _assert_arrived(expected, events)
    assert "connection closed by the server" in caplog.text


@pytest.fixture
def acl_user() -> Iterator[tuple[str, str]]:
    client = redis.Redis.from_url(REDIS_URL)
    name, password = f"console-test-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    client.execute_command("ACL", "SETUSER", name, "on", f">{password}", "allchannels", "+@all")
    try:
        yield name, password
    finally:
        client.execute_command("ACL", "DELUSER", name)
        client.close()


def test_redis_receiver_authenticates_with_the_url_credentials(keyprefix, acl_user):
    name, password = acl_user
    receiver, buffer = _redis_receiver(keyprefix, f"redis://{name}:{password}@127.0.0.1:6379/0")
    hostname = f"celery@{keyprefix}"
    with _running(receiver):
        expected = _dispatch(_redis_app(keyprefix), hostname, buffered=True)
        events = _Collected(buffer, hostname).until(3)

    _assert_arrived(expected, events)


def test_refused_password_is_retried_with_back_off_and_never_logged(keyprefix, acl_user, caplog):
    name, _ = acl_user
    wrong = f"wrong-{uuid.uuid4().hex}"
    receiver, _ = _redis_receiver(keyprefix, f"redis://{name}:{wrong}@127.0.0.1:6379/0")
    stop = threading.Event()
    thread = threading.Thread(target=receiver.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING):
        thread.start()
        _wait_for(lambda: receiver.counters["reconnects"] >= 2, timeout=5)
        stop.set()
        thread.join(10)

    assert not receiver.ready.is_set()
    assert "AUTH refused" in caplog.text
    assert "reconnecting in 0.5 s" in caplog.text
    assert "reconnecting in 1.0 s" in caplog.text
    assert wrong not in caplog.text


# ------------------------------------------------------------------------------- RabbitMQ


@pytest.fixture
def queue_name() -> Iterator[str]:
    name = f"celeryev.console-test-{uuid.uuid4().hex[:12]}"
    yield name
    with Connection(AMQP_URL) as conn:
        Queue(name).bind(conn.default_channel).delete()


def _amqp_app() -> Celery:
    return Celery("receiver-test", broker=AMQP_URL, set_as_current=False)


def _amqp_receiver(queue_name: str) -> tuple[AmqpEventReceiver, RawBuffer]:
    buffer = RawBuffer(1 << 30)
    receiver = receiver_for(AMQP_URL, buffer, queue_name=queue_name, queue_max_length=10_000)
    assert isinstance(receiver, AmqpEventReceiver)
    return receiver, buffer


def _sever_broker_connections(port: int) -> None:
    """Cut this process's TCP connections to ``port`` as a network failure would."""
    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.raddr and conn.raddr.port == port and conn.fd != -1:
            sock = socket.socket(fileno=os.dup(conn.fd))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _tags(collected: _Collected) -> list[int]:
    return [message.ack_tag for message in collected.messages if message.ack_tag is not None]


@pytest.mark.parametrize("buffered", [False, True], ids=["single", "task.multi"])
def test_celery_dispatcher_events_arrive_over_rabbitmq_as_sent(queue_name, buffered):
    receiver, buffer = _amqp_receiver(queue_name)
    hostname = f"celery@{queue_name}"
    with _running(receiver):
        expected = _dispatch(_amqp_app(), hostname, buffered=buffered)
        collected = _Collected(buffer, hostname)
        events = collected.until(3)
        receiver.ack(_tags(collected))
        _wait_for(lambda: receiver.counters["acked"] == len(collected.messages))

    _assert_arrived(expected, events)
    assert len(collected.messages) == (1 if buffered else 3)
    assert collected.messages[0].content_type == "application/json"


def test_events_published_while_no_receiver_runs_are_delivered_when_it_starts(queue_name):
    receiver, buffer = _amqp_receiver(queue_name)
    with _running(receiver):
        pass  # an earlier run declared the durable queue
    hostname = f"celery@{queue_name}"
    expected = _dispatch(_amqp_app(), hostname, buffered=False)

    receiver, buffer = _amqp_receiver(queue_name)
    with _running(receiver):
        events = _Collected(buffer, hostname).until(3)

    _assert_arrived(expected, events)


def _receive_then_reconnect(queue_name: str, hostname: str, receiver: AmqpEventReceiver, buffer):
    """Receive 6 messages, ack the first 2, cut the connection, wait for the next one."""
    for _ in range(2):
        _dispatch(_amqp_app(), hostname, buffered=False)
    first = _Collected(buffer, hostname)
    first.until(6)
    receiver.ack(_tags(first)[:2])
    _wait_for(lambda: receiver.counters["acked"] == 2)
    _sever_broker_connections(5672)
    _wait_for(lambda: receiver.counters["reconnects"] == 1 and receiver.ready.is_set())
    return first


def test_unacked_events_are_redelivered_after_a_reconnect_and_acked_ones_are_not(queue_name):
    receiver, buffer = _amqp_receiver(queue_name)
    hostname = f"celery@{queue_name}"
    with _running(receiver):
        first = _receive_then_reconnect(queue_name, hostname, receiver, buffer)
        again = _Collected(buffer, hostname)
        again.until(4)
        time.sleep(0.5)  # the 2 acked messages would have come with the others
        again.until(4)

    key = [(event["uuid"], event["type"]) for event in first.events]
    assert sorted((event["uuid"], event["type"]) for event in again.events) == sorted(key[2:])


def test_tags_from_before_a_reconnect_are_not_acked_on_the_new_connection(queue_name):
    receiver, buffer = _amqp_receiver(queue_name)
    hostname = f"celery@{queue_name}"
    with _running(receiver):
        first = _receive_then_reconnect(queue_name, hostname, receiver, buffer)
        again = _Collected(buffer, hostname)
        again.until(4)
        receiver.ack(_tags(first)[2:])
        _wait_for(lambda: receiver.counters["stale_acks"] == 4)

    assert receiver.counters["acked"] == 2
    receiver, buffer = _amqp_receiver(queue_name)
    with _running(receiver):
        redelivered = _Collected(buffer, hostname).until(4)
    assert len(redelivered) == 4
