"""Receive Celery events from the broker into a RawBuffer, one thread per receiver.

A receiver only moves bytes: no decoding, no database. On Redis, events are pub/sub
messages and a subscriber that falls 32 MB behind is disconnected and loses them, so the
Redis receiver reads the socket in chunks of up to 4 MB and hands each chunk over at once. On
RabbitMQ, events wait in our own durable queue and are acked only after the writer has
committed them, so a slow or absent collector delays events instead of losing them.

Celery's own ``EventReceiver`` is not used: it localizes timestamps and decodes every
message in the receiving thread.
"""

import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from kombu import Connection, Consumer, Exchange, Queue
from kombu.message import Message

from tasks_admin.collector.buffer import RawBuffer, RawMessage

logger = logging.getLogger(__name__)

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
EVENT_EXCHANGE = "celeryev"


class EventReceiver(Protocol):
    ready: threading.Event
    counters: dict[str, int]

    def run(self, stop: threading.Event) -> None:
        """Receive until ``stop`` is set, reconnecting with back-off on broker errors."""

    def ack(self, tags: list[int]) -> None:
        """Acknowledge messages by ``RawMessage.ack_tag`` once committed; thread-safe."""


def receiver_for(
    broker_url: str,
    buffer: RawBuffer,
    *,
    queue_name: str,
    queue_max_length: int,
    transport_options: dict[str, Any] | None = None,
) -> EventReceiver:
    """The receiver for ``broker_url``'s transport (Redis or RabbitMQ)."""
    scheme = broker_url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "redis+socket", "unix"):
        return RedisEventReceiver(
            buffer, address=RedisAddress.from_url(broker_url), **_fanout_options(transport_options)
        )
    if scheme in ("amqp", "amqps", "pyamqp"):
        return AmqpEventReceiver(
            buffer,
            broker_url=broker_url,
            queue_name=queue_name,
            queue_max_length=queue_max_length,
            transport_options=transport_options,
        )
    raise ValueError(f"no event receiver for broker scheme {scheme!r}")


def _fanout_options(options: dict[str, Any] | None) -> dict[str, Any]:
    options = options or {}
    return {
        "global_keyprefix": options.get("global_keyprefix", ""),
        "fanout_prefix": options.get("fanout_prefix", True),
        "fanout_patterns": options.get("fanout_patterns", True),
    }


class _Backoff:
    """Exponential reconnect delay: 0.5 s doubling to a 10 s cap, reset once connected."""

    def __init__(self) -> None:
        self.delay = BACKOFF_START

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(self.delay * 2, BACKOFF_MAX)

    def reset(self) -> None:
        self.delay = BACKOFF_START


# ---------------------------------------------------------------------------------- Redis


