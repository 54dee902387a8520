"""Reads for the Advisor and Alerts pages."""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When

from tasks_admin.models import AdvisorFinding, AdvisorRun, AlertNotice, AlertRule, AlertState

RESOLVED_LIMIT = 100
NOTICE_LIMIT = 100

_SEVERITY_ORDER = Case(
    When(severity="critical", then=Value(0)),
    When(severity="warning", then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def open_findings() -> QuerySet[AdvisorFinding]:
    """What is wrong now: worst first, then oldest first."""
    return (
        AdvisorFinding.objects.filter(resolved_at=None)
        .annotate(rank=_SEVERITY_ORDER)
        .order_by("rank", "first_seen_at", "id")
    )


def resolved_findings(limit: int = RESOLVED_LIMIT) -> list[AdvisorFinding]:
    return list(
        AdvisorFinding.objects.exclude(resolved_at=None).order_by("-resolved_at", "-id")[:limit]
    )


def last_run() -> AdvisorRun | None:
    return AdvisorRun.objects.order_by("-started_at", "-id").first()


def alert_rules() -> list[AlertRule]:
    return list(AlertRule.objects.order_by("name"))


def firing_states() -> list[AlertState]:
    return list(
        AlertState.objects.filter(firing=True).select_related("rule").order_by("since", "id")
    )


def alert_notices(limit: int = NOTICE_LIMIT) -> list[AlertNotice]:
    return list(AlertNotice.objects.order_by("-created_at", "-id")[:limit])
