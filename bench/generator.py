"""Synthetic Celery task events, byte-identical to what a worker's EventDispatcher publishes.

A worker's dispatcher builds ``Event(type, hostname=, utcoffset=, pid=, clock=, **fields)``
(so ``timestamp`` and ``type`` come last), serializes it to JSON, and kombu's Redis
transport wraps it in an envelope with a base64 body and PUBLISHes it to
``/<db>.celeryev/<routing key>``. We prebuild each event's body up to its timestamp and its
envelope tail, and only splice in the timestamp (the publish time, so lag is measurable)
and base64 at send time: about 1 µs per event, so the publisher stays far cheaper than
any consumer. ``bench/test_generator.py`` checks the bytes against the real dispatcher.
"""

from __future__ import annotations

import base64
import json
import math
import platform
import random
import socket
import time
import uuid
from dataclasses import dataclass

import celery
from celery.utils.time import utcoffset

WORKERS = [f"celery@synthetic-{i}" for i in range(4)]
TASK_NAMES = [
    "billing.tasks.charge_invoice",
    "billing.tasks.refund_payment",
    "emails.tasks.send_welcome",
    "emails.tasks.send_digest",
    "reports.tasks.build_monthly_report",
    "reports.tasks.export_csv",
    "search.tasks.reindex_document",
    "media.tasks.resize_image",
    "media.tasks.transcode_video",
    "accounts.tasks.sync_profile",
    "webhooks.tasks.deliver",
    "analytics.tasks.aggregate_hourly",
]
WINDOW = 8  # tasks in flight per worker: all received, then each started and finished
FAIL_RATE = 0.05
HEARTBEAT_SECONDS = 2.0

TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/venv/site-packages/celery/app/trace.py", line 453, in trace_task
    R = retval = fun(*args, **kwargs)
                 ^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/venv/site-packages/celery/app/trace.py", line 736, in __protected_call__
    return self.run(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/{module}.py", line 88, in {func}
    response = client.post(url, json=payload, timeout=10)
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/venv/site-packages/httpx/_client.py", line 1144, in post
    return self.request(
           ^^^^^^^^^^^^^
  File "/srv/app/venv/site-packages/httpx/_transports/default.py", line 232, in handle_request
    with map_httpcore_exceptions():
  File "/usr/lib/python3.11/contextlib.py", line 158, in __exit__
    self.gen.throw(typ, value, traceback)
  File "/srv/app/venv/site-packages/httpx/_transports/default.py", line 86, in map_exceptions
    raise mapped_exc(message) from exc
httpx.ConnectTimeout: upstream timed out after 10.0s (task {task_id})
"""


def channel(db: int, event_type: str) -> bytes:
    return f"/{db}.celeryev/{event_type.replace('-', '.')}".encode()


def envelope_parts(hostname: str, event_type: str) -> tuple[bytes, bytes]:
    """kombu's Redis envelope around a body, split where the base64 body and tag go."""
    envelope = {
        "body": "\x00",
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"hostname": hostname},
        "properties": {
            "delivery_mode": 1,
            "delivery_info": {"exchange": "celeryev", "routing_key": event_type.replace("-", ".")},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": "\x01",
        },
    }
    head, rest = json.dumps(envelope).split('"\\u0000"')
    mid, tail = rest.split('"\\u0001"')
    return (head + '"').encode(), ('"' + mid + '"').encode() + b"\x01" + ('"' + tail).encode()


@dataclass(slots=True)
class Prebuilt:
    """One event message minus its timestamp: publish ``head+b64(prefix+ts+suffix)+tail``."""

    channel: bytes
    prefix: bytes
    suffix: bytes
    head: bytes
    tail: bytes


class EventBuilder:
    """Builds messages the way one generator process's dispatchers would (one Lamport clock)."""

    def __init__(self, db: int) -> None:
        self.db = db
        self.clock = 0
        self.pids = {host: 40_000 + i for i, host in enumerate(WORKERS)}
        self.utcoffset = utcoffset()
        self._envelopes: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def build(
        self, event_type: str, hostname: str, fields: dict, *, clock: int | None = None
    ) -> Prebuilt:
        if clock is None:
            self.clock += 1
            clock = self.clock
        event = {
            "hostname": hostname,
            "utcoffset": self.utcoffset,
            "pid": self.pids.get(hostname, 1),
            "clock": clock,
            **fields,
        }
        prefix = json.dumps(event)[:-1].encode() + b', "timestamp": '
        suffix = f', "type": "{event_type}"}}'.encode()
        key = (hostname, event_type)
        if key not in self._envelopes:
            self._envelopes[key] = envelope_parts(hostname, event_type)
        head, tail = self._envelopes[key]
        tag = str(uuid.uuid4()).encode()
        return Prebuilt(
            channel(self.db, event_type), prefix, suffix, head, tail.replace(b"\x01", tag)
        )


def worker_fields(processed: int) -> dict:
    return {
        "freq": HEARTBEAT_SECONDS,
        "active": 0,
        "processed": processed,
        "loadavg": [0.42, 0.35, 0.3],
        "sw_ident": "py-celery",
        "sw_ver": celery.__version__,
        "sw_sys": platform.system(),
    }


def _task_events(
    builder: EventBuilder, rng: random.Random, hostname: str, count: int
) -> list[Prebuilt]:
    tasks = []
    for _ in range(count):
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        name = rng.choice(TASK_NAMES)
        user = rng.randrange(100_000)
        fields = {
            "uuid": task_id,
            "name": name,
            "args": f"({rng.randrange(10**6)}, 'user{user}@example.com')",
            "kwargs": f"{{'priority': {rng.randrange(10)}, 'dry_run': False, 'locale': 'en-GB'}}",
            "root_id": task_id,
            "parent_id": None,
            "retries": 0,
            "eta": None,
            "expires": None,
        }
        tasks.append((task_id, name, builder.build("task-received", hostname, fields)))
    out = [received for _, _, received in tasks]
    for task_id, name, _ in tasks:
        out.append(builder.build("task-started", hostname, {"uuid": task_id}))
        if rng.random() < FAIL_RATE:
            module, func = name.rsplit(".", 1)
            fields = {
                "uuid": task_id,
                "exception": "ConnectTimeout('upstream timed out after 10.0s')",
                "traceback": TRACEBACK.format(
                    module=module.replace(".", "/"), func=func, task_id=task_id
                ),
            }
            out.append(builder.build("task-failed", hostname, fields))
        else:
            runtime = round(rng.lognormvariate(-2.5, 1.2), 6)
            result = f"{{'ok': True, 'id': {rng.randrange(10**6)}, 'rows': {rng.randrange(500)}}}"
            out.append(
                builder.build(
                    "task-succeeded",
                    hostname,
                    {"uuid": task_id, "result": result, "runtime": runtime},
                )
            )
    return out


@dataclass
class Stream:
    """A prebuilt stream of task events (3 per task) for the 4 synthetic workers."""

    db: int
    events: list[Prebuilt]
    builder: EventBuilder
    tasks: int = 0

    @property
    def task_events(self) -> int:
        return len(self.events)


def build_stream(*, events: int, db: int, seed: int = 7) -> Stream:
    """``events`` rounded up to whole tasks (3 events each), in windows of 8 per worker."""
    builder = EventBuilder(db)
    rng = random.Random(seed)
    tasks = math.ceil(events / 3)
    out: list[Prebuilt] = []
    window = 0
    while tasks > 0:
        count = min(WINDOW, tasks)
        out.extend(_task_events(builder, rng, WORKERS[window % len(WORKERS)], count))
        tasks -= count
        window += 1
    return Stream(db=db, events=out, builder=builder, tasks=len(out) // 3)


def render(events: list[Prebuilt], timestamp: float) -> list[tuple[bytes, bytes]]:
    ts = repr(timestamp).encode()
    b64 = base64.b64encode
    return [(e.channel, e.head + b64(e.prefix + ts + e.suffix) + e.tail) for e in events]


def resp_publish(messages: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(
        b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(ch), ch, len(msg), msg)
        for ch, msg in messages
    )


@dataclass
class PublishStats:
    task_events: int = 0
    worker_events: int = 0
    unheard: int = 0  # PUBLISHes that reached no subscriber: lost before any consumer
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at

    def as_dict(self) -> dict:
        rate = self.task_events / self.seconds if self.seconds > 0 else None
        return {
            "published": self.task_events,
            "worker_events": self.worker_events,
            "unheard": self.unheard,
            "publish_started_at": self.started_at,
            "publish_finished_at": self.finished_at,
            "publish_seconds": round(self.seconds, 3),
            "publish_rate": round(rate) if rate else None,
        }


class Publisher:
    """Pipelined PUBLISH over one raw RESP connection (the cheapest way to offer load)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 6379) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def _send(self, messages: list[tuple[bytes, bytes]], stats: PublishStats) -> None:
        self.sock.sendall(resp_publish(messages))
        expected = len(messages)
        data = self._buf
        while data.count(b"\n") < expected:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the publisher connection")
            data += chunk
        # Replies are ":<receivers>\r\n"; split exactly ``expected`` off, keep the rest.
        cut = 0
        for _ in range(expected):
            cut = data.index(b"\n", cut) + 1
        replies, self._buf = data[:cut], data[cut:]
        if replies.startswith(b"-") or b"\n-" in replies:
            raise RuntimeError(f"Redis refused a PUBLISH: {replies[:200]!r}")
        stats.unheard += replies.count(b":0\r\n")

    def _worker_events(
        self, stream: Stream, event_type: str, now: float, stats: PublishStats
    ) -> None:
        # Roughly what each worker has finished so far; heartbeats are not counted anyway.
        processed = stats.task_events // 3 // len(WORKERS)
        clock = stream.builder.clock
        built = [
            stream.builder.build(event_type, host, worker_fields(processed), clock=clock)
            for host in WORKERS
        ]
        self._send(render(built, now), stats)
        stats.worker_events += len(built)

    def publish(
        self,
        stream: Stream,
        *,
        rate: float | None = None,
        chunk: int = 2000,
        tick: float = 0.005,
    ) -> PublishStats:
        """Send the whole stream; unpaced when ``rate`` is None, else at ``rate`` events/s.

        Timestamps are stamped per chunk right before it is sent, so ``timestamp`` is the
        publish time within about a millisecond. Heartbeats go out every 2 s of send time.
        """
        stats = PublishStats()
        events = stream.events
        stats.started_at = time.time()
        self._worker_events(stream, "worker-online", stats.started_at, stats)
        next_heartbeat = stats.started_at + HEARTBEAT_SECONDS
        sent = 0
        while sent < len(events):
            now = time.time()
            if rate is None:
                batch = chunk
            else:
                due = int((now - stats.started_at) * rate) - sent
                if due <= 0:
                    time.sleep(tick)
                    continue
                batch = min(due, chunk)
            part = events[sent : sent + batch]
            self._send(render(part, now), stats)
            sent += len(part)
            stats.task_events += len(part)
            if now >= next_heartbeat:
                self._worker_events(stream, "worker-heartbeat", now, stats)
                next_heartbeat += HEARTBEAT_SECONDS
        stats.finished_at = time.time()
        return stats
