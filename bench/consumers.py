"""The consumers under test, each started fresh per run: how to start one and count what it saw.

To benchmark another consumer, subclass ``Consumer`` (``command``, ``seen``; optionally
``setup``, ``prepare``, ``ready``, ``precise_end``, ``lag``) and add it to ``CONSUMERS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from bench import measure, pgdb

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH.parent
PROJECT_PYTHON = PROJECT / ".venv" / "bin" / "python"
FLOWER_VENV = BENCH / ".venv-flower"
FLOWER_REQUIREMENTS = BENCH / "requirements-flower.txt"
COLLECT_COMMAND = PROJECT / "tasks_admin" / "management" / "commands" / "collect.py"


class Unavailable(RuntimeError):
    """The consumer cannot run here (yet): skipped, and said so in the results."""


@dataclass
class Seen:
    count: int
    at: float  # when the answer arrived (the orchestrator's clock)
    latency: float  # how long the consumer took to answer


@dataclass
class Settings:
    broker: str
    database_url: str
    logs: Path
    console_command: list[str]
    console_env: dict[str, str]


class Consumer:
    name = "consumer"
    # Lag per event is known (bare: its own clock; console: recorded_at - event_at).
    has_lag = False
    # A line in the consumer's log that means Redis cut it off.
    disconnect_marker: str | None = None

    def __init__(self, settings: Settings, *, pin: int | None = None) -> None:
        self.settings = settings
        self.pin = pin
        self.proc: subprocess.Popen[bytes] | None = None
        self.subscription_id = 0  # its PSUBSCRIBE connection's id in CLIENT LIST
        self.paused = False
        self.log_path = settings.logs / f"{self.label}.log"

    @property
    def label(self) -> str:
        return self.name if self.pin is None else f"{self.name}+pin"

    # --- to override ---------------------------------------------------------------------

    def setup(self) -> None:
        """Once per benchmark invocation: install, create databases. Raise Unavailable."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path:
        return BENCH

    def prepare(self) -> None:
        """Before each run, with nothing running: reset whatever the last run left."""

    def ready(self, timeout: float) -> None:
        """After it subscribed: wait until counting works."""

    def seen(self) -> Seen:
        raise NotImplementedError

    def precise_end(self) -> float | None:
        """When the last event was applied, by the consumer's own record (None: poll time)."""
        return None

    def lag(self) -> dict:
        return {}

    def db_pids(self) -> list[int]:
        """Database backends doing the consumer's work, so their CPU is counted too."""
        return []

    def after_stop(self) -> dict:
        return {}

    # --- process control -----------------------------------------------------------------

    def start(self, run_id: str) -> None:
        self.log_path = self.settings.logs / f"{run_id}-{self.label}.log"
        cmd = self.command()
        if self.pin is not None:
            cmd = ["taskset", "-c", str(self.pin), *cmd]
        self.settings.logs.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            # Its own session: pause, resume and stop reach its children, and only them.
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.cwd(),
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        measure.remember(self.proc.pid)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        self.resume()  # a stopped process would hold SIGTERM until continued
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(5)
        # Children that outlived their parent are still in its process group; kill them now,
        # before the group id could ever be reused, and never touch it again.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        measure.forget(self.proc.pid)
        self.proc = None

    def log_disconnects(self) -> int | None:
        if self.disconnect_marker is None or not self.log_path.exists():
            return None
        return self.log_path.read_text(errors="replace").count(self.disconnect_marker)


