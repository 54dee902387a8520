"""Page latency over real HTTP: uvicorn serving console.asgi against a filled history.

Starts ``uvicorn console.asgi:application`` (one process, DEBUG off) against
``--database-url``, signs in through the login form (CSRF token and all), then requests each
page sequentially over one keep-alive connection: ``--warmup`` unmeasured requests, then
``--samples`` measured ones (request sent → last byte of the body). Prints p50/p95 beside
the issue's targets and writes everything to ``bench/results/pages-<stamp>.json``.

Fill the database first, e.g.::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/console_pages_bench \\
        nice -n 10 .venv/bin/python manage.py fill_history --tasks 10000000
    .venv/bin/python bench/pages.py

Task ids, names, workers and queues are picked from the database, a different task id for
each sample of the id search and of the task page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import cpu_ref_ms  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/console_pages_bench"

# The targets (p95, ms): "Speed" in issue 3.
TASKS_TARGET = 150.0
TASK_TARGET = 50.0
DASHBOARD_TARGET = 200.0


@dataclass
class Scenario:
    key: str
    label: str
    target_ms: float
    # One path per sample (cycled), so searches and task pages hit different rows.
    paths: list[str]
    htmx: bool = False
    samples_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        if not ordered:
            return float("nan")
        # Nearest rank: p95 of 50 samples is the 48th.
        rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
        return ordered[rank - 1]

    def summary(self) -> dict:
        p50, p95 = self.percentile(0.50), self.percentile(0.95)
        return {
            "key": self.key,
            "label": self.label,
            "htmx": self.htmx,
            "samples": len(self.samples_ms),
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "max_ms": round(max(self.samples_ms), 1) if self.samples_ms else None,
            "mean_ms": round(statistics.fmean(self.samples_ms), 1) if self.samples_ms else None,
            "target_p95_ms": self.target_ms if self.target_ms != float("inf") else None,
            "met": None if self.target_ms == float("inf") else p95 < self.target_ms,
            "statuses": self.statuses,
            "bytes": self.bytes,
            "example_path": self.paths[0],
        }


class Client:
    """One keep-alive HTTP/1.1 connection with a cookie jar: enough for a signed-in user."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def request(
        self, method: str, path: str, *, body: str | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        all_headers = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=all_headers)
            response = self.conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.conn.request(method, path, body=body, headers=all_headers)
            response = self.conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(header)
            for key, morsel in cookie.items():
                self.cookies[key] = morsel.value
        return response.status, data, response

    def sign_in(self, username: str, password: str) -> None:
        status, body, _ = self.request("GET", "/login/")
        if status != 200:
            raise SystemExit(f"GET /login/ answered {status}")
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        if not match:
            raise SystemExit("no CSRF token in the login form")
        form = urlencode(
            {
                "csrfmiddlewaretoken": match.group(1).decode(),
                "username": username,
                "password": password,
                "next": "/",
            }
        )
        status, _, response = self.request(
            "POST", "/login/", body=form, headers={"Referer": f"http://{self.host}:{self.port}/"}
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"sign-in failed: {status} {response.headers.get('Location')}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=env.get("DJANGO_SECRET_KEY") or "bench-pages-only-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="console.settings",
    )
    return env


