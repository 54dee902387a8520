"""Run every check, then record: new findings open, seen ones move on, gone ones resolve.

One transaction per run, so the page never shows half a run. A check that raises (the
broker is away) is reported in ``AdvisorRun.errors`` and its open findings stay as they
were: not seeing is not the same as seeing it fixed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from tasks_admin.advisor import broker, delivery, events, limits, memory, retries, routing, security
from tasks_admin.advisor.base import Check, Context, Finding
from tasks_admin.models import AdvisorFinding, AdvisorRun

log = logging.getLogger(__name__)

CHECKS: list[Check] = [
    *broker.CHECKS,
    *security.CHECKS,
    *limits.CHECKS,
    *memory.CHECKS,
    *delivery.CHECKS,
    *routing.CHECKS,
    *retries.CHECKS,
    *events.CHECKS,
]


@dataclass
class RunOutcome:
    findings: list[Finding] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    opened: int = 0
    resolved: int = 0


def run_checks(ctx: Context, checks: list[Check] | None = None) -> RunOutcome:
    """Every check's findings (nothing stored). Check names of failures in ``errors``."""
    outcome = RunOutcome()
    for check in checks or CHECKS:
        try:
            outcome.findings.extend(check(ctx))
        except Exception as exc:
            log.warning("advisor check %s failed: %s", check.__name__, exc)
            outcome.errors[check.__name__] = f"{type(exc).__name__}: {exc}"[:500]
    return outcome


@transaction.atomic
def record(outcome: RunOutcome, *, ctx: Context, source: str) -> AdvisorRun:
    now = ctx.now
    seen: set[tuple[str, str]] = set()
    open_rows = {
        (row.check_name, row.subject): row
        for row in AdvisorFinding.objects.select_for_update().filter(resolved_at=None)
    }
    for finding in outcome.findings:
        key = (finding.check, finding.subject[:255])
        if key in seen:
            continue
        seen.add(key)
        values = {
            "severity": finding.severity,
            "title": finding.title[:255],
            "evidence": finding.evidence,
            "why": finding.why,
            "fix": finding.fix,
            "last_seen_at": now,
        }
        row = open_rows.get(key)
        if row is None:
            AdvisorFinding.objects.create(
                check_name=key[0], subject=key[1], first_seen_at=now, **values
            )
            outcome.opened += 1
        else:
            AdvisorFinding.objects.filter(pk=row.pk).update(**values)
    failed_checks = set(outcome.errors)
    for key, row in open_rows.items():
        if key in seen or CHECK_OF.get(row.check_name) in failed_checks:
            continue
        AdvisorFinding.objects.filter(pk=row.pk).update(resolved_at=now)
        outcome.resolved += 1
    return AdvisorRun.objects.create(
        started_at=now,
        finished_at=timezone.now(),
        source=source,
        open_findings=len(seen)
        + sum(
            1
            for key, row in open_rows.items()
            if key not in seen and CHECK_OF.get(row.check_name) in failed_checks
        ),
        errors=outcome.errors,
    )


def advise(*, source: str, ctx: Context | None = None) -> tuple[AdvisorRun, RunOutcome]:
    """Run every check against the configured broker and history, and record the result."""
    ctx = ctx or Context.from_settings()
    outcome = run_checks(ctx)
    return record(outcome, ctx=ctx, source=source), outcome


# Finding key -> the function that produces it (a failed check keeps its findings open).
CHECK_OF: dict[str, str] = {
    "redis_eviction_policy": "eviction_policy",
    "redis_memory": "memory_usage",
    "redis_shared_db": "shared_database",
    "accepts_pickle": "accepts_pickle",
    "no_time_limit": "no_time_limit",
    "stuck_tasks": "stuck_tasks",
    "memory_growth": "memory_growth",
    "worker_vanished": "vanished_workers",
    "worker_lost": "killed_tasks",
    "prefetch_uneven": "prefetch_with_uneven_runtimes",
    "visibility_timeout": "visibility_timeout",
    "queue_without_consumer": "queue_without_consumer",
    "not_registered": "not_registered",
    "hopeless_retries": "hopeless_retries",
    "no_task_events": "silent_workers",
}
