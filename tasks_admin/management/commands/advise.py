"""python manage.py advise: run the advisor's checks now, record and print the findings."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tasks_admin import services
from tasks_admin.models import AdvisorFinding
from tasks_admin.roles import Actor, Role


class Command(BaseCommand):
    help = (
        "Run every advisor check against the broker, the workers' reported settings and "
        "the task history; record the findings (as the collector does on its schedule) and "
        "print the open ones. Exit status 1 with --fail-on when any is at least that severe."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fail-on",
            choices=["info", "warning", "critical"],
            help="Exit with status 1 if an open finding has this severity or worse.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        actor = Actor(user=None, role=Role.ADMIN, source="command")
        result = services.advisor_run(actor=actor)
        findings = AdvisorFinding.objects.filter(resolved_at=None).order_by("check_name", "subject")
        rank = {"info": 1, "warning": 2, "critical": 3}
        worst = 0
        for finding in findings:
            worst = max(worst, rank.get(finding.severity, 0))
            self.stdout.write(f"[{finding.severity}] {finding.title}")
            self.stdout.write(f"    seen:  {finding.evidence}")
            self.stdout.write(f"    why:   {finding.why}")
            self.stdout.write(f"    fix:   {finding.fix}")
        self.stdout.write(result.detail)
        if options["fail_on"] and worst >= rank[options["fail_on"]]:
            raise SystemExit(1)