def bench_user(env: dict[str, str]) -> tuple[str, str]:
    out = subprocess.run(
        [sys.executable, "manage.py", "create_demo_user", "--username", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"username (\S+)\s+password (\S+)", out)
    if not match:
        raise SystemExit(f"create_demo_user said: {out!r}")
    return match.group(1), match.group(2)


def start_server(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "console.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited ({proc.returncode}); see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"uvicorn did not listen on {port} within 30 s; see {log_path}")


@dataclass
class Picks:
    tasks: int
    task_ids: list[str]
    name: str
    rare_name: str
    worker: str
    queue: str
    hour_from: str
    hour_to: str


def pick(database_url: str, count: int) -> Picks:
    """What to ask for: real ids, the busiest worker and queue, a name, an hour of history."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        estimate = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = 'tasks_admin_taskrecord'"
        ).fetchone()
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT task_id FROM tasks_admin_taskrecord TABLESAMPLE SYSTEM (1) LIMIT %s",
                [count],
            ).fetchall()
        ]
        if len(ids) < count:
            ids += [
                row[0]
                for row in conn.execute(
                    "SELECT task_id FROM tasks_admin_taskrecord LIMIT %s", [count - len(ids)]
                ).fetchall()
            ]
        if not ids:
            raise SystemExit("the task table is empty: run manage.py fill_history first")
        names = conn.execute(
            "SELECT name, sum(received) AS n FROM tasks_admin_taskminuterollup "
            "GROUP BY name ORDER BY n DESC"
        ).fetchall()
        worker = conn.execute(
            "SELECT hostname FROM tasks_admin_workerrecord ORDER BY processed DESC LIMIT 1"
        ).fetchone()
        queue = conn.execute(
            "SELECT name FROM tasks_admin_queuerecord ORDER BY name = 'celery' DESC, name LIMIT 1"
        ).fetchone()
        span = conn.execute(
            "SELECT min(minute), max(minute) FROM tasks_admin_taskminuterollup"
        ).fetchone()
    assert span and worker and queue and names
    middle = span[0] + (span[1] - span[0]) / 2
    hour_from = middle.replace(minute=0, second=0, microsecond=0)
    return Picks(
        tasks=int(estimate[0]) if estimate else 0,
        task_ids=ids,
        name=names[0][0],
        rare_name=names[-1][0],
        worker=worker[0],
        queue=queue[0],
        hour_from=hour_from.strftime("%Y-%m-%dT%H:%M"),
        hour_to=(hour_from + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    )


def scenarios(p: Picks) -> list[Scenario]:
    def tasks(query: dict[str, str]) -> str:
        return "/tasks/" + (f"?{urlencode(query)}" if query else "")

    lists = [
        ("tasks", "tasks, first page", {}),
        ("state", "state=FAILURE", {"state": "FAILURE"}),
        ("state_rare", "state=RETRY (rare)", {"state": "RETRY"}),
        ("name", f"name={p.name}", {"name": p.name}),
        ("name_rare", f"name={p.rare_name} (rarest)", {"name": p.rare_name}),
        ("worker", f"worker={p.worker}", {"worker": p.worker}),
        ("queue", f"queue={p.queue}", {"queue": p.queue}),
        ("time_1h", "from=1h (last hour)", {"from": "1h"}),
        (
            "time_range",
            f"from {p.hour_from} to {p.hour_to}",
            {"from": p.hour_from, "to": p.hour_to},
        ),
    ]
    # No database, no template: the HTTP + ASGI floor of the box at the time of the run.
    out = [Scenario("healthz", "/healthz (baseline, no target)", float("inf"), ["/healthz"])]
    for key, label, query in lists:
        for htmx in (False, True):
            out.append(
                Scenario(
                    f"{key}{'_htmx' if htmx else ''}",
                    label + (" (htmx fragment)" if htmx else ""),
                    TASKS_TARGET,
                    [tasks(query)],
                    htmx=htmx,
                )
            )
    for htmx in (False, True):
        out.append(
            Scenario(
                f"search_id{'_htmx' if htmx else ''}",
                "search by task id" + (" (htmx fragment)" if htmx else ""),
                TASKS_TARGET,
                [tasks({"search": task_id}) for task_id in p.task_ids],
                htmx=htmx,
            )
        )
    out.append(Scenario("task", "task page", TASK_TARGET, [f"/tasks/{i}/" for i in p.task_ids]))
    out.append(Scenario("dashboard", "dashboard", DASHBOARD_TARGET, ["/"]))
    out.append(
        Scenario("dashboard_htmx", "dashboard (htmx fragment)", DASHBOARD_TARGET, ["/"], True)
    )
    return out


def measure(client: Client, s: Scenario, *, warmup: int, samples: int) -> None:
    headers = {"HX-Request": "true"} if s.htmx else {}
    for i in range(warmup):
        client.request("GET", s.paths[(i + 7919) % len(s.paths)], headers=headers)
    for _ in range(samples):
        path = s.paths[len(s.samples_ms) % len(s.paths)]
        began = time.perf_counter()
        status, body, _ = client.request("GET", path, headers=headers)
        s.samples_ms.append((time.perf_counter() - began) * 1000)
        s.statuses[str(status)] = s.statuses.get(str(status), 0) + 1
        s.bytes = len(body)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


def table(rows: list[dict]) -> str:
    lines = [
        "| page | p50 ms | p95 ms | target p95 | met |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        met = "yes" if r["met"] else "**NO**"
        if set(r["statuses"]) != {"200"}:
            met += f" (statuses {r['statuses']})"
        target = "—" if r["target_p95_ms"] is None else f"< {r['target_p95_ms']:.0f}"
        if r["met"] is None:
            met = "—"
        lines.append(f"| {r['label']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {target} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="split each page's samples over this many passes through all pages, so a "
        "burst of load on the shared box hits every page alike (default 3)",
    )
    parser.add_argument("--only", help="comma-separated scenario keys (default: all)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.samples < 50:
        print("note: fewer than 50 samples make p95 a weak figure", file=sys.stderr)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    env = server_env(args.database_url)
    picks = pick(args.database_url, args.samples)
    username, password = bench_user(env)
    port = args.port or free_port()
    log_path = RESULTS / f"pages-{stamp}.uvicorn.log"
    server = start_server(env, port, log_path)
    try:
        client = Client("127.0.0.1", port)
        client.sign_in(username, password)
        chosen = scenarios(picks)
        if args.only:
            keys = set(args.only.split(","))
            chosen = [s for s in chosen if s.key in keys]
        load_before, ref_before = os.getloadavg(), cpu_ref_ms()
        for round_ in range(args.rounds):
            share = (
                args.samples * (round_ + 1) // args.rounds - args.samples * round_ // args.rounds
            )
            for s in chosen:
                measure(client, s, warmup=args.warmup if round_ == 0 else 1, samples=share)
        load_after, ref_after = os.getloadavg(), cpu_ref_ms()
        for s in chosen:
            r = s.summary()
            verdict = (
                ""
                if s.target_ms == float("inf")
                else (f"(target < {s.target_ms:.0f})  {'ok' if r['met'] else 'MISSED'}")
            )
            print(
                f"{s.label:60} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  {verdict}",
                flush=True,
            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    rows = [s.summary() for s in chosen]
    report = {
        "stamp": stamp,
        "git_commit": git_commit(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "database": args.database_url.rsplit("/", 1)[-1],
        "tasks_in_history": picks.tasks,
        "samples": args.samples,
        "warmup": args.warmup,
        "rounds": args.rounds,
        # How busy the shared box was: load average and a fixed CPU workload, before/after.
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "cpu_ref_ms_before": ref_before,
        "cpu_ref_ms_after": ref_after,
        "picks": {k: v for k, v in asdict(picks).items() if k != "task_ids"},
        "results": rows,
    }
    out = RESULTS / f"pages-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print()
    print(f"{picks.tasks:,} tasks in history (estimate), {args.samples} samples each")
    print(
        f"load average {load_before[0]:.1f} → {load_after[0]:.1f}, "
        f"cpu_ref_ms {ref_before} → {ref_after} (lower is a faster box)"
    )
    print(table(rows))
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
