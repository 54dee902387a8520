"""Alert evaluation and delivery: once on crossing, quiet within the cooldown, resolved after."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from tasks_admin.alerts.evaluate import evaluate_rules
from tasks_admin.models import (
    AdvisorFinding,
    AlertNotice,
    AlertRule,
    AlertState,
    QueueRecord,
    QueueSample,
    TaskMinuteRollup,
    TaskRecord,
    WorkerRecord,
)

pytestmark = pytest.mark.django_db


def set_depth(name: str, depth: int, at: dt.datetime) -> None:
    QueueSample.objects.create(queue=name, sampled_at=at, depth=depth, consumers=0)
    QueueRecord.objects.update_or_create(
        name=name, defaults={"depth": depth, "consumers": 0, "sampled_at": at, "first_seen_at": at}
    )


def rule(**fields) -> AlertRule:
    defaults = {
        "name": "deep queue",
        "kind": AlertRule.Kind.QUEUE_DEPTH,
        "threshold": 100,
        "window_seconds": 0,
        "cooldown_seconds": 600,
    }
    return AlertRule.objects.create(**{**defaults, **fields})


def test_an_alert_fires_once_stays_quiet_in_its_cooldown_and_sends_a_resolved_notice(webhook):
    now = timezone.now()
    rule(target="emails", webhook_url=webhook.url, email_to="ops@example.com")
    set_depth("emails", 50, now)
    evaluate_rules(now=now)
    assert webhook.statuses() == []

    set_depth("emails", 500, now + dt.timedelta(seconds=10))
    evaluate_rules(now=now + dt.timedelta(seconds=10))
    evaluate_rules(now=now + dt.timedelta(seconds=20))
    evaluate_rules(now=now + dt.timedelta(seconds=300))
    assert webhook.statuses() == ["firing"]
    body = webhook.bodies[0]
    assert body["subject"] == "emails" and body["value"] == 500
    assert "deep queue" in body["text"] and "500" in body["text"]  # Slack reads "text"
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert "FIRING" in mail.outbox[0].subject

    set_depth("emails", 3, now + dt.timedelta(seconds=320))
    evaluate_rules(now=now + dt.timedelta(seconds=320))
    evaluate_rules(now=now + dt.timedelta(seconds=330))
    assert webhook.statuses() == ["firing", "resolved"]
    assert "RESOLVED" in mail.outbox[1].subject
    history = list(AlertNotice.objects.order_by("created_at").values_list("status", "delivery"))
    assert history == [
        ("firing", {"webhook": "sent", "email": "sent"}),
        ("resolved", {"webhook": "sent", "email": "sent"}),
    ]


def test_crossing_again_within_the_cooldown_is_recorded_but_not_sent(webhook):
    now = timezone.now()
    rule(target="emails", webhook_url=webhook.url)
    for seconds, depth in [(0, 500), (10, 0), (20, 500)]:
        set_depth("emails", depth, now + dt.timedelta(seconds=seconds))
        evaluate_rules(now=now + dt.timedelta(seconds=seconds))

    assert webhook.statuses() == ["firing", "resolved"]
    assert AlertNotice.objects.filter(status="suppressed").count() == 1
    assert AlertState.objects.get(subject="emails").firing is True


def test_still_firing_after_the_cooldown_sends_a_reminder(webhook):
    now = timezone.now()
    rule(target="emails", webhook_url=webhook.url, cooldown_seconds=60)
    set_depth("emails", 500, now)
    evaluate_rules(now=now)
    evaluate_rules(now=now + dt.timedelta(seconds=61))

    assert webhook.statuses() == ["firing", "reminder"]


def test_queue_depth_must_stay_above_the_threshold_for_the_whole_window(webhook):
    now = timezone.now()
    rule(target="emails", webhook_url=webhook.url, window_seconds=120)
    set_depth("emails", 20, now - dt.timedelta(seconds=60))
    set_depth("emails", 500, now)
    evaluate_rules(now=now)
    assert webhook.statuses() == []

    set_depth("emails", 400, now + dt.timedelta(seconds=90))
    evaluate_rules(now=now + dt.timedelta(seconds=90))
    assert webhook.statuses() == ["firing"]


def task(task_id: str, **fields) -> TaskRecord:
    now = timezone.now()
    return TaskRecord.objects.create(
        task_id=task_id, first_seen_at=now, last_event_at=now, updated_at=now, **fields
    )


def test_queue_wait_failure_rate_workers_down_stuck_tasks_and_advisor_rules_fire(webhook):
    now = timezone.now()
    task("waited", queue="reports", sent_at=now - dt.timedelta(seconds=90), started_at=now)
    task("stuck", name="billing.charge", state="STARTED", started_at=now - dt.timedelta(hours=2))
    TaskMinuteRollup.objects.create(
        name="billing.charge", minute=now.replace(second=0, microsecond=0), failed=3, succeeded=1
    )
    WorkerRecord.objects.create(
        hostname="w1@box", is_online=False, offline_at=now, first_seen_at=now, updated_at=now
    )
    AdvisorFinding.objects.create(
        check_name="accepts_pickle", subject="w2@box", severity="critical", title="pickle",
        evidence="e", why="w", fix="f", first_seen_at=now, last_seen_at=now,
    )  # fmt: skip
    for kind, threshold in [
        ("queue_wait", 60),
        ("failure_rate", 50),
        ("workers_down", 1),
        ("stuck_tasks", 3600),
        ("advisor", 3),
    ]:
        rule(name=kind, kind=kind, threshold=threshold, window_seconds=600, webhook_url=webhook.url)

    evaluate_rules(now=now)

    fired = {(body["rule"], body["subject"]) for body in webhook.bodies}
    assert fired == {
        ("queue_wait", "reports"),
        ("failure_rate", "billing.charge"),
        ("workers_down", "workers"),
        ("stuck_tasks", "billing.charge"),
        ("advisor", "accepts_pickle: w2@box"),
    }


def test_an_unreachable_webhook_is_recorded_without_its_secret_url():
    now = timezone.now()
    rule(target="emails", webhook_url="http://127.0.0.1:9/hooks/very-secret-token")
    set_depth("emails", 500, now)
    evaluate_rules(now=now)

    notice = AlertNotice.objects.get()
    assert notice.delivery["webhook"].startswith("failed:")
    assert "very-secret-token" not in notice.delivery["webhook"]


def test_queue_wait_counts_tasks_still_waiting_and_ignores_countdowns(webhook):
    now = timezone.now()
    task("waiting", queue="reports", state="PENDING", sent_at=now - dt.timedelta(seconds=200))
    task(
        "later",
        queue="slow",
        state="RECEIVED",
        sent_at=now - dt.timedelta(seconds=500),
        eta=now + dt.timedelta(hours=1),
    )
    rule(
        name="wait", kind="queue_wait", threshold=120, window_seconds=3600, webhook_url=webhook.url
    )

    evaluate_rules(now=now)

    assert [(b["subject"], round(b["value"])) for b in webhook.bodies] == [("reports", 200)]
