"""Real processes for integration tests: collectors and Celery workers as subprocesses.

They share the test database (so ``transactional_db`` tests see what they commit) and a
broker: Redis database 7 (its own pub/sub channel prefix, away from the demo's db 0) or
RabbitMQ's default vhost with per-test queue names.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from tasks_admin.models import CollectorStatus

ROOT = Path(__file__).resolve().parents[2]
# TEST_REDIS_URL / TEST_AMQP_URL let two test runs share a machine without seeing each
# other's events (another Redis database, another RabbitMQ vhost).
BROKERS = {
    "redis": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7"),
    "amqp": os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


class Cluster:
    """Starts processes against one broker and the test database; stops them all after."""

    def __init__(self, broker: str, tmp_path: Path) -> None:
        self.broker_kind = broker
        self.broker_url = BROKERS[broker]
        self.tmp_path = tmp_path
        self.suffix = uuid.uuid4().hex[:8]
        self.queue = f"it-{self.suffix}"
        self.event_queue = f"celeryev.it-{self.suffix}"
        self.procs: list[Proc] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "console.test_settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CONSOLE_EVENT_QUEUE": self.event_queue,
            "CONSOLE_ENABLE_EVENTS_INTERVAL": "2",
            "CONSOLE_INSPECT_INTERVAL": "3",
            "CONSOLE_QUEUE_SAMPLE_INTERVAL": "1",
            "CONSOLE_RECONCILE_INTERVAL": "1",
            "CONSOLE_RECONCILE_GRACE": "1",
            "CONSOLE_QUEUES": self.queue,
            "PYTHONUNBUFFERED": "1",
        }
        env.update(extra)
        return env

    def spawn(self, name: str, args: list[str], **env: str) -> Proc:
        proc = Proc(args, self.env(**env), self.tmp_path / f"{name}-{len(self.procs)}.log")
        self.procs.append(proc)
        return proc

    def collector(self, *extra_args: str, wait: bool = True, **env: str) -> Proc:
        proc = self.spawn("collector", [sys.executable, "manage.py", "collect", *extra_args], **env)
        if wait:
            self.wait_receiving(proc)
        return proc

    def wait_receiving(self, proc: Proc, timeout: float = 30.0) -> None:
        node = f"{socket.gethostname()}:{proc.pid}"

        def receiving() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"collector exited:\n{proc.log()}")
            status = CollectorStatus.objects.filter(node=node, role="active").first()
            return bool(status and status.counters.get("receiving"))

        wait_for(receiving, timeout)
        # Redis pub/sub has no backlog: give the subscription a moment to settle.
        time.sleep(0.3)

    def worker(self, name: str | None = None, *, concurrency: int = 2) -> tuple[Proc, str]:
        hostname = f"{name or 'w'}-{self.suffix}@{socket.gethostname()}"
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-E",
            "-Q",
            self.queue,
            "-c",
            str(concurrency),
            "-n",
            hostname,
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ]
        return self.spawn("worker", args), hostname

    def sender(self):
        """A producer app of the kind a monitored project has: JSON, sent events on."""
        from celery import Celery

        # Not the current app: shared tasks (the demo's) must keep resolving to console's.
        app = Celery(f"sender-{self.suffix}", broker=self.broker_url, set_as_current=False)
        app.conf.update(
            # Celery prefers CELERY_BROKER_URL from the environment to broker_url; the write
            # URL setting wins over it, so the sender publishes to this cluster's broker.
            broker_write_url=self.broker_url,
            task_serializer="json",
            accept_content=["json"],
            task_send_sent_event=True,
            task_default_queue=self.queue,
        )
        return app

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(signal.SIGKILL if proc.popen.poll() is None else signal.SIGTERM, 10)
        if self.broker_kind == "amqp":
            from kombu import Connection

            with Connection(self.broker_url) as conn:
                channel = conn.channel()
                for name in (self.queue, self.event_queue):
                    try:
                        channel.queue_delete(name)
                    except Exception:  # already gone is fine
                        channel = conn.channel()


def _use_broker(monkeypatch, settings, broker: str) -> None:
    # The console's actions publish to settings.CELERY_BROKER_URL; Celery's conf.broker_url
    # prefers the CELERY_BROKER_URL environment variable to an app's own setting (even
    # Celery(broker=...)). Both must name the cluster's broker, or this process's senders
    # and services publish to another broker than its workers and collector use.
    settings.CELERY_BROKER_URL = BROKERS[broker]
    monkeypatch.setenv("CELERY_BROKER_URL", BROKERS[broker])


@pytest.fixture(params=sorted(BROKERS))
def cluster(request, tmp_path, transactional_db, monkeypatch, settings) -> Iterator[Cluster]:
    _use_broker(monkeypatch, settings, request.param)
    cluster = Cluster(request.param, tmp_path)
    yield cluster
    cluster.stop_all()


@pytest.fixture
def redis_cluster(tmp_path, transactional_db, monkeypatch, settings) -> Iterator[Cluster]:
    _use_broker(monkeypatch, settings, "redis")
    cluster = Cluster("redis", tmp_path)
    yield cluster
    cluster.stop_all()


@pytest.fixture
def amqp_cluster(tmp_path, transactional_db, monkeypatch, settings) -> Iterator[Cluster]:
    _use_broker(monkeypatch, settings, "amqp")
    cluster = Cluster("amqp", tmp_path)
    yield cluster
    cluster.stop_all()
