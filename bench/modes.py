"""One measured run: start a fresh consumer, offer a stream the way a mode says, follow its count.

drain      capacity: the consumer is SIGSTOPped, the stream piles up in Redis (pub/sub limit
           lifted), SIGCONT, time until everything is applied.
burst      loss: the whole stream unpaced at the publisher's top speed, default Redis limits.
sustained  keeping up: a fixed rate for a fixed time, default limits; loss, lag, tail.
history    sustained, for the console only, on top of N rows of task history (RSS flat?).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from bench import history, measure
from bench.consumers import Console, Consumer
from bench.generator import Publisher, PublishStats, Stream

POLL_SECONDS = 0.25


@dataclass
class Context:
    redis: redis.Redis
    redis_port: int
    settle: float
    stall: float
    rate: float
    history_rate: float
    burst_rate: float | None = None
    subscribe_timeout: float = 90.0


@dataclass
class Followed:
    """What polling saw until the count reached the target, stalled, or timed out."""

    seen: int = 0
    end_poll: float = 0.0  # answer time of the first poll that showed the final count
    outcome: str = ""
    max_poll_latency: float = 0.0
    max_rss_mb: float = 0.0
    max_backlog_mb: float = 0.0
    subscriber_ids: set[int] = field(default_factory=set)
    subscribed_at_end: bool = True

    @property
    def disconnects(self) -> int:
        """Every new subscription id is a reconnect; no subscription at the end, a cut-off."""
        return len(self.subscriber_ids) - 1 + (not self.subscribed_at_end)


def follow(
    ctx: Context,
    consumer: Consumer,
    *,
    expected: int,
    publishing: threading.Thread | None,
    timeout: float,
) -> Followed:
    got = Followed(subscriber_ids={consumer.subscription_id})
    last_change = time.monotonic()
    deadline = last_change + timeout
    while True:
        tick = time.monotonic()
        seen = consumer.seen()
        got.max_poll_latency = max(got.max_poll_latency, seen.latency)
        if seen.count != got.seen or not got.end_poll:
            got.seen, got.end_poll, last_change = seen.count, seen.at, time.monotonic()
        got.max_rss_mb = max(got.max_rss_mb, measure.tree_mb(consumer.pid, "VmRSS"))
        subscriptions = measure.subscribers_of(ctx.redis, consumer.pid)
        got.subscribed_at_end = bool(subscriptions)
        for client in subscriptions:
            got.subscriber_ids.add(int(client["id"]))
            got.max_backlog_mb = max(got.max_backlog_mb, int(client["omem"]) / 2**20)
        busy = publishing is not None and publishing.is_alive()
        now = time.monotonic()
        if got.seen >= expected and not busy:
            got.outcome = "complete"
        elif not consumer.alive():
            got.outcome = "consumer exited"
        elif not busy and now - last_change > ctx.stall:
            got.outcome = f"stalled {ctx.stall:.0f} s"
        elif now > deadline:
            got.outcome = "timeout"
        if got.outcome:
            return got
        time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - tick)))


class PublishThread(threading.Thread):
    def __init__(self, publisher: Publisher, stream: Stream, rate: float | None) -> None:
        super().__init__(name="publisher", daemon=True)
        self.publisher, self.stream, self.rate = publisher, stream, rate
        self.stats: PublishStats | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stats = self.publisher.publish(self.stream, rate=self.rate)
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def _finish(
    consumer: Consumer, got: Followed, *, began: float, expected: int, pub: PublishStats
) -> dict[str, Any]:
    precise = consumer.precise_end() if got.seen else None
    end = precise or got.end_poll
    seconds = end - began
    return {
        "expected": expected,
        "seen": got.seen,
        "loss_pct": round(100 * (1 - got.seen / expected), 2),
        "rate": round(got.seen / seconds) if seconds > 0 and got.seen else None,
        "rate_poll": round(got.seen / (got.end_poll - began)) if got.end_poll > began else None,
        "seconds": round(seconds, 3),
        "end_from": "consumer" if precise else "poll",
        "tail_s": round(end - pub.finished_at, 3),
        "outcome": got.outcome,
        "max_poll_latency_s": round(got.max_poll_latency, 3),
        "max_rss_mb": round(got.max_rss_mb, 1),
        "max_backlog_mb": round(got.max_backlog_mb, 1),
        "redis_disconnects": got.disconnects,
        **pub.as_dict(),
    }


def _timeout(expected: int, extra: float = 0.0) -> float:
    return 90 + expected / 1000 + extra


def drain(ctx: Context, consumer: Consumer, stream: Stream) -> dict[str, Any]:
    publisher = Publisher(port=ctx.redis_port)
    try:
        with measure.unlimited_pubsub(ctx.redis):
            consumer.pause()
            pub = publisher.publish(stream)
            before = measure.CpuSnapshot.take(consumer.pid, consumer.db_pids())
            resumed = time.time()
            consumer.resume()
            got = follow(
                ctx,
                consumer,
                expected=stream.task_events,
                publishing=None,
                timeout=_timeout(stream.task_events),
            )
            after = measure.CpuSnapshot.take(consumer.pid, consumer.db_pids())
    finally:
        consumer.resume()
        publisher.close()
    result = _finish(consumer, got, began=resumed, expected=stream.task_events, pub=pub)
    result["tail_s"] = None  # the backlog was published before the clock started
    return {**result, **before.delta(after)}


def live(ctx: Context, consumer: Consumer, stream: Stream, *, rate: float | None) -> dict[str, Any]:
    """burst (rate None) and sustained: publish while the consumer runs, default limits."""
    publisher = Publisher(port=ctx.redis_port)
    try:
        before = measure.CpuSnapshot.take(consumer.pid, consumer.db_pids())
        thread = PublishThread(publisher, stream, rate)
        if rate is None:
            thread.run()  # in this thread: nothing polls, so the burst is as fast as it gets
            thread_arg = None
        else:
            thread.start()
            thread_arg = thread
        extra = stream.task_events / rate if rate else 0.0
        got = follow(
            ctx,
            consumer,
            expected=stream.task_events,
            publishing=thread_arg,
            timeout=_timeout(stream.task_events, extra),
        )
        if thread_arg is not None:
            thread.join()
        after = measure.CpuSnapshot.take(consumer.pid, consumer.db_pids())
    finally:
        publisher.close()
    if thread.error is not None:
        raise thread.error
    assert thread.stats is not None
    result = _finish(
        consumer, got, began=thread.stats.started_at, expected=stream.task_events, pub=thread.stats
    )
    if consumer.has_lag:
        result.update(consumer.lag())
    return {**result, **before.delta(after)}


def run_one(
    ctx: Context,
    consumer: Consumer,
    *,
    mode: str,
    stream: Stream,
    run_id: str,
    history_rows: int | None = None,
) -> dict[str, Any]:
    """A fresh consumer, one mode, then the consumer is stopped whatever happens."""
    extra: dict[str, Any] = {}
    consumer.prepare()
    if history_rows is not None:
        assert isinstance(consumer, Console)
        extra = {
            "history_rows": history_rows,
            "fill_seconds": round(history.fill(consumer.db, rows=history_rows), 1),
        }
    consumer.start(run_id)
    try:
        subscription = measure.wait_subscribed(
            ctx.redis, consumer.pid, timeout=ctx.subscribe_timeout, alive=consumer.alive
        )
        consumer.subscription_id = int(subscription["id"])
        consumer.ready(timeout=ctx.subscribe_timeout)
        time.sleep(ctx.settle)
        if mode == "drain":
            result = drain(ctx, consumer, stream)
        elif mode == "burst":
            result = live(ctx, consumer, stream, rate=ctx.burst_rate)
        elif mode == "sustained":
            result = live(ctx, consumer, stream, rate=ctx.rate)
        elif mode == "history":
            result = live(ctx, consumer, stream, rate=ctx.history_rate)
        else:
            raise ValueError(mode)
        seen = result["seen"]
        result["peak_rss_mb"] = round(measure.tree_mb(consumer.pid, "VmHWM"), 1)
        cpu, db_cpu = result["cpu_s"], result["db_cpu_s"]
        known = seen and cpu is not None
        result["cpu_per_event_us"] = round(1e6 * cpu / seen, 1) if known else None
        with_db = round(1e6 * (cpu + db_cpu) / seen, 1) if known else None
        result["cpu_with_db_per_event_us"] = with_db
        result["log_disconnects"] = consumer.log_disconnects()
    finally:
        consumer.stop()
    result.update(
        {k: v for k, v in consumer.after_stop().items() if v is not None or k not in result}
    )
    if mode == "drain":
        # The backlog was held back on purpose: its age says nothing about the consumer.
        result.pop("lag_p50", None)
        result.pop("lag_p99", None)
    return {**extra, **result}
