"""Live-update fan-out benchmark: N websocket clients on one web process while tasks flow.

    .venv/bin/python bench/live.py                       # 100 clients, 1,000 tasks/s, 60 s
    .venv/bin/python bench/live.py --clients 20 --tasks-per-second 200 --duration 15

Starts the collector (manage.py collect) and one uvicorn process against a benchmark
database, signs in over HTTP, opens ``--clients`` websockets on the dashboard (its group
gets a message every tick while tasks flow) plus one task list (so the collector renders
rows, as it does when anybody has the tasks page open), then publishes synthetic task
events (3 per task: received, started, succeeded/failed) to Redis at the given rate.

Every push carries the tick's sequence number and the commit time of the newest change in
it (``<span id="live-tick">``). Per client and tick: received - committed = delivery
latency. Printed: ticks the collector sent to the dashboard group, ticks each client
missed, latency p50/p99/max over all (client, tick), and the CPU of collector and web.
Results go to bench/results/live-<stamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import websockets

from bench import generator, pgdb

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = PROJECT / ".venv" / "bin" / "python"
RESULTS = PROJECT / "bench" / "results"
TICK = re.compile(r'id="live-tick" hidden data-tick="(\d+)" data-committed-at="([0-9.]*)"')
TARGET_SECONDS = 1.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--tasks-per-second", type=float, default=1000)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/console_live_bench"
    )
    p.add_argument("--redis-db", type=int, default=14, help="broker and channel layer database")
    return p.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(args: argparse.Namespace) -> dict[str, str]:
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DJANGO_SECRET_KEY": "bench-only-not-a-secret",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": "bench-live",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def manage(env: dict[str, str], *command: str) -> str:
    done = subprocess.run(
        [str(PYTHON), "manage.py", *command], cwd=PROJECT, env=env, capture_output=True, check=True
    )
    return done.stdout.decode()


def sign_in(base: str, username: str, password: str) -> str:
    """Form login as a browser does; returns the Cookie header for websockets."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
    ).encode()
    request = urllib.request.Request(
        f"{base}/login/", data=form, headers={"Referer": f"{base}/login/"}
    )
    opener.open(request).read()
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, "sign-in failed"
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


async def client(
    url: str, origin: str, cookie: str, stop: asyncio.Event, seen: dict[int, float]
) -> None:
    """Record, for each tick, when this client got it (first frame carrying it)."""
    async with websockets.connect(
        url, additional_headers={"Cookie": cookie, "Origin": origin}, max_size=None
    ) as ws:
        while not stop.is_set():
            try:
                frame = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.time()
            for tick, committed in TICK.findall(frame):
                if committed:
                    seen.setdefault(int(tick), now - float(committed))


async def run_clients(
    args: argparse.Namespace, base: str, cookie: str, publish: Any
) -> tuple[list[dict[int, float]], dict[str, Any]]:
    ws_base = base.replace("http://", "ws://")
    stop = asyncio.Event()
    seen: list[dict[int, float]] = [{} for _ in range(args.clients)]
    tasks = [
        asyncio.create_task(client(f"{ws_base}/ws/dashboard/", base, cookie, stop, seen[i]))
        for i in range(args.clients)
    ]
    # One task list open, as in real use: the collector then renders rows every tick.
    list_seen: dict[int, float] = {}
    tasks.append(asyncio.create_task(client(f"{ws_base}/ws/tasks/", base, cookie, stop, list_seen)))
    await asyncio.sleep(3)  # connected, snapshots sent, watch entries registered
    stats = await asyncio.to_thread(publish)
    await asyncio.sleep(3)  # the last ticks arrive
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return seen, stats


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    args = parse_args()
    env = environment(args)
    pgdb.ensure_database(args.database_url)
    manage(env, "migrate", "--noinput", "-v", "0")
    with pgdb.connect(args.database_url) as conn:
        pgdb.truncate(conn)
    password = re.search(r"password (\S+)", manage(env, "create_demo_user", "--username", "bench"))
    assert password
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = RESULTS / "live-logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = {
        "collector": subprocess.Popen(
            [str(PYTHON), "manage.py", "collect"],
            cwd=PROJECT,
            env=env,
            stdout=(logs / "collector.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
        "web": subprocess.Popen(
            [
                str(PYTHON),
                "-m",
                "uvicorn",
                "console.asgi:application",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=PROJECT,
            env={**env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1"},
            stdout=(logs / "web.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the web did not start; see bench/results/live-logs") from None
                time.sleep(0.3)
        time.sleep(3)  # the collector subscribes
        cookie = sign_in(base, "bench", password[1])
        events = int(args.tasks_per_second * args.duration * 3)
        stream = generator.build_stream(events=events, db=args.redis_db)
        cpu = {name: psutil.Process(p.pid) for name, p in procs.items()}
        before = {name: sum(proc.cpu_times()[:2]) for name, proc in cpu.items()}

        def publish() -> dict[str, Any]:
            publisher = generator.Publisher()
            try:
                return publisher.publish(stream, rate=args.tasks_per_second * 3).as_dict()
            finally:
                publisher.close()

        started = time.time()
        seen, published = asyncio.run(run_clients(args, base, cookie, publish))
        elapsed = time.time() - started
        cores = {
            name: round((sum(proc.cpu_times()[:2]) - before[name]) / elapsed, 2)
            for name, proc in cpu.items()
        }
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ticks = set().union(*(s.keys() for s in seen))
    latencies = [v for s in seen for v in s.values()]
    missed = [len(ticks - s.keys()) for s in seen]
    result = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "clients": args.clients,
        "tasks_per_second": args.tasks_per_second,
        "duration": args.duration,
        "published": published,
        "ticks_with_commits": len(ticks),
        "clients_missing_any_tick": sum(1 for m in missed if m),
        "ticks_missed_total": sum(missed),
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p99_s": percentile(latencies, 0.99),
        "latency_max_s": max(latencies) if latencies else None,
        "within_target_share": (
            sum(1 for v in latencies if v <= TARGET_SECONDS) / len(latencies) if latencies else None
        ),
        "cores": cores,
        # The slowest ticks: (tick, median and worst delivery over clients): a slow tick
        # hits every client alike (collector side); one slow client would not.
        "slowest_ticks": sorted(
            (
                (tick, round(percentile(by_tick, 0.5) or 0, 3), round(max(by_tick), 3))
                for tick in ticks
                for by_tick in [[s[tick] for s in seen if tick in s]]
            ),
            key=lambda t: -t[2],
        )[:8],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"live-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {path.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
