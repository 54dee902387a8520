"""python manage.py fill_history --tasks N: synthetic task history for benchmarks and demos."""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks_admin import synthetic


class Command(BaseCommand):
    help = (
        "Add N realistic synthetic tasks (rows, event log, per-minute rollups, workers, "
        "queues) spread over the last D days, loaded with COPY. When the task table is "
        "empty its indexes are dropped for the load and rebuilt after it. Meant for a "
        "benchmark or demo database, not one a collector is writing to."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tasks", type=int, required=True, metavar="N")
        parser.add_argument("--days", type=float, default=7.0, metavar="D")
        parser.add_argument("--names", type=int, default=20, metavar="K")
        parser.add_argument("--workers", type=int, default=8, metavar="W")
        parser.add_argument("--seed", type=int, default=1, metavar="S")
        parser.add_argument("--jobs", type=int, default=2, help="Generator processes (default 2).")
        parser.add_argument(
            "--keep-indexes",
            action="store_true",
            help="Never drop the task table's indexes (slower on an empty table).",
        )
        parser.add_argument(
            "--no-vacuum", action="store_true", help="ANALYZE only, skip VACUUM at the end."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            report = synthetic.fill_history(
                tasks=options["tasks"],
                days=options["days"],
                names=options["names"],
                workers=options["workers"],
                seed=options["seed"],
                jobs=options["jobs"],
                rebuild_indexes=False if options["keep_indexes"] else None,
                vacuum=not options["no_vacuum"],
                log=lambda message: self.stderr.write(message),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        self.stdout.write(f"tasks: {report.tasks:,}  events: {report.events:,}")
        self.stdout.write(
            "states: " + ", ".join(f"{s} {n:,}" for s, n in sorted(report.states.items()))
        )
        self.stdout.write(
            "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report.seconds.items())
        )
        self.stdout.write(f"done in {elapsed:.1f} s")
