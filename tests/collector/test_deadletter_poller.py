"""The dead-letter drain, step by step, against the real brokers (no workers needed)."""

import contextlib
import datetime as dt
import socket
import threading
import time
import uuid

import pytest
from celery import Celery
from kombu import Connection, Exchange, Queue

from tasks_admin import deadletter
from tasks_admin.collector.pollers.deadletters import DeadLetterPoller, parse, store
from tasks_admin.models import DeadLetter
from tests.integration.conftest import BROKERS

pytestmark = pytest.mark.django_db


class Proxy:
    """A TCP relay to the broker that can go away and come back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        # shutdown() first: on Linux, close() alone leaves a thread blocked in accept().
        for sock in [s for s in [self.listener] if s is not None] + self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.listener = None
        self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass


def via(proxy: Proxy, url: str) -> str:
    scheme, rest = url.split("://", 1)
    credentials, _, location = rest.rpartition("@")
    path = location.partition("/")[2]
    prefix = f"{credentials}@" if credentials else ""
    return f"{scheme}://{prefix}127.0.0.1:{proxy.port}/{path}"


def target_of(url: str) -> tuple[str, int]:
    location = url.split("://", 1)[1].rpartition("@")[2].partition("/")[0]
    host, _, port = location.partition(":")
    return host, int(port or (6379 if url.startswith("redis") else 5672))


def publish_dead_letter(url: str, queue: str, catalog: dict) -> str:
    """A real task message, taken from a queue and dead-lettered by the hook's code."""
    app = Celery(f"dl-{uuid.uuid4().hex[:6]}", broker=url, set_as_current=False)
    app.conf.update(task_serializer="json", deadletter_queue=queue)
    work = f"{queue}-work"
    with Connection(url) as conn:
        Queue(work, Exchange(work), routing_key=work)(conn.default_channel).declare()
    sent = app.send_task("demo.publish_catalog", (catalog,), {"x": 1}, queue=work)
    with Connection(url) as conn:
        message = None
        deadline = time.monotonic() + 5
        while message is None and time.monotonic() < deadline:
            message = Queue(work, no_declare=True)(conn.default_channel).get(no_ack=True)
        assert message is not None
        payload = deadletter.build(message, reason="failed", exception="E('x')", app=app)
        assert deadletter.publish(app, payload)
        if url.startswith("amqp"):
            conn.default_channel.queue_delete(work)
    return sent.id


@pytest.fixture(params=sorted(BROKERS))
def broker(request, monkeypatch):
    url = BROKERS[request.param]
    # Celery's conf.broker_url prefers this variable to Celery(broker=...).
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    queue = f"dlq-{uuid.uuid4().hex[:8]}"
    yield url, queue
    with Connection(url) as conn, contextlib.suppress(Exception):
        conn.channel().queue_delete(queue)


def test_the_poller_stores_each_dead_letter_once_and_acks_it(broker):
    url, queue = broker
    catalog = {"rows": [{"n": n, "deep": {"a": [n, {"b": n}]}} for n in range(60)]}
    task_id = publish_dead_letter(url, queue, catalog)
    poller = DeadLetterPoller(broker_url=url, queues=[queue], interval=0.1)
    try:
        assert poller.step() is True
    finally:
        poller.close()

    letter = DeadLetter.objects.get(task_id=task_id)
    assert (letter.args, letter.kwargs, letter.reason) == ([catalog], {"x": 1}, "failed")
    assert letter.queue == f"{queue}-work"
    assert letter.deadletter_queue == queue
    with Connection(url) as conn:
        assert Queue(queue, no_declare=True)(conn.default_channel).get() is None


def test_the_poller_survives_the_broker_going_away_and_coming_back(broker):
    url, queue = broker
    proxy = Proxy(target_of(url))
    proxy.start()
    poller = DeadLetterPoller(broker_url=via(proxy, url), queues=[queue], interval=0.1)
    try:
        first = publish_dead_letter(url, queue, {"n": 1})
        assert poller.step() is True
        proxy.stop()  # the broker goes away
        second = publish_dead_letter(url, queue, {"n": 2})
        assert poller.step(now=time.monotonic() + 10) is False
        assert poller.errors == 1
        assert poller.connection is None
        proxy.start()  # and comes back
        assert poller.step(now=time.monotonic() + 600) is True
    finally:
        poller.close()
        proxy.stop()
    assert set(DeadLetter.objects.values_list("task_id", flat=True)) == {first, second}


def test_a_message_stored_twice_makes_one_row():
    now = dt.datetime.now(dt.UTC)
    body = b'[[1], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'
    headers = {
        "id": "t-1",
        "task": "demo.add",
        "x-death": [
            {
                "queue": "default",
                "reason": "rejected",
                "count": 1,
                "time": now,
                "exchange": "default",
                "routing-keys": ["default"],
            }
        ],
    }

    def fields():
        return parse(
            body,
            headers,
            {"priority": 3},
            {"exchange": "celery.dlx", "routing_key": "default.dlq"},
            content_type="application/json",
            content_encoding="utf-8",
            queue="default.dlq",
        )

    assert store(fields()) is True
    assert store(fields()) is False
    letter = DeadLetter.objects.get()
    assert (letter.source, letter.reason, letter.queue, letter.routing_key) == (
        "broker",
        "rejected",
        "default",
        "default",
    )
    assert (letter.args, letter.priority, letter.died_at) == ([1], 3, now)
    assert letter.x_death[0]["time"] == now.isoformat()
    assert "x-death" not in letter.headers


def test_a_body_that_is_not_json_is_kept_as_a_note_and_never_decoded():
    fields = parse(
        b"\x80\x04\x95pickle",
        {"id": "t-2", "task": "demo.add", "x-death": []},
        {},
        {},
        content_type="application/x-python-serialize",
        content_encoding="binary",
        queue="default.dlq",
    )
    assert fields["body_complete"] is False
    assert "not JSON" in fields["body_repr"]


def test_a_message_with_nul_characters_is_stored_shown_and_marked_not_replayable():
    fields = parse(
        b'[["a\\u0000b"], {}, {}]',
        {"id": "t-3", "task": "demo.add", "x-death": []},
        {"priority": 10**12},
        {},
        content_type="application/json",
        content_encoding="utf-8",
        queue="default.dlq",
    )
    assert store(fields) is True
    letter = DeadLetter.objects.get(task_id="t-3")
    assert (letter.args, letter.body_complete, letter.priority) == (["a\ufffdb"], False, None)
    assert "NUL" in letter.body_repr
