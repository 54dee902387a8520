"""Ingest benchmark: a bare Celery receiver, Flower 2.2.0 and our collector, side by side.

    .venv/bin/python bench/run.py                                   # everything, 3 reps
    .venv/bin/python bench/run.py --reps 1 --events 50000 --duration 10   # quick look

Repetitions are the outermost loop and consumers the innermost, so drift of the shared
box hits every consumer alike. Results go to bench/results/<stamp>.json (+ .md).
See bench/README.md for what each mode measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench import generator, measure, modes, report
from bench.consumers import (
    FLOWER_VENV,
    PROJECT,
    PROJECT_PYTHON,
    Consumer,
    Settings,
    Unavailable,
    make,
)

MODES = ("drain", "burst", "sustained", "history")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--modes", default="drain,burst,sustained,history", help=f"of {','.join(MODES)}")
    p.add_argument(
        "--consumers",
        default="bare,flower,console",
        help="of bare, flower, console; add +pin to pin one to --pin-core (taskset)",
    )
    p.add_argument("--reps", type=int, default=3)
    p.add_argument(
        "--events", type=int, default=200_000, help="task events for drain, burst, history"
    )
    p.add_argument("--rate", type=float, default=5000, help="sustained: offered task events/s")
    p.add_argument("--duration", type=float, default=30, help="sustained: seconds of offered load")
    p.add_argument(
        "--burst-rate",
        type=float,
        default=None,
        help="burst: cap the publish rate (default: unpaced, as fast as it goes)",
    )
    p.add_argument(
        "--history-sizes", default="10000,1000000", help="history: task rows to pre-fill"
    )
    p.add_argument(
        "--history-rate", type=float, default=None, help="history: events/s (default --rate)"
    )
    p.add_argument("--pin-core", type=int, default=1, help="the core +pin consumers run on")
    p.add_argument(
        "--settle", type=float, default=2.0, help="seconds after subscribing, before load"
    )
    p.add_argument("--stall", type=float, default=15.0, help="stop following after this long idle")
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument(
        "--redis-db",
        type=int,
        default=15,
        help="events go to /<db>.celeryev/*; a db of its own keeps other receivers out",
    )
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/console_bench")
    p.add_argument(
        "--console-command",
        default="manage.py collect",
        help="run with the project's python from the project root",
    )
    p.add_argument(
        "--console-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the collector, e.g. CONSOLE_BATCH_SIZE=5000",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="results JSON (default bench/results/<stamp>.json)"
    )
    args = p.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        p.error(f"unknown modes: {', '.join(sorted(unknown))}")
    args.consumers = [c for c in args.consumers.split(",") if c]
    args.history_sizes = [int(n) for n in args.history_sizes.split(",") if n]
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def versions(r: redis.Redis) -> dict[str, Any]:
    def freeze(python: Path) -> dict[str, str]:
        if not python.exists():
            return {}
        out = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True)
        wanted = {
            "celery",
            "kombu",
            "redis",
            "flower",
            "tornado",
            "prometheus_client",
            "psycopg",
            "django",
        }
        pairs = (line.split("==", 1) for line in out.stdout.splitlines() if "==" in line)
        return {name: ver for name, ver in pairs if name.lower() in wanted}

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True)
        return out.stdout.strip()

    return {
        # The collector changes under active development: say which one was measured.
        "project_commit": git("rev-parse", "--short", "HEAD"),
        "project_uncommitted": git("status", "--porcelain", "--", "tasks_admin", "console"),
        "python": platform.python_version(),
        "redis_server": cast(dict, r.info("server"))["redis_version"],
        "project_venv": freeze(PROJECT_PYTHON),
        "flower_venv": freeze(FLOWER_VENV / "bin" / "python"),
    }


class Results:
    """Written after every run, so an interrupted benchmark keeps what it measured."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.data: dict[str, Any] = {**header, "calibration": [], "runs": []}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, default=str))

    def add(self, run: dict[str, Any]) -> None:
        self.data["runs"].append(run)
        self.save()


