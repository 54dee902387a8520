"""/api/v1 for the advisor and alerts: findings with their filters, running the checks,
alert rules with what fires, and the notice history."""

import datetime as dt

import pytest
from django.utils import timezone

from tasks_admin.models import (
    AdvisorFinding,
    AdvisorRun,
    AlertNotice,
    AlertRule,
    AlertState,
    AuditEntry,
    QueueRecord,
)

pytestmark = pytest.mark.django_db


def finding(subject: str, *, resolved_ago: int | None = None, **fields) -> AdvisorFinding:
    now = timezone.now()
    values = {
        "check_name": "accepts_pickle",
        "severity": "critical",
        "title": f"{subject} accepts pickle",
        "evidence": "inspect conf: accept_content = ['json', 'pickle'].",
        "why": "Unpickling runs arbitrary code.",
        "fix": "Set accept_content = ['json'].",
        "first_seen_at": now - dt.timedelta(hours=1),
        "last_seen_at": now,
        "resolved_at": now - dt.timedelta(minutes=resolved_ago) if resolved_ago else None,
        **fields,
    }
    return AdvisorFinding.objects.create(subject=subject, **values)


def subjects(body) -> list[str]:
    return [f["subject"] for f in body["results"]]


def test_findings_list_open_ones_worst_first_then_the_recently_resolved(api):
    finding("w1@box", severity="warning", check_name="prefetch")
    finding("w2@box")
    finding("w0@box", resolved_ago=5)
    finding("w9@box", resolved_ago=1)
    AdvisorRun.objects.create(
        started_at=timezone.now(),
        finished_at=timezone.now(),
        source="collector",
        open_findings=2,
        errors={"eviction_policy": "ConnectionError: refused"},
    )

    body = api.json("/api/v1/advisor/findings/")

    assert subjects(body) == ["w2@box", "w1@box", "w9@box", "w0@box"]
    first = body["results"][0]
    assert first["state"] == "open" and first["resolved_at"] is None
    assert (first["check"], first["severity"], first["title"]) == (
        "accepts_pickle",
        "critical",
        "w2@box accepts pickle",
    )
    assert first["fix"] == "Set accept_content = ['json']."
    assert body["results"][2]["state"] == "resolved"
    assert body["last_run"]["open_findings"] == 2
    assert body["last_run"]["errors"] == {"eviction_policy": "ConnectionError: refused"}


def test_findings_filter_by_state_severity_and_check(api):
    finding("w1@box", severity="warning", check_name="prefetch")
    finding("w2@box")
    finding("w0@box", resolved_ago=5, severity="warning", check_name="prefetch")

    assert subjects(api.json("/api/v1/advisor/findings/", state="open")) == ["w2@box", "w1@box"]
    assert subjects(api.json("/api/v1/advisor/findings/", state="resolved")) == ["w0@box"]
    assert subjects(api.json("/api/v1/advisor/findings/", severity="warning")) == [
        "w1@box",
        "w0@box",
    ]
    assert subjects(api.json("/api/v1/advisor/findings/", check="accepts_pickle")) == ["w2@box"]
    assert api.json("/api/v1/advisor/findings/")["last_run"] is None


def test_findings_refuse_an_unknown_state_or_parameter_with_400(api):
    body = api.json("/api/v1/advisor/findings/", 400, state="fixed")
    assert body["error"] == "invalid" and "state" in body["detail"]
    body = api.json("/api/v1/advisor/findings/", 400, colour="red")
    assert "colour: Unknown parameter" in body["detail"]


def test_running_the_checks_answers_what_happened_and_is_audited(client, token, settings):
    # A broker nobody listens on: that check fails, the others run against the history.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    now = timezone.now()
    QueueRecord.objects.create(
        name="orphan", depth=4, consumers=0, sampled_at=now, first_seen_at=now
    )

    response = client.post("/api/v1/advisor/run/", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"]["open"] == 1 and body["result"]["opened"] == 1
    assert "eviction_policy" in body["result"]["errors"]
    assert body["detail"].startswith("Checks ran: 1 open finding(s), 1 new, 0 resolved")
    assert AdvisorRun.objects.get().source == "api"
    entry = AuditEntry.objects.get(action="advisor.run")
    assert (entry.username, entry.source, entry.outcome) == ("reader", "api", "succeeded")
    finding_row = AdvisorFinding.objects.get()
    assert "orphan" in finding_row.subject


def test_the_run_needs_credentials_and_post(client, token):
    assert client.post("/api/v1/advisor/run/").status_code == 401
    response = client.get("/api/v1/advisor/run/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405
    assert not AdvisorRun.objects.exists()


def test_alert_rules_show_what_fires_and_never_the_webhook_url(api):
    now = timezone.now()
    rule = AlertRule.objects.create(
        name="deep queue",
        kind="queue_depth",
        target="celery",
        threshold=100,
        webhook_url="https://hooks.example.com/secret-path",
        email_to="ops@example.com, oncall@example.com",
    )
    AlertRule.objects.create(name="any failures", kind="failure_rate", threshold=5, enabled=False)
    AlertState.objects.create(rule=rule, subject="celery", firing=True, since=now, value=250)
    AlertState.objects.create(rule=rule, subject="other", firing=False)

    body = api.json("/api/v1/alerts/rules/")

    assert [r["name"] for r in body["results"]] == ["any failures", "deep queue"]
    deep = body["results"][1]
    assert (deep["kind"], deep["target"], deep["threshold"], deep["webhook"]) == (
        "queue_depth",
        "celery",
        100.0,
        True,
    )
    assert deep["email_to"] == ["ops@example.com", "oncall@example.com"]
    assert [(f["subject"], f["value"]) for f in deep["firing"]] == [("celery", 250.0)]
    assert body["results"][0]["firing"] == [] and body["results"][0]["enabled"] is False
    assert "secret-path" not in str(body)


def test_alert_notices_are_the_history_newest_first(api):
    now = timezone.now()
    rule = AlertRule.objects.create(name="deep queue", kind="queue_depth", threshold=100)
    AlertNotice.objects.create(
        rule=rule,
        rule_name=rule.name,
        status="firing",
        subject="celery",
        value=250,
        message="celery holds 250 messages",
        created_at=now - dt.timedelta(minutes=10),
        delivery={"webhook": "sent"},
    )
    AlertNotice.objects.create(
        rule=None, rule_name="gone rule", status="resolved", message="back to normal"
    )

    body = api.json("/api/v1/alerts/notices/")

    assert [(n["rule_name"], n["status"]) for n in body["results"]] == [
        ("gone rule", "resolved"),
        ("deep queue", "firing"),
    ]
    fired = body["results"][1]
    assert (fired["rule"], fired["subject"], fired["value"], fired["delivery"]) == (
        rule.pk,
        "celery",
        250.0,
        {"webhook": "sent"},
    )
    assert body["results"][0]["rule"] is None
