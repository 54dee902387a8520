"""API load: 200 requests/s on the task list for 60 s while the collector ingests events.

Starts, against ``--database-url`` (already filled, e.g. by ``manage.py fill_history``):
the real server (uvicorn, ``--server-workers`` processes, default 2: one per core, as
docker-compose.yml runs it; throttling off), ``manage.py collect`` on the same
database and a publisher of synthetic task events (``bench/generator.py``) into
``--broker-url`` at ``--event-rate`` events/s. Once the collector is seen writing, this
process sends ``--rate`` requests/s to ``/api/v1/tasks/`` (first page and single filters,
with a token) for ``--duration`` s over loopback.

Pacing is open-loop: request i is due at start + i / rate whatever happened to the ones
before, and its latency is counted from when it was due, so a slow server shows up as
latency (and a queue of requests waiting for a free connection) instead of as a lower
rate. Passes with no errors, p99 under ``--p99-ms`` and at least 95 % of the rate.

    .venv/bin/python bench/api_load.py --database-url postgres://postgres@127.0.0.1:5432/big
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import generator  # noqa: E402
from bench.api import bench_token, manage, percentiles, server_env, wait_ready  # noqa: E402
from bench.pgdb import connect  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REQUEST_TIMEOUT = 10.0


# --- the requests -----------------------------------------------------------------------


def request_mix(url: str) -> list[tuple[str, dict[str, str], float]]:
    """(kind, query, weight): the first page, and each single filter with values the
    database holds, so every filter finds rows."""
    with connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM tasks_admin_tasknametotal WHERE name <> '' "
                "ORDER BY received DESC LIMIT 5"
            )
        ]
        workers = [
            r[0]
            for r in conn.execute(
                "SELECT hostname FROM tasks_admin_workerrecord ORDER BY hostname LIMIT 5"
            )
        ]
        queues = [
            r[0]
            for r in conn.execute("SELECT name FROM tasks_admin_queuerecord ORDER BY name LIMIT 5")
        ]
    if not (names and workers and queues):
        raise SystemExit("the database has no task names, workers or queues: fill it first")
    mix: list[tuple[str, dict[str, str], float]] = [("first page", {}, 0.4)]
    mix += [
        ("state=FAILURE", {"state": "FAILURE"}, 0.1),
        ("state=SUCCESS", {"state": "SUCCESS"}, 0.05),
    ]
    mix += [("name=", {"name": n}, 0.15 / len(names)) for n in names]
    mix += [("worker=", {"worker": w}, 0.1 / len(workers)) for w in workers]
    mix += [("queue=", {"queue": q}, 0.1 / len(queues)) for q in queues]
    mix += [("from=1h", {"from": "1h"}, 0.1)]
    return mix


@dataclass
class Result:
    kind: str
    due: float  # monotonic time the request was due
    latency: float  # done - due: includes any wait for a free connection
    status: int  # 0: no response (connection error, timeout)
    error: str = ""


@dataclass
class Load:
    port: int
    token: str
    rate: float
    warmup: float  # seconds sent at the rate first, not measured (connections, caches)
    duration: float
    connections: int
    mix: list[tuple[str, dict[str, str], float]]
    results: list[Result] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> list[Result]:
        """Open-loop: a scheduler hands each request out when due; ``connections`` threads,
        each with its own keep-alive connection, send them."""
        due: queue.Queue[tuple[str, str, float] | None] = queue.Queue()
        threads = [
            threading.Thread(target=self._sender, args=(due,), daemon=True)
            for _ in range(self.connections)
        ]
        for thread in threads:
            thread.start()
        rng = random.Random(1)
        kinds = [
            (kind, "/api/v1/tasks/?" + urlencode(q) if q else "/api/v1/tasks/")
            for kind, q, _ in self.mix
        ]
        weights = [w for _, _, w in self.mix]
        total = int(self.rate * (self.warmup + self.duration))
        start = time.monotonic() + 0.1
        measured_from = start + self.warmup
        for i in range(total):
            at = start + i / self.rate
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            kind, path = rng.choices(kinds, weights)[0]
            due.put((kind, path, at))
        for _ in threads:
            due.put(None)
        # A server that fell behind leaves a backlog: give it REQUEST_TIMEOUT to catch up,
        # then what is still queued is not sent but counted as unanswered (bounded runtime).
        drain_until = time.monotonic() + REQUEST_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(drain_until - time.monotonic(), 0))
        self._stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT + 1)
        return [r for r in self.results if r.due >= measured_from]

    def _sender(self, due: queue.Queue[tuple[str, str, float] | None]) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        conn: http.client.HTTPConnection | None = None
        while (item := due.get()) is not None:
            kind, path, at = item
            if self._stop.is_set():
                self._record(Result(kind, at, time.monotonic() - at, 0, "not sent: backlog"))
                continue
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                status, error = response.status, ""
                if status != 200:
                    error = body[:200].decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                status, error = 0, f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = None
            self._record(Result(kind, at, time.monotonic() - at, status, error))
        if conn is not None:
            conn.close()

    def _record(self, result: Result) -> None:
        with self._lock:
            self.results.append(result)


def summarise(results: list[Result], rate: float, p99_limit_ms: float) -> dict[str, Any]:
    errors = [r for r in results if r.status != 200]
    answered = [r for r in results if r.status != 0]
    first = min(r.due for r in results)
    last_done = max((r.due + r.latency for r in answered), default=first + 1)
    achieved = len(answered) / (last_done - first)
    overall = percentiles([r.latency for r in results])
    by_kind = {
        kind: percentiles([r.latency for r in results if r.kind == kind])
        for kind in sorted({r.kind for r in results})
    }
    verdict = {
        "no errors": not errors,
        f"p99 < {p99_limit_ms:g} ms": overall["p99_ms"] < p99_limit_ms,
        f"rate >= 95 % of {rate:g}/s": achieved >= 0.95 * rate,
    }
    return {
        "requests": len(results),
        "errors": len(errors),
        "error_samples": sorted({f"{r.status} {r.error}"[:200] for r in errors})[:5],
        "achieved_rate": achieved,
        "latency": overall,
        "by_kind": by_kind,
        "checks": verdict,
        "passed": all(verdict.values()),
    }


# --- where the CPU goes -------------------------------------------------------------------


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process with its children (uvicorn's workers; not
    for this process, whose children are the others), of every PostgreSQL process, and of
    the machine (busy, and stolen by the hypervisor)."""
    seconds: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            root = psutil.Process(pid)
            procs = [root] if pid == os.getpid() else [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        seconds[name] = sum(_own_cpu(proc) for proc in procs)
    seconds["postgresql"] = sum(
        _own_cpu(proc) for proc in psutil.process_iter(["name"]) if proc.info["name"] == "postgres"
    )
    machine = psutil.cpu_times()
    seconds["machine busy"] = sum(machine) - machine.idle - machine.iowait - machine.steal
    seconds["machine steal"] = machine.steal
    return seconds


def _own_cpu(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    return {k: round((after[k] - before[k]) / seconds, 3) for k in before if k in after}


# --- the processes around it -------------------------------------------------------------


def publish(broker_url: str, rate: float, seconds: float) -> None:
    """The event publisher (run as its own process: ``api_load.py --publish``)."""
    parts = urlsplit(broker_url)
    db = int(parts.path.lstrip("/") or 0)
    stream = generator.build_stream(events=int(rate * seconds), db=db, seed=int(time.time()))
    publisher = generator.Publisher(host=parts.hostname or "127.0.0.1", port=parts.port or 6379)
    try:
        publisher.publish(stream, rate=rate)
    except KeyboardInterrupt:
        pass  # the load is over: the parent stops the publisher with SIGINT
    finally:
        publisher.close()


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A child process stopped (SIGINT, then SIGKILL after 20 s) however the run ends."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 20 s: killed", flush=True)
                proc.kill()
                proc.wait()


def newest_task(url: str) -> dt.datetime | None:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT first_seen_at FROM tasks_admin_taskrecord ORDER BY first_seen_at DESC LIMIT 1"
        ).fetchone()
    return row[0] if row else None


