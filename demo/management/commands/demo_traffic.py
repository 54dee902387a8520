"""Feed the broker a realistic mix of demo tasks at a steady rate until told to stop."""

import random
import signal
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import OperationalError

from demo import traffic


class Command(BaseCommand):
    help = "Submit demo tasks (see demo/traffic.py) at --rate per second for --duration seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rate", type=float, default=5.0, help="submissions per second")
        parser.add_argument(
            "--duration", type=float, default=0.0, help="seconds to run; 0 runs until stopped"
        )
        parser.add_argument("--seed", type=int, default=None, help="repeatable mix")

    def handle(self, *args: Any, **options: Any) -> None:
        rate: float = options["rate"]
        duration: float = options["duration"]
        if rate <= 0:
            raise CommandError("--rate must be above 0")
        if duration < 0:
            raise CommandError("--duration must be 0 (forever) or more")
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            counts, messages, errors, elapsed = self._run(
                stop=stop, rate=rate, duration=duration, rng=random.Random(options["seed"])
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        mix = ", ".join(f"{name} {n}" for name, n in counts.most_common())
        self.stdout.write(
            f"demo_traffic: {counts.total()} submissions ({messages} messages, {errors} errors) "
            f"in {elapsed:.1f} s: {mix or 'nothing sent'}"
        )

    def _run(
        self, *, stop: threading.Event, rate: float, duration: float, rng: random.Random
    ) -> tuple[Counter[str], int, int, float]:
        counts: Counter[str] = Counter()
        messages = errors = 0
        interval = 1.0 / rate
        started = time.monotonic()
        deadline = started + duration if duration else float("inf")
        next_at = started
        while not stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            if next_at > now:
                stop.wait(min(next_at, deadline) - now)
                continue
            scenario = traffic.pick(rng)
            try:
                messages += scenario.submit(rng)
                counts[scenario.name] += 1
            except OperationalError as exc:
                # The broker is away: say so and keep going; publishing retries on its own.
                errors += 1
                self.stderr.write(f"demo_traffic: {scenario.name} not sent: {exc}")
            # After a stall (broker away), resume the rate instead of bursting to catch up.
            next_at = max(next_at + interval, time.monotonic() - interval)
        return counts, messages, errors, time.monotonic() - started
