"""/api/v1 for the advisor and alerts: findings (open and recently resolved), running the
checks now, alert rules with what is firing, and the notice history. Reads go through
selectors/advisor.py (what the Advisor and Alerts pages show); the run through its service.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from tasks_admin import services
from tasks_admin.api import serializers as s
from tasks_admin.api.auth import actor_of
from tasks_admin.api.views import ACTION_ERRORS, action_response, endpoint, query, responses
from tasks_admin.models import AdvisorFinding, AlertRule, Severity
from tasks_admin.selectors import advisor as advisor_selectors


class FindingsQuery(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["open", "resolved"],
        required=False,
        help_text="open: what is wrong now; resolved: the newest "
        f"{advisor_selectors.RESOLVED_LIMIT} resolved. Both when left out.",
    )
    severity = serializers.ChoiceField(choices=Severity.values, required=False)
    check = serializers.CharField(
        required=False, max_length=64, help_text="A check's name, e.g. visibility_timeout."
    )


class FindingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    check = serializers.CharField(source="check_name")
    subject = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.values)
    state = serializers.SerializerMethodField()
    title = serializers.CharField()
    evidence = serializers.CharField(help_text="What the check saw.")
    why = serializers.CharField(help_text="Why it matters.")
    fix = serializers.CharField(help_text="How to fix it.")
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)

    def get_state(self, finding: AdvisorFinding) -> str:
        return "open" if finding.resolved_at is None else "resolved"


class AdvisorRunSerializer(serializers.Serializer):
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    source = serializers.CharField()
    open_findings = serializers.IntegerField()
    errors = serializers.DictField(
        child=serializers.CharField(), help_text="Checks that could not run, and why."
    )


class FindingListSerializer(serializers.Serializer):
    results = FindingSerializer(many=True)
    last_run = AdvisorRunSerializer(allow_null=True)


class FiringSerializer(serializers.Serializer):
    subject = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    value = serializers.FloatField(allow_null=True)


class AlertRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=AlertRule.Kind.values)
    target = serializers.CharField(help_text="A queue, task name or check; empty: every one.")
    threshold = serializers.FloatField()
    window_seconds = serializers.IntegerField()
    cooldown_seconds = serializers.IntegerField()
    enabled = serializers.BooleanField()
    webhook = serializers.BooleanField(
        help_text="Whether notices go to a webhook (its URL is a secret and not shown)."
    )
    email_to = serializers.ListField(child=serializers.CharField())
    created_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    firing = FiringSerializer(many=True, help_text="Subjects the rule fires for now.")


class AlertRuleListSerializer(serializers.Serializer):
    results = AlertRuleSerializer(many=True)


class AlertNoticeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.IntegerField(source="rule_id", allow_null=True)
    rule_name = serializers.CharField()
    status = serializers.CharField(
        help_text="firing, resolved, reminder, suppressed (within the cooldown) or test."
    )
    subject = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
    delivery = serializers.DictField(
        child=serializers.CharField(), help_text='Channel -> "sent" or the error.'
    )


class AlertNoticeListSerializer(serializers.Serializer):
    results = AlertNoticeSerializer(many=True)


@extend_schema(
    operation_id="advisor_findings_list",
    parameters=[FindingsQuery],
    responses=responses(FindingListSerializer),
)
@endpoint(["GET"])
def findings(request: Request) -> Response:
    """The advisor's findings: open ones (worst first, then oldest) followed by the newest
    resolved ones, as the Advisor page shows them; with the last run's summary."""
    data = query(request, FindingsQuery)
    rows: list[AdvisorFinding] = []
    if data.get("state") in (None, "open"):
        open_rows = advisor_selectors.open_findings()
        if data.get("severity"):
            open_rows = open_rows.filter(severity=data["severity"])
        if data.get("check"):
            open_rows = open_rows.filter(check_name=data["check"])
        rows += list(open_rows)
    if data.get("state") in (None, "resolved"):
        # The Advisor page's "recently resolved" (selectors.resolved_findings), filtered.
        resolved = AdvisorFinding.objects.exclude(resolved_at=None)
        if data.get("severity"):
            resolved = resolved.filter(severity=data["severity"])
        if data.get("check"):
            resolved = resolved.filter(check_name=data["check"])
        rows += list(resolved.order_by("-resolved_at", "-id")[: advisor_selectors.RESOLVED_LIMIT])
    last_run = advisor_selectors.last_run()
    return Response(FindingListSerializer({"results": rows, "last_run": last_run}).data)


@extend_schema(
    operation_id="advisor_run",
    request=None,
    responses=responses(s.ActionResultSerializer, ACTION_ERRORS),
)
@endpoint(["POST"])
def run(request: Request) -> Response:
    """Run every check now (any role); the result counts open, new and resolved findings
    and names checks that could not run. Audited as advisor.run."""
    query(request, serializers.Serializer)
    return action_response(services.advisor_run(actor=actor_of(request)))


def _rule_data(rule: AlertRule, firing: list[Any]) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "kind": rule.kind,
        "target": rule.target,
        "threshold": rule.threshold,
        "window_seconds": rule.window_seconds,
        "cooldown_seconds": rule.cooldown_seconds,
        "enabled": rule.enabled,
        "webhook": bool(rule.webhook_url),
        "email_to": rule.recipients,
        "created_by": rule.created_by,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
        "firing": [
            {"subject": state.subject, "since": state.since, "value": state.value}
            for state in firing
        ],
    }


@extend_schema(operation_id="alert_rules_list", responses=responses(AlertRuleListSerializer))
@endpoint(["GET"])
def alert_rules(request: Request) -> Response:
    """Every alert rule by name, with the subjects it is firing for now."""
    query(request, serializers.Serializer)
    firing: dict[int, list[Any]] = {}
    for state in advisor_selectors.firing_states():
        firing.setdefault(state.rule_id, []).append(state)
    results = [
        _rule_data(rule, firing.get(rule.pk, [])) for rule in advisor_selectors.alert_rules()
    ]
    return Response(AlertRuleListSerializer({"results": results}).data)


@extend_schema(operation_id="alert_notices_list", responses=responses(AlertNoticeListSerializer))
@endpoint(["GET"])
def alert_notices(request: Request) -> Response:
    """The newest notices (fired, resolved, reminded, suppressed, tests), newest first."""
    query(request, serializers.Serializer)
    notices = advisor_selectors.alert_notices()
    for notice in notices:
        if not isinstance(notice.delivery, dict):
            notice.delivery = {}
        else:
            notice.delivery = {str(k): str(v) for k, v in notice.delivery.items()}
    return Response(AlertNoticeListSerializer({"results": notices}).data)