class Bare(Consumer):
    """celery.events.Receiver with a handler that only counts: the ceiling."""

    name = "bare"
    has_lag = True
    disconnect_marker = "Failed to capture events"

    def status_path(self) -> Path:
        return self.log_path.with_suffix(".status.json")

    def command(self) -> list[str]:
        return [
            str(PROJECT_PYTHON),
            str(BENCH / "bare_receiver.py"),
            "--broker",
            self.settings.broker,
            "--status",
            str(self.status_path()),
        ]

    def _status(self) -> dict:
        try:
            return cast(dict, json.loads(self.status_path().read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def seen(self) -> Seen:
        return Seen(self._status().get("count", 0), time.time(), 0.0)

    def precise_end(self) -> float | None:
        return self._status().get("last_at") or None

    def after_stop(self) -> dict:
        status = self._status()
        return {
            "lag_p50": status.get("lag_p50"),
            "lag_p99": status.get("lag_p99"),
            "consumer_reconnects": max(status.get("connections", 1) - 1, 0),
        }


class Flower(Consumer):
    """Flower 2.2.0 from bench/.venv-flower; counts are flower_events_total from /metrics."""

    name = "flower"
    disconnect_marker = "Failed to capture events"

    def setup(self) -> None:
        digest = hashlib.sha256(FLOWER_REQUIREMENTS.read_bytes()).hexdigest()
        marker = FLOWER_VENV / ".requirements.sha256"
        if marker.exists() and marker.read_text() == digest:
            return
        print(f"creating {FLOWER_VENV} from {FLOWER_REQUIREMENTS.name} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(FLOWER_VENV)], check=True)
        subprocess.run(
            [str(FLOWER_VENV / "bin" / "pip"), "install", "-q", "-r", str(FLOWER_REQUIREMENTS)],
            check=True,
            timeout=600,
        )
        marker.write_text(digest)

    def command(self) -> list[str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        return [
            str(FLOWER_VENV / "bin" / "celery"),
            "-b",
            self.settings.broker,
            "flower",
            f"--port={self.port}",
            "--address=127.0.0.1",
            "--max_tasks=200000",
        ]

    def env(self) -> dict[str, str]:
        # Flower 2.x answers /api and /metrics with 401 unless this is set.
        return {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}

    def ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.seen()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("Flower's /metrics did not answer")

    def seen(self) -> Seen:
        start = time.time()
        # While Flower catches up on a backlog /metrics can take tens of seconds to answer.
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=120) as response:
            text = response.read().decode()
        end = time.time()
        count = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("flower_events_total{")
        )
        return Seen(int(count), end, end - start)

    def cwd(self) -> Path:
        return self.settings.logs


class Console(Consumer):
    """Our collector (manage.py collect) in the project venv, writing to the bench database."""

    name = "console"
    has_lag = True
    disconnect_marker = "event subscription on"

    def setup(self) -> None:
        if not COLLECT_COMMAND.exists():
            raise Unavailable(f"{COLLECT_COMMAND.relative_to(PROJECT)} does not exist yet")
        pgdb.ensure_database(self.settings.database_url)
        help_run = subprocess.run(
            [str(PROJECT_PYTHON), "manage.py", "collect", "--help"],
            cwd=PROJECT,
            env=self.env(),
            capture_output=True,
            timeout=120,
        )
        if help_run.returncode != 0:
            raise Unavailable(f"manage.py collect --help failed: {help_run.stderr.decode()[-500:]}")
        subprocess.run(
            [str(PROJECT_PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=PROJECT,
            env=self.env(),
            check=True,
            timeout=600,
        )
        self.db = pgdb.connect(self.settings.database_url)

    def command(self) -> list[str]:
        return [str(PROJECT_PYTHON), *self.settings.console_command]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "DJANGO_SECRET_KEY": "bench-only-not-a-secret",
            "DATABASE_URL": self.settings.database_url,
            "CELERY_BROKER_URL": self.settings.broker,
            **self.settings.console_env,
        }

    def cwd(self) -> Path:
        return PROJECT

    def prepare(self) -> None:
        pgdb.truncate(self.db)

    def seen(self) -> Seen:
        start = time.time()
        count = pgdb.event_count(self.db)
        end = time.time()
        return Seen(count, end, end - start)

    def precise_end(self) -> float | None:
        return pgdb.last_recorded_at(self.db)

    def lag(self) -> dict:
        return pgdb.lag_percentiles(self.db)

    def db_pids(self) -> list[int]:
        return pgdb.backend_pids(self.db)

    def start(self, run_id: str) -> None:
        super().start(run_id)
        self.node = f"{socket.gethostname()}:{self.pid}"

    def after_stop(self) -> dict:
        """The collector's own counters, from its final CollectorStatus row."""
        counters = pgdb.collector_counters(self.db, self.node)
        pipeline = counters.get("pipeline", {})
        return {
            "consumer_reconnects": counters.get("receiver", {}).get("reconnects"),
            "buffer_dropped": pipeline.get("dropped_buffer_full"),
            "buffer_high_water_mb": round(pipeline.get("buffer_high_water_bytes", 0) / 2**20, 1),
        }


CONSUMERS: dict[str, type[Consumer]] = {"bare": Bare, "flower": Flower, "console": Console}


def make(spec: str, settings: Settings, *, pin_core: int) -> Consumer:
    """``name`` or ``name+pin`` (pinned with taskset to ``pin_core``, as the baseline did)."""
    name, _, suffix = spec.partition("+")
    if name not in CONSUMERS or suffix not in ("", "pin"):
        raise SystemExit(f"unknown consumer {spec!r}; known: {', '.join(CONSUMERS)} (+pin)")
    return CONSUMERS[name](settings, pin=pin_core if suffix == "pin" else None)
