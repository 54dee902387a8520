"""API latency: /api/v1/tasks first page and single filters, Flower's /api/tasks?limit=100,
and a 1,000-page cursor walk (is the last page as fast as the first?).

Runs the real server (uvicorn, one process) against a dedicated database that it fills
with ``--rows`` synthetic tasks (a modest number: the 10-million-row fill is another
command's job; point ``--database-url`` at a database it filled and pass ``--rows 0``).
Requests go over one keep-alive HTTP connection from this process, one at a time.

    .venv/bin/python bench/api.py                       # 200,000 rows, 200 requests each
    .venv/bin/python bench/api.py --rows 0 --database-url postgres://.../big --requests 500
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgdb import connect, ensure_database  # noqa: E402

RESULTS = ROOT / "bench" / "results"
NAMES = [f"app.tasks.job_{i}" for i in range(40)]
WORKERS = [f"celery@worker-{i}" for i in range(8)]
QUEUES = ["celery", "mail", "reports", "billing"]

FILL_SQL = """
INSERT INTO tasks_admin_taskrecord (
    task_id, name, state, first_seen_at, last_event_at, updated_at, received_at, started_at,
    succeeded_at, failed_at, runtime, retries, worker, queue, exchange, routing_key, root_id,
    parent_id, group_id, args, kwargs, result, exception, exception_type, traceback,
    revoke_signal, reconciled, replay_of, event_keys, last_event_ts, last_event_clock
)
SELECT
    md5(%(seed)s || g::text)::uuid::text,
    (%(names)s::text[])[1 + g %% %(n_names)s],
    CASE WHEN g %% 50 = 0 THEN 'FAILURE' WHEN g %% 97 = 0 THEN 'RETRY'
         WHEN g %% 89 = 0 THEN 'STARTED' ELSE 'SUCCESS' END,
    t, t, t, t, t + interval '10 ms',
    CASE WHEN g %% 50 <> 0 THEN t + interval '200 ms' END,
    CASE WHEN g %% 50 = 0 THEN t + interval '200 ms' END,
    (g %% 1000) / 1000.0, 0,
    (%(workers)s::text[])[1 + g %% %(n_workers)s],
    (%(queues)s::text[])[1 + g %% %(n_queues)s],
    '', 'celery', '', '', '',
    '(' || g || ', ''user' || (g %% 5000) || '@example.com'')', '{}',
    CASE WHEN g %% 50 <> 0 THEN '''ok''' ELSE '' END,
    CASE WHEN g %% 50 = 0 THEN 'ValueError(''bad input ' || g || ''')' ELSE '' END,
    CASE WHEN g %% 50 = 0 THEN 'ValueError' ELSE '' END,
    '', '', false, '', '{}', 0, 0
FROM (
    SELECT g, %(end)s::timestamptz - (g * %(spacing)s) * interval '1 second' AS t
    FROM generate_series(%(start)s, %(stop)s) AS g
) AS s
ON CONFLICT DO NOTHING
"""


def fill(url: str, rows: int) -> None:
    if rows <= 0:
        return
    with connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM tasks_admin_taskrecord").fetchone()[0]
        if have >= rows:
            print(f"database already holds {have:,} tasks")
            return
        end = dt.datetime.now(dt.UTC)
        spacing = 7 * 86400 / rows  # spread over the last week
        batch = 50_000
        for start in range(have, rows, batch):
            conn.execute(
                FILL_SQL,
                {
                    "seed": "bench",
                    "names": NAMES,
                    "n_names": len(NAMES),
                    "workers": WORKERS,
                    "n_workers": len(WORKERS),
                    "queues": QUEUES,
                    "n_queues": len(QUEUES),
                    "end": end,
                    "spacing": spacing,
                    "start": start,
                    "stop": min(start + batch, rows) - 1,
                },
            )
            print(f"filled {min(start + batch, rows):,}/{rows:,}", flush=True)
        # What autovacuum does on a live database: statistics, and a visibility map so
        # that index-only scans (the capped counts) need not visit the heap.
        conn.execute("VACUUM (ANALYZE) tasks_admin_taskrecord")


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def server_env(database_url: str) -> dict[str, str]:
    """The environment the benchmarks run the console's processes in."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-secret-key"),
        "CONSOLE_API_THROTTLE": "",  # measure the API, not the throttle
        "LOG_LEVEL": "WARNING",
    }


def bench_token(env: dict[str, str], name: str) -> str:
    """A day-long token of the user "bench" (created when missing)."""
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.filter(username='bench').exists() or "
        "User.objects.create_user('bench', password='bench-password-1')",
    )
    return manage(env, "create_token", "--user", "bench", "--name", name, "--expires-days", "1")


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    return {
        "n": len(ordered),
        "p50_ms": at(0.50) * 1000,
        "p95_ms": at(0.95) * 1000,
        "p99_ms": at(0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[float, Any]:
        url = path + ("?" + urlencode(params) if params else "")
        start = time.perf_counter()
        self.conn.request("GET", url, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise SystemExit(f"GET {url}: {response.status} {body[:300]!r}")
        return elapsed, json.loads(body)

    def timed(self, path: str, params: dict[str, Any], n: int) -> dict[str, float]:
        for _ in range(5):  # warm the connection, the plan cache and PostgreSQL's buffers
            self.get(path, params)
        return percentiles([self.get(path, params)[0] for _ in range(n)])


def wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/console_api_bench"
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    ensure_database(args.database_url)
    env = server_env(args.database_url)
    manage(env, "migrate", "--verbosity", "0")
    fill(args.database_url, args.rows)
    token = bench_token(env, "bench")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "console.asgi:application",
            "--port",
            str(args.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_ready(args.port, time.monotonic() + 60)
        results = run(Client(args.port, token), args)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    report(results, args)


def run(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    _, first = client.get("/api/v1/tasks/")
    some = first["results"][0]
    scenarios: list[tuple[str, str, dict[str, Any]]] = [
        # No database, no DRF: what the server and the connection cost by themselves.
        ("/healthz (baseline)", "/healthz", {}),
        ("v1 first page", "/api/v1/tasks/", {}),
        ("v1 state=FAILURE", "/api/v1/tasks/", {"state": "FAILURE"}),
        ("v1 name=", "/api/v1/tasks/", {"name": NAMES[3]}),
        ("v1 worker=", "/api/v1/tasks/", {"worker": WORKERS[2]}),
        ("v1 queue=", "/api/v1/tasks/", {"queue": "reports"}),
        ("v1 from=1h", "/api/v1/tasks/", {"from": "1h"}),
        ("v1 search=<task id>", "/api/v1/tasks/", {"search": some["task_id"]}),
        ("v1 search=text (24 h window)", "/api/v1/tasks/", {"search": "user42@", "match": "text"}),
        ("flower /api/tasks?limit=100", "/api/tasks", {"limit": 100}),
        ("flower limit=100&taskname=", "/api/tasks", {"limit": 100, "taskname": NAMES[3]}),
        ("flower limit=100&state=FAILURE", "/api/tasks", {"limit": 100, "state": "FAILURE"}),
        ("v1 stats (1 h)", "/api/v1/stats/", {}),
        ("v1 task detail", f"/api/v1/tasks/{some['task_id']}/", {}),
    ]
    table = {}
    for label, path, params in scenarios:
        table[label] = client.timed(path, params, args.requests)
        print(f"{label:36} {table[label]}", flush=True)
    walk: list[float] = []
    params: dict[str, Any] = {}
    for _ in range(args.pages):
        elapsed, body = client.get("/api/v1/tasks/", params)
        walk.append(elapsed)
        if body["next_cursor"] is None:
            break
        params = {"cursor": body["next_cursor"]}
    head, tail = walk[:100], walk[-100:]
    return {
        "scenarios": table,
        "walk": {
            "pages": len(walk),
            "first_100": percentiles(head),
            "last_100": percentiles(tail),
            "all": percentiles(walk),
        },
    }


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"api-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), **results}, indent=2))
    print("\n| request | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
    rows = list(results["scenarios"].items())
    walk = results["walk"]
    rows += [
        (f"cursor walk, pages 1-100 (of {walk['pages']})", walk["first_100"]),
        (f"cursor walk, last 100 pages (of {walk['pages']})", walk["last_100"]),
    ]
    for label, p in rows:
        print(
            f"| {label} | {p['n']} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | "
            f"{p['p99_ms']:.1f} | {p['max_ms']:.1f} |"
        )
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
