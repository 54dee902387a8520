"""What a run measures besides counts: CPU, memory, box noise, Redis subscribers and limits."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import psutil
import redis

RESULTS = Path(__file__).resolve().parent / "results"
# Where the original pub/sub limit is kept while drain mode lifts it, so a run killed hard
# (SIGKILL, power) still gets it restored by the next run.
LIMIT_BACKUP = RESULTS / ".pubsub-limit.saved"
# One file per consumer alive (named by pid, holding its start time), so a run killed hard
# leaves a note for the next one to end exactly those processes and nothing else.
RUNNING = RESULTS / ".running"


def remember(pid: int) -> None:
    RUNNING.mkdir(parents=True, exist_ok=True)
    (RUNNING / str(pid)).write_text(repr(psutil.Process(pid).create_time()))


def forget(pid: int) -> None:
    (RUNNING / str(pid)).unlink(missing_ok=True)


def reap_orphans() -> list[int]:
    """End the process groups of consumers a killed run left behind (same pid AND start time)."""
    reaped = []
    for note in RUNNING.glob("*") if RUNNING.exists() else []:
        pid = int(note.name)
        try:
            same = abs(psutil.Process(pid).create_time() - float(note.read_text())) < 0.01
        except (psutil.NoSuchProcess, ValueError):
            same = False
        if same:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)
            reaped.append(pid)
        note.unlink()
    return reaped


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def status_kb(pid: int, key: str) -> int:
    """A ``Vm*`` line of /proc/<pid>/status in kB (VmHWM: peak RSS; VmRSS: current)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def tree_mb(pid: int, key: str) -> float:
    return sum(status_kb(p.pid, key) for p in tree(pid)) / 1024


def service_procs(name: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == name]


@dataclass
class CpuSnapshot:
    at: float
    consumer: float
    database: float
    redis: float
    orchestrator: float
    busy: float

    @classmethod
    def take(cls, consumer_pid: int, db_pids: list[int]) -> CpuSnapshot:
        """``db_pids``: the PostgreSQL backends serving the consumer (its writes cost too)."""
        box = psutil.cpu_times()
        return cls(
            at=time.time(),
            consumer=cpu_seconds(tree(consumer_pid)),
            database=cpu_seconds([p for pid in db_pids for p in tree(pid)[:1]]),
            redis=cpu_seconds(service_procs("redis-server")),
            orchestrator=cpu_seconds([psutil.Process()]),
            busy=box.user + box.nice + box.system + box.irq + box.softirq + box.steal,
        )

    def delta(self, later: CpuSnapshot) -> dict:
        wall = later.at - self.at
        consumer = later.consumer - self.consumer
        database = later.database - self.database
        redis_cpu = later.redis - self.redis
        mine = later.orchestrator - self.orchestrator
        foreign = (later.busy - self.busy) - consumer - database - redis_cpu - mine
        wall = max(wall, 1e-6)
        # A consumer that exited during the run took its CPU times with it: unknown.
        known = consumer >= 0
        return {
            "cpu_s": round(consumer, 3) if known else None,
            "cores": round(consumer / wall, 3) if known else None,
            "db_cpu_s": round(database, 3),
            "db_cores": round(database / wall, 3),
            "redis_cpu_s": round(redis_cpu, 3),
            "publisher_cpu_s": round(mine, 3),
            "foreign_cpu_pct": round(100 * max(foreign, 0) / (wall * psutil.cpu_count()), 1)
            if known
            else None,
        }


def cpu_ref_ms() -> float:
    """A fixed pure-Python workload (JSON round trips and dict churn), best of 5, in ms.

    Compare it between runs of this benchmark to see how fast the shared box was; its scale
    is not the one of the baseline's calibrate.py.
    """
    event = {"type": "task-succeeded", "uuid": "x" * 36, "runtime": 0.01, "result": "'ok'" * 20}
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        state: dict = {}
        for i in range(40_000):
            decoded = json.loads(json.dumps(event))
            state[i % 5000] = decoded["runtime"] + i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


# --- Redis ---------------------------------------------------------------------------------


def client_list(r: redis.Redis) -> list[dict]:
    return cast(list[dict], r.client_list())


def local_ports(pid: int) -> set[int]:
    ports = set()
    for proc in tree(pid):
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.laddr:
                    ports.add(conn.laddr.port)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return ports


def subscribers_of(r: redis.Redis, pid: int) -> list[dict]:
    """The consumer's pattern subscriptions, matched by its own TCP ports (not by timing)."""
    ports = local_ports(pid)
    return [
        c
        for c in client_list(r)
        if int(c.get("psub", 0)) > 0 and int(c["addr"].rsplit(":", 1)[1]) in ports
    ]


def wait_subscribed(r: redis.Redis, pid: int, *, timeout: float, alive: Callable[[], bool]) -> dict:
    """Block until the consumer holds a PSUBSCRIBE; Redis drops events nobody listens to."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subs = subscribers_of(r, pid)
        if subs:
            return subs[0]
        if not alive():
            raise RuntimeError("the consumer exited before subscribing")
        time.sleep(0.1)
    raise TimeoutError(f"the consumer did not subscribe within {timeout:.0f} s")


def pubsub_limit(r: redis.Redis) -> str:
    value = cast(dict, r.config_get("client-output-buffer-limit"))["client-output-buffer-limit"]
    parts = value.split()
    i = parts.index("pubsub")
    return " ".join(parts[i : i + 4])


def restore_saved_limit(r: redis.Redis) -> str | None:
    """Put back a pub/sub limit a killed run left lifted."""
    if not LIMIT_BACKUP.exists():
        return None
    saved = LIMIT_BACKUP.read_text().strip()
    r.config_set("client-output-buffer-limit", saved)
    LIMIT_BACKUP.unlink()
    return saved


@contextmanager
def unlimited_pubsub(r: redis.Redis) -> Iterator[None]:
    """Let a stopped subscriber's backlog grow without Redis cutting it off; always restore."""
    original = pubsub_limit(r)
    RESULTS.mkdir(exist_ok=True)
    LIMIT_BACKUP.write_text(original)
    r.config_set("client-output-buffer-limit", "pubsub 0 0 0")
    try:
        yield
    finally:
        r.config_set("client-output-buffer-limit", original)
        LIMIT_BACKUP.unlink(missing_ok=True)


def box_info() -> dict:
    return {
        "cpus": psutil.cpu_count(),
        "cpu_model": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        ),
        "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": os.uname().release,
    }
