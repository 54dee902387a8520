"""CPU per API request: what one request costs the web process and PostgreSQL.

The load target (``api_load.py``: 200 requests/s with the collector ingesting, on two
cores) is a CPU budget before it is a latency one: at 200 requests/s every millisecond of
CPU per request is a fifth of a core. This runs the real server (uvicorn, one process)
against a database already filled (``api.py --rows N`` or ``manage.py fill_history``),
sends ``--requests`` sequential requests of each kind over one keep-alive connection, and
reads the CPU time the server process and the PostgreSQL backends serving it spent
(``/proc/<pid>/stat``), per request. Nothing else should run against that database.

    .venv/bin/python bench/api_cpu.py --database-url postgres://postgres@127.0.0.1:5432/big
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import Client, bench_token, server_env, wait_ready  # noqa: E402
from bench.pgdb import connect  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TICKS = os.sysconf("SC_CLK_TCK")
KINDS: list[tuple[str, str]] = [
    ("/healthz (floor)", "/healthz"),
    ("v1 first page", "/api/v1/tasks/"),
    ("v1 state=FAILURE", "/api/v1/tasks/?state=FAILURE"),
    ("v1 from=1h", "/api/v1/tasks/?from=1h"),
    ("flower /api/tasks?limit=100", "/api/tasks?limit=100"),
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def backend_pids(url: str, database: str) -> list[int]:
    with connect(url) as conn:
        return [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            )
        ]


def measure(client: Client, path: str, n: int, server: int, pg: list[int]) -> dict[str, float]:
    for _ in range(20):  # warm: connections in the pool, plan caches, capped totals
        client.conn.request("GET", path, headers=client.headers)
        client.conn.getresponse().read()
    web0, pg0, wall0 = cpu_seconds(server), sum(map(cpu_seconds, pg)), time.perf_counter()
    for _ in range(n):
        client.conn.request("GET", path, headers=client.headers)
        response = client.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:300]!r}")
    wall = time.perf_counter() - wall0
    web, pgcpu = cpu_seconds(server) - web0, sum(map(cpu_seconds, pg)) - pg0
    return {
        "web_ms": web / n * 1000,
        "pg_ms": pgcpu / n * 1000,
        "wall_ms": wall / n * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/console_api_bench"
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--label", default="", help="names this run in the output file")
    args = parser.parse_args()
    env = server_env(args.database_url)
    token = bench_token(env, "cpu")
    server_cmd = [sys.executable, "-m", "uvicorn", "console.asgi:application"]
    server = subprocess.Popen(
        [*server_cmd, "--port", str(args.port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT,
        env=env,
    )
    results: dict[str, dict[str, float]] = {}
    try:
        wait_ready(args.port, time.monotonic() + 60)
        client = Client(args.port, token)
        client.get("/api/v1/tasks/")  # opens the pool's connections before they are listed
        database = args.database_url.rsplit("/", 1)[1]
        pg = backend_pids(args.database_url, database)
        for label, path in KINDS:
            results[label] = measure(client, path, args.requests, server.pid, pg)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"api-cpu-{stamp}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print("\n| request | web CPU ms | PostgreSQL CPU ms | wall ms |\n|---|---|---|---|")
    for label, r in results.items():
        print(f"| {label} | {r['web_ms']:.2f} | {r['pg_ms']:.2f} | {r['wall_ms']:.2f} |")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