class RedisAddress:
    """Where and how to connect, parsed from a kombu/redis-py URL. Never logs the password."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        unix_path: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.unix_path, self.ssl_context = unix_path, ssl_context

    @classmethod
    def from_url(cls, url: str) -> "RedisAddress":
        parts = urlsplit(url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        password = unquote(parts.password) if parts.password else None
        username = unquote(parts.username) if parts.username else None
        if parts.scheme in ("redis+socket", "unix"):
            db = query.get("virtual_host") or query.get("db") or "0"
            return cls(unix_path=parts.path, db=int(db), username=username, password=password)
        db_path = parts.path.strip("/")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(db_path or query.get("db") or 0),
            username=username,
            password=password,
            ssl_context=_ssl_context(query) if parts.scheme == "rediss" else None,
        )

    def __str__(self) -> str:
        where = self.unix_path or f"{self.host}:{self.port}"
        return f"{'rediss' if self.ssl_context else 'redis'}://{where}/{self.db}"


def _ssl_context(query: dict[str, str]) -> ssl.SSLContext:
    # The same query parameters kombu and redis-py accept on a rediss:// URL.
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if query.get("ssl_certfile"):
        context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
    reqs = query.get("ssl_cert_reqs", "required").lower().removeprefix("cert_")
    if reqs == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif reqs == "optional":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def _command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class RedisEventReceiver:
    """PSUBSCRIBEs to kombu's fanout channel for ``celeryev`` and buffers the raw stream.

    The socket is handled by hand and the thread only copies bytes: redis-py's PubSub took
    about 12 us per message on a 2-core box, and even hiredis framing here (2 us) was too
    much at 300k events/s while sharing the GIL with the decoder and writers. Whatever
    this thread cannot read piles up on the Redis side until ``client-output-buffer-limit
    pubsub 32mb`` disconnects it, losing everything in between.
    """

    client_name = "console-collector"  # shown by CLIENT LIST
    chunk_size = 4 * 1024 * 1024
    connect_timeout = 5.0
    # Pub/sub connections are silent when no worker publishes; a PING after this much
    # silence tells a dead peer (no FIN ever arrives) from a quiet cluster.
    idle_ping_after = 30.0
    ping_timeout = 10.0
    read_slice = 1.0

    def __init__(
        self,
        buffer: RawBuffer,
        *,
        address: RedisAddress,
        exchange: str = EVENT_EXCHANGE,
        global_keyprefix: str = "",
        fanout_prefix: bool | str = True,
        fanout_patterns: bool = True,
    ) -> None:
        self.buffer = buffer
        self.address = address
        self.ready = threading.Event()
        self.counters = {"chunks": 0, "bytes": 0, "dropped": 0, "reconnects": 0}
        # kombu: PUBLISH to <global_keyprefix><fanout prefix><exchange>[/<routing key>].
        fanout = "/{db}." if fanout_prefix is True else fanout_prefix or ""
        channel = global_keyprefix + fanout.format(db=address.db) + exchange
        self.pattern = _glob_escape(channel) + ("/*" if fanout_patterns else "")

    def ack(self, tags: list[int]) -> None:
        """Nothing to acknowledge: pub/sub delivery is fire-and-forget."""

    def run(self, stop: threading.Event) -> None:
        backoff = _Backoff()
        while not stop.is_set():
            try:
                self._session(stop, backoff)
            except (OSError, ConnectionError, hiredis.HiredisError) as exc:
                self.ready.clear()
                if stop.is_set():
                    break
                self.counters["reconnects"] += 1
                logger.warning(
                    "Redis event subscription on %s lost (%s: %s); reconnecting in %.1f s",
                    self.address,
                    type(exc).__name__,
                    exc,
                    backoff.delay,
                )
                backoff.wait(stop)
        self.ready.clear()

    def _connect(self) -> socket.socket:
        address = self.address
        if address.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            try:
                sock.connect(address.unix_path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((address.host, address.port), self.connect_timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # A large kernel buffer absorbs the bursts while this thread waits for the GIL.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.chunk_size)
        if address.ssl_context is not None:
            return address.ssl_context.wrap_socket(sock, server_hostname=address.host)
        return sock

    def _handshake(self, sock: socket.socket, reader: hiredis.Reader) -> None:
        """AUTH, name the client, PSUBSCRIBE; return once the subscription is confirmed."""
        commands: list[tuple[str, bytes]] = []
        if self.address.password is not None:
            auth = [self.address.password.encode()]
            if self.address.username:
                auth.insert(0, self.address.username.encode())
            commands.append(("AUTH", _command(b"AUTH", *auth)))
        commands.append(
            ("CLIENT SETNAME", _command(b"CLIENT", b"SETNAME", self.client_name.encode()))
        )
        commands.append(("PSUBSCRIBE", _command(b"PSUBSCRIBE", self.pattern.encode())))
        sock.sendall(b"".join(command for _, command in commands))
        for name, _ in commands:
            reply = reader.gets()
            while reply is False:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed during the handshake")
                reader.feed(data)
                reply = reader.gets()
            if isinstance(reply, hiredis.ReplyError):
                if name == "CLIENT SETNAME":
                    # An ACL may forbid it; the name only helps operators read CLIENT LIST.
                    logger.debug("CLIENT SETNAME refused: %s", reply)
                    continue
                raise ConnectionError(f"{name} refused: {reply}")

    def _session(self, stop: threading.Event, backoff: _Backoff) -> None:
        sock = self._connect()
        try:
            reader = hiredis.Reader()
            self._handshake(sock, reader)
            sock.settimeout(self.read_slice)
            backoff.reset()
            self.ready.set()
            logger.info("subscribed to Celery events on %s (%s)", self.address, self.pattern)
            self._pump(sock, reader, stop)
        finally:
            sock.close()

    def _pump(self, sock: socket.socket, reader: hiredis.Reader, stop: threading.Event) -> None:
        # The hot loop: one recv_into and one put per chunk, no parsing, no logging. The
        # decoder cuts the stream into messages; handing it the handshake's reader first
        # passes on anything read ahead with the subscription confirmation. A chunk is
        # whatever the kernel holds, up to chunk_size: small when we keep up, large when a
        # burst has queued, so even a burst faster than we can decode costs Redis no
        # output buffer (it waits in ours, bounded by CONSOLE_BUFFER_MAX_BYTES).
        put, counters, now, monotonic = self.buffer.put, self.counters, time.time, time.monotonic
        if not put(RawMessage(b"", "redis-stream", now(), stream=reader)):
            raise ConnectionError("event buffer full")
        view = memoryview(bytearray(self.chunk_size))
        recv_into = sock.recv_into
        last_data, ping_sent = monotonic(), 0.0
        while True:
            while True:
                if stop.is_set():
                    return
                try:
                    size = recv_into(view)
                    break
                except TimeoutError:
                    if ping_sent and monotonic() - ping_sent > self.ping_timeout:
                        raise ConnectionError("no reply to PING: the connection is dead") from None
                    if not ping_sent and monotonic() - last_data > self.idle_ping_after:
                        sock.sendall(_command(b"PING"))
                        ping_sent = monotonic()
            if not size:
                # Also how Redis ends a subscriber past its output buffer limit; its log
                # then says "closed for overcoming of output buffer limits".
                raise ConnectionError("connection closed by the server")
            counters["bytes"] += size
            counters["chunks"] += 1
            last_data, ping_sent = monotonic(), 0.0
            if not put(RawMessage(view[:size].tobytes(), "redis-stream", now())):
                counters["dropped"] += 1
                # A gap in the byte stream cannot be parsed across: start a new stream.
                raise ConnectionError("event buffer full; dropping a chunk and resubscribing")


# ------------------------------------------------------------------------------- RabbitMQ

# Ack tags carry the connection generation above the delivery tag: a tag from a previous
# connection must never be acked on the new one, where the same number is another message.
_GENERATION_SHIFT = 64
_DELIVERY_TAG_MASK = (1 << _GENERATION_SHIFT) - 1


class AmqpEventReceiver:
    """Consumes a durable event queue bound to ``celeryev`` and acks after the commit.

    ``RawMessage.ack_tag`` is opaque (delivery tag plus connection generation): the writer
    must pass every tag it took to ``ack``, malformed messages included, or they stay
    unacked until the next reconnect redelivers them.
    """

    prefetch_count = 2000
    heartbeat = 30
    drain_slice = 0.25
    ack_interval = 0.05

    def __init__(
        self,
        buffer: RawBuffer,
        *,
        broker_url: str,
        queue_name: str,
        queue_max_length: int,
        transport_options: dict[str, Any] | None = None,
        exchange: str = EVENT_EXCHANGE,
    ) -> None:
        self.buffer = buffer
        self.broker_url = broker_url
        self.transport_options = transport_options or {}
        self.ready = threading.Event()
        self.counters = {
            "received": 0,
            "bytes": 0,
            "dropped": 0,
            "reconnects": 0,
            "acked": 0,
            "stale_acks": 0,
            "undecodable": 0,
        }
        # Declared as Celery declares it (durable topic), else the declare fails.
        self.queue = Queue(
            queue_name,
            Exchange(exchange, type="topic", durable=True),
            routing_key="#",
            durable=True,
            auto_delete=False,
            queue_arguments={"x-max-length": queue_max_length, "x-overflow": "drop-head"},
        )
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._pending_acks: list[int] = []
        self._ack_floor = 0  # every delivery tag <= this one is acked
        self._acked_ahead: set[int] = set()  # acked one by one, past a gap

    def ack(self, tags: list[int]) -> None:
        # py-amqp channels are not thread-safe: only queue the tags for the receiver thread.
        with self._ack_lock:
            self._pending_acks.extend(tags)

    def run(self, stop: threading.Event) -> None:
        backoff = _Backoff()
        while not stop.is_set():
            connection = Connection(
                self.broker_url,
                heartbeat=self.heartbeat,
                transport_options=self.transport_options,
            )
            errors: tuple[type[BaseException], ...] = (
                *connection.connection_errors,
                *connection.channel_errors,
                OSError,
            )
            try:
                self._session(connection, stop, backoff)
            except errors as exc:
                self.ready.clear()
                if stop.is_set():
                    break
                self.counters["reconnects"] += 1
                logger.warning(
                    "RabbitMQ event queue %s on %s lost (%s: %s); reconnecting in %.1f s",
                    self.queue.name,
                    connection.as_uri(),
                    type(exc).__name__,
                    exc,
                    backoff.delay,
                )
                backoff.wait(stop)
            finally:
                self.ready.clear()
                _close_quietly(connection)

    def _session(self, connection: Connection, stop: threading.Event, backoff: _Backoff) -> None:
        connection.connect()
        channel = connection.channel()
        consumer = Consumer(
            channel,
            queues=[self.queue],
            no_ack=False,
            prefetch_count=self.prefetch_count,
            on_message=self._on_message,
            on_decode_error=self._on_decode_error,
        )
        with self._ack_lock:
            self._generation += 1
            self._pending_acks = []
        self._ack_floor, self._acked_ahead = 0, set()
        consumer.consume()
        backoff.reset()
        self.ready.set()
        logger.info("consuming Celery events from %s on %s", self.queue.name, connection.as_uri())
        last_beat = last_flush = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            # Coalesced: a writer acking in small pieces must not cost one frame each.
            if self._pending_acks and now - last_flush >= self.ack_interval:
                self._flush_acks(channel)
                last_flush = now
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=self.drain_slice)
            if now - last_beat > 1.0:
                connection.heartbeat_check()
                last_beat = now
        # Tags the writer handed over before the stop; later ones are redelivered next run.
        self._flush_acks(channel)

    def _tag(self, message: Message) -> int:
        return (self._generation << _GENERATION_SHIFT) | int(message.delivery_tag or 0)

    def _on_message(self, message: Message) -> None:
        body = message.body
        data = body if isinstance(body, bytes) else str(body).encode("utf-8", "surrogatepass")
        self.counters["received"] += 1
        self.counters["bytes"] += len(data)
        raw = RawMessage(
            data,
            "amqp",
            time.time(),
            message.content_type or "",
            message.content_encoding or "",
            self._tag(message),
        )
        if not self.buffer.put(raw):
            # Only when prefetched messages outgrow the whole buffer; acked as lost, like
            # any buffer overflow, so the unacked tag does not hold the prefetch window.
            self.counters["dropped"] += 1
            self.ack([raw.ack_tag or 0])

    def _on_decode_error(self, message: Message, exc: Exception) -> None:
        # kombu fails before our callback only on a bad compression header; such a message
        # can never be read, and redelivering it would fail the same way forever.
        self.counters["undecodable"] += 1
        logger.warning("dropping an undecodable event message: %s", exc)
        self.ack([self._tag(message)])

    def _flush_acks(self, channel: Any) -> None:
        with self._ack_lock:
            tags, self._pending_acks = self._pending_acks, []
        current: set[int] = set()
        for tag in tags:
            if tag >> _GENERATION_SHIFT == self._generation:
                delivery_tag = tag & _DELIVERY_TAG_MASK
                if delivery_tag > self._ack_floor and delivery_tag not in self._acked_ahead:
                    current.add(delivery_tag)
            else:
                self.counters["stale_acks"] += 1
        if not current:
            return
        self.counters["acked"] += len(current)
        # One multiple=True ack covers the contiguous run above the floor; only tags past
        # a gap are acked one by one. The multiple ack must name a tag still unacked, or
        # RabbitMQ closes the channel with "unknown delivery tag".
        floor, last_unacked = self._ack_floor, 0
        while floor + 1 in current or floor + 1 in self._acked_ahead:
            floor += 1
            if floor in current:
                last_unacked = floor
                current.discard(floor)
            else:
                self._acked_ahead.discard(floor)
        if last_unacked:
            channel.basic_ack(last_unacked, multiple=True)
        for delivery_tag in sorted(current):
            channel.basic_ack(delivery_tag)
            self._acked_ahead.add(delivery_tag)
        self._ack_floor = floor


def _close_quietly(connection: Connection) -> None:
    # Closing a connection the broker already dropped raises; there is nothing left to do.
    try:
        connection.release()
    except Exception as exc:
        logger.debug("closing the RabbitMQ connection failed: %s", exc)