def describe(run: dict[str, Any]) -> str:
    if "error" in run:
        return f"ERROR {run['error']}"
    parts = [
        f"seen {run['seen']:,}/{run['expected']:,}",
        f"rate {run['rate']}",
        f"loss {run['loss_pct']}%",
    ]
    for key in (
        "lag_p50",
        "lag_p99",
        "tail_s",
        "cpu_per_event_us",
        "peak_rss_mb",
        "redis_disconnects",
    ):
        if run.get(key) is not None:
            parts.append(f"{key} {run[key]}")
    return ", ".join(parts) + f" [{run['outcome']}]"


def setup_consumers(
    args: argparse.Namespace, settings: Settings
) -> tuple[list[Consumer], list[str]]:
    ready, skipped = [], []
    for spec in args.consumers:
        consumer = make(spec, settings, pin_core=args.pin_core)
        try:
            consumer.setup()
        except Unavailable as exc:
            print(f"skipping {spec}: {exc}", flush=True)
            skipped.append(f"{spec}: {exc}")
            continue
        ready.append(consumer)
    return ready, skipped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or measure.RESULTS / f"{stamp}.json"
    r = redis.Redis(host="127.0.0.1", port=args.redis_port, decode_responses=True)
    restored = measure.restore_saved_limit(r)
    if restored:
        print(f"restored the pub/sub limit a killed run left lifted: {restored}", flush=True)
    for pid in measure.reap_orphans():
        print(f"ended consumer {pid} (and its process group) left by a killed run", flush=True)
    settings = Settings(
        broker=f"redis://127.0.0.1:{args.redis_port}/{args.redis_db}",
        database_url=args.database_url,
        logs=measure.RESULTS / "logs" / stamp,
        console_command=args.console_command.split(),
        console_env=dict(item.split("=", 1) for item in args.console_env),
    )
    consumers, skipped = setup_consumers(args, settings)
    results = Results(
        out,
        {
            "started_at": stamp,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "skipped": skipped,
            "box": measure.box_info(),
            "versions": versions(r),
            "pubsub_limit": measure.pubsub_limit(r),
        },
    )
    ctx = modes.Context(
        redis=r,
        redis_port=args.redis_port,
        settle=args.settle,
        stall=args.stall,
        rate=args.rate,
        history_rate=args.history_rate or args.rate,
        burst_rate=args.burst_rate,
    )
    streams: dict[int, generator.Stream] = {}

    def stream_of(events: int) -> generator.Stream:
        if events not in streams:
            started = time.monotonic()
            streams[events] = generator.build_stream(events=events, db=args.redis_db)
            print(f"built {events:,} events in {time.monotonic() - started:.1f} s", flush=True)
        return streams[events]

    try:
        for rep in range(args.reps):
            ref = measure.cpu_ref_ms()
            results.data["calibration"].append({"rep": rep, "cpu_ref_ms": ref, "at": time.time()})
            print(f"== rep {rep + 1}/{args.reps}: cpu_ref_ms {ref}", flush=True)
            for mode in args.modes:
                events = int(args.rate * args.duration) if mode == "sustained" else args.events
                for consumer in consumers:
                    sizes: list[int | None] = [None]
                    if mode == "history":
                        if consumer.name != "console":
                            continue
                        sizes = list(args.history_sizes)
                    for size in sizes:
                        run_id = f"r{rep}-{mode}" + (f"-{size}" if size is not None else "")
                        label = f"{mode} {consumer.label}" + (
                            f" @{size:,}" if size is not None else ""
                        )
                        print(f"-- {label} ...", flush=True)
                        run: dict[str, Any] = {
                            "rep": rep,
                            "mode": mode,
                            "consumer": consumer.label,
                            "cpu_ref_ms": ref,
                            "log": str(settings.logs),
                        }
                        try:
                            run.update(
                                modes.run_one(
                                    ctx,
                                    consumer,
                                    mode=mode,
                                    stream=stream_of(events),
                                    run_id=run_id,
                                    history_rows=size,
                                )
                            )
                        except (KeyboardInterrupt, SystemExit):
                            raise
                        except Exception as exc:
                            traceback.print_exc()
                            run["error"] = f"{type(exc).__name__}: {exc}"
                        results.add(run)
                        print(f"   {describe(run)}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: consumers stopped, Redis limits restored; partial results kept")
        results.data["interrupted"] = True
    finally:
        for consumer in consumers:
            consumer.stop()
        results.save()
    table = report.summary(results.data)
    out.with_suffix(".md").write_text(table)
    print(table)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
