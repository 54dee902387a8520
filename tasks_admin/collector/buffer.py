"""The bounded hand-off between the receiver thread and the writer.

The receiver only appends raw bytes here and never waits on the database: Redis drops a
pub/sub subscriber whose output buffer passes 32 MB, and RabbitMQ's default event queue
discards what waits 5 s, so a receiver that blocks loses events silently. The bound is in
bytes; past it the newest messages are dropped and counted, never the process.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RawMessage:
    """What a receiver read, not yet framed, decoded or validated.

    ``kind`` says what ``data`` is: ``"redis-stream"`` a chunk of the raw pub/sub byte
    stream (cut into messages by the decoder; ``stream`` set on the first chunk of a new
    connection carries the RESP reader to continue with), ``"redis"`` one kombu JSON
    envelope with a base64 body, ``"amqp"`` one message body with ``content_type``.
    ``ack_tag`` is the broker's delivery tag where the message must be acked after commit.
    """

    data: bytes
    kind: str
    received_at: float
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    ack_tag: int | None = None
    stream: Any = None


class RawBuffer:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[RawMessage] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self.dropped = 0
        self.high_water_bytes = 0

    def put(self, message: RawMessage) -> bool:
        """Append without blocking; False (and counted) when the buffer is full."""
        size = len(message.data)
        with self._cond:
            if self._bytes + size > self.max_bytes:
                self.dropped += 1
                return False
            self._items.append(message)
            self._bytes += size
            if self._bytes > self.high_water_bytes:
                self.high_water_bytes = self._bytes
            self._cond.notify()
        return True

    def take(
        self, max_items: int, wait: float, *, max_bytes: int | None = None, linger: float = 0.0
    ) -> list[RawMessage]:
        """Up to ``max_items`` messages (and about ``max_bytes``), or ``[]`` after ``wait``.

        With ``linger``, a batch that is not full yet waits that long after its first
        message for more: a handful of larger transactions costs far less than many tiny
        ones, for a bounded delay.
        """
        now = time.monotonic()
        deadline = now + wait
        batch: list[RawMessage] = []
        size = 0
        with self._cond:
            while not self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)
            close_at = time.monotonic() + linger
            while True:
                while self._items and len(batch) < max_items:
                    if max_bytes is not None and batch and size >= max_bytes:
                        break
                    message = self._items.popleft()
                    self._bytes -= len(message.data)
                    size += len(message.data)
                    batch.append(message)
                full = len(batch) >= max_items or (max_bytes is not None and size >= max_bytes)
                remaining = close_at - time.monotonic()
                if full or remaining <= 0:
                    return batch
                self._cond.wait(remaining)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def backlog_seconds(self) -> float:
        """How long the oldest waiting message has waited (0 when empty)."""
        with self._cond:
            oldest = self._items[0].received_at if self._items else None
        return max(0.0, time.time() - oldest) if oldest is not None else 0.0
