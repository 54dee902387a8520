"""python manage.py collect: record every Celery event of the broker in PostgreSQL."""

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from console.celery import app
from tasks_admin.collector.service import Collector


class Command(BaseCommand):
    help = "Receive Celery events from CELERY_BROKER_URL and keep the task history current."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--broker",
            default=settings.CELERY_BROKER_URL,
            help="Broker URL to collect from (default: CELERY_BROKER_URL).",
        )
        parser.add_argument(
            "--no-pollers",
            action="store_true",
            help="Only receive and write events (no inspect, queue depth or reconcile).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["broker"] != app.conf.broker_url:
            # Control calls (inspect, enable_events) must reach the same broker.
            app.conf.update(broker_url=options["broker"])
        collector = Collector(
            app=app, broker_url=options["broker"], with_pollers=not options["no_pollers"]
        )

        def on_signal(signum: int, frame: Any) -> None:
            collector.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        collector.run()
