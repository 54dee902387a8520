"""A bare ``celery.events.Receiver`` that only counts task events: the ceiling for any consumer.

Runs in any venv with celery (no Django). Every 0.1 s it writes its status as JSON to
``--status`` (atomically): task events counted, the time of the last one, and how often
its connection was (re)established. When Redis cuts it off it reconnects after
``--retry-delay`` s, as Flower's event thread does (1 s). On SIGTERM it stops and adds lag
percentiles (arrival time minus the event's ``timestamp``, set at publish time).

    python bench/bare_receiver.py --broker redis://127.0.0.1:6379/15 --status /tmp/s.json
"""

import argparse
import json
import os
import signal
import threading
import time
from array import array

from celery import Celery


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Counter:
    def __init__(self, status_path: str) -> None:
        self.status_path = status_path
        self.count = 0
        self.last_at = 0.0
        self.connections = 0
        self.lags = array("d")
        self.stopping = threading.Event()

    def on_event(self, event: dict) -> None:
        if event["type"].startswith("task-"):
            now = time.time()
            self.count += 1
            self.last_at = now
            self.lags.append(now - event["timestamp"])

    def write(self, final: bool = False) -> None:
        status: dict = {
            "count": self.count,
            "last_at": self.last_at,
            "connections": self.connections,
            "pid": os.getpid(),
        }
        if final:
            lags = sorted(self.lags)
            status.update(lag_p50=percentile(lags, 0.5), lag_p99=percentile(lags, 0.99), final=True)
        tmp = f"{self.status_path}.tmp"
        with open(tmp, "w") as f:
            json.dump(status, f)
        os.replace(tmp, self.status_path)

    def write_loop(self) -> None:
        while not self.stopping.wait(0.1):
            self.write()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--retry-delay", type=float, default=1.0)
    args = parser.parse_args()

    counter = Counter(args.status)
    app = Celery(broker=args.broker)
    stop = threading.Event()
    current: list = []

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        for receiver in current:
            receiver.should_stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    writer = threading.Thread(target=counter.write_loop, daemon=True)
    writer.start()
    while not stop.is_set():
        try:
            with app.connection_for_read() as conn:
                receiver = app.events.Receiver(conn, handlers={"*": counter.on_event}, app=app)
                current[:] = [receiver]
                counter.connections += 1
                receiver.capture(limit=None, timeout=None, wakeup=True)
        except Exception as exc:  # what Flower does: log, wait, subscribe again
            print(f"Failed to capture events: {exc!r}; again in {args.retry_delay} s", flush=True)
            stop.wait(args.retry_delay)
    counter.stopping.set()
    writer.join()  # one writer at a time: both use the same temporary file
    counter.write(final=True)


if __name__ == "__main__":
    main()
