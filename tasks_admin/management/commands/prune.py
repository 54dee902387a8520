"""python manage.py prune --older-than DAYS: drop history older than DAYS days."""

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks_admin import retention


class Command(BaseCommand):
    help = (
        "Delete task history older than --older-than days: event log partitions, task "
        "rows, queue samples and per-minute rollups, in short batches (safe while the "
        "collector runs)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument(
            "--samples-older-than",
            type=int,
            metavar="DAYS",
            help="Keep queue depth samples for fewer days than the rest (default: same).",
        )
        parser.add_argument("--batch-size", type=int, default=retention.BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"]
        samples_days = options["samples_older_than"]
        if days < 1 or (samples_days is not None and samples_days < 1):
            raise CommandError("--older-than and --samples-older-than must be at least 1 day")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be positive")
        counts = retention.prune_history(
            older_than=dt.timedelta(days=days),
            samples_older_than=None if samples_days is None else dt.timedelta(days=samples_days),
            batch_size=options["batch_size"],
        )
        for what, count in counts.items():
            self.stdout.write(f"{what}: {count}")