def events_written(url: str, since: dt.datetime, until: dt.datetime) -> int:
    """Task events the collector wrote in [since, until) (recorded_at is its clock)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks_admin_taskevent WHERE recorded_at >= %s "
            "AND recorded_at < %s",
            [since, until],
        ).fetchone()
    return int(row[0]) if row else 0


def wait_ingesting(url: str, since: dt.datetime, deadline: float) -> None:
    while time.monotonic() < deadline:
        newest = newest_task(url)
        if newest is not None and newest > since:
            return
        time.sleep(0.5)
    raise SystemExit("the collector wrote no task from the publisher in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/console_api_bench"
    )
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/14", help="events go here")
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load measured")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of load first, not measured"
    )
    parser.add_argument("--event-rate", type=float, default=300.0, help="task events/s published")
    parser.add_argument(
        "--connections", type=int, default=32, help="client connections (max concurrency)"
    )
    parser.add_argument("--p99-ms", type=float, default=300.0)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="uvicorn processes (default 2: one per core of a 2-core box, as docker compose "
        "runs it; one process runs Python on one core at a time)",
    )
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(args.broker_url, args.event_rate, args.duration)
        return
    # Whatever happens (a hung server, a collector that never starts), stop in bounded time.
    budget = int(args.warmup + args.duration + 240)

    def over_budget(signum: int, frame: Any) -> None:
        raise SystemExit(f"still running after {budget} s: stopped")  # children stop on the way out

    signal.signal(signal.SIGALRM, over_budget)
    signal.alarm(budget)
    summary = run(args)
    signal.alarm(0)
    report(summary, args)
    sys.exit(0 if summary["passed"] else 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with connect(args.database_url) as conn:
        tasks = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = 'tasks_admin_taskrecord'"
        ).fetchone()[0]
    env = server_env(args.database_url)
    env.pop("CELERY_BROKER_URL", None)  # the collector gets --broker; nothing else publishes
    manage(env, "migrate", "--verbosity", "0")
    token = bench_token(env, "load")
    mix = request_mix(args.database_url)
    python = sys.executable
    server_cmd = [
        python,
        "-m",
        "uvicorn",
        "console.asgi:application",
        "--port",
        str(args.port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(args.server_workers),
    ]
    collect_cmd = [python, "manage.py", "collect", "--broker", args.broker_url]
    # The publisher runs through the warm-up too: up to 60 s for the collector to start.
    publish_cmd = [
        python,
        str(Path(__file__)),
        "--publish",
        "--broker-url",
        args.broker_url,
        "--event-rate",
        str(args.event_rate),
        "--duration",
        str(args.warmup + args.duration + 90),
    ]
    with (
        process(server_cmd, env, "server") as server,
        process(collect_cmd, env, "collector") as collector,
    ):
        wait_ready(args.port, time.monotonic() + 60)
        since = dt.datetime.now(dt.UTC)
        time.sleep(3)  # the collector subscribes before the first event is published
        with process(publish_cmd, env, "publisher") as publisher:
            wait_ingesting(args.database_url, since, time.monotonic() + 60)
            print(
                f"collector ingesting; {args.rate:g} requests/s for {args.duration:g} s", flush=True
            )
            load = Load(
                args.port, token, args.rate, args.warmup, args.duration, args.connections, mix
            )
            window_start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=args.warmup)
            pids = {
                "server": server.pid,
                "collector": collector.pid,
                "publisher": publisher.pid,
                "load client": os.getpid(),
            }
            cpu_before: dict[str, float] = {}
            measuring = threading.Timer(
                args.warmup, lambda: cpu_before.update(cpu_seconds(pids), at=time.monotonic())
            )
            measuring.start()
            results = load.run()
            measuring.cancel()
            cpu_after = {**cpu_seconds(pids), "at": time.monotonic()}
            window_end = dt.datetime.now(dt.UTC)
            if publisher.poll() is not None:
                raise SystemExit("the publisher stopped before the load ended")
    summary = summarise(results, args.rate, args.p99_ms)
    summary["tasks_in_database"] = tasks
    if cpu_before:
        seconds = cpu_after.pop("at") - cpu_before.pop("at")
        summary["cores"] = cores_used(cpu_before, cpu_after, seconds)
    written = events_written(args.database_url, window_start, window_end)
    summary["collector_events_per_s"] = written / (window_end - window_start).total_seconds()
    return summary


def report(summary: dict[str, Any], args: argparse.Namespace) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"api-load-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), **summary}, indent=2, default=str))
    lat = summary["latency"]
    print(
        f"\n{summary['tasks_in_database']:,} tasks (estimate); {summary['requests']:,} requests, "
        f"{summary['errors']} errors, {summary['achieved_rate']:.1f} requests/s achieved; "
        f"collector took in {summary.get('collector_events_per_s', float('nan')):.0f} events/s"
    )
    print("\n| request | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
    for label, p in [("all", lat), *summary["by_kind"].items()]:
        cells = " | ".join(f"{p[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        print(f"| {label} | {p['n']} | {cells} |")
    if "cores" in summary:
        print(
            "\ncores used while measured: "
            + ", ".join(f"{name} {cores:.2f}" for name, cores in summary["cores"].items())
        )
    for sample in summary["error_samples"]:
        print(f"error: {sample}")
    for check, ok in summary["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}: {check}")
    print(f"{'PASSED' if summary['passed'] else 'FAILED'}; written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
