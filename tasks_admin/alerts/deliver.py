"""Sending notices: a JSON webhook (Slack-compatible ``text``) and Django's email."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from tasks_admin.models import AlertNotice, AlertRule

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 10.0
ICONS = {"firing": "🔴", "reminder": "🔴", "resolved": "✅", "test": "🔔", "suppressed": "⏸"}


def notice_text(notice: AlertNotice) -> str:
    label = {"firing": "FIRING", "reminder": "STILL FIRING", "resolved": "RESOLVED"}.get(
        notice.status, notice.status.upper()
    )
    text = f"{ICONS.get(notice.status, '')} [{label}] {notice.rule_name}: {notice.message}"
    base = str(getattr(settings, "CONSOLE_BASE_URL", "") or "").rstrip("/")
    return f"{text}\n{base}/alerts/" if base else text


def payload(notice: AlertNotice, rule: AlertRule | None) -> dict[str, Any]:
    """Slack reads ``text``; other receivers get the same facts as fields."""
    return {
        "text": notice_text(notice),
        "status": notice.status,
        "rule": notice.rule_name,
        "kind": rule.kind if rule else "",
        "subject": notice.subject,
        "value": notice.value,
        "threshold": rule.threshold if rule else None,
        "message": notice.message,
        "at": notice.created_at.isoformat(),
    }


def post_webhook(url: str, body: dict[str, Any]) -> str:
    if not url.lower().startswith(("http://", "https://")):
        return "failed: only http and https webhook URLs are allowed"
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "celery-console-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
            return "sent" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # Never the URL itself: webhook URLs carry their secret in the path.
        reason = getattr(exc, "reason", exc)
        return f"failed: {type(exc).__name__}: {reason}"[:300]


def send(notice: AlertNotice, rule: AlertRule | None) -> AlertNotice:
    """Deliver ``notice`` on every channel the rule has; store each channel's outcome."""
    delivery: dict[str, str] = {}
    if rule is not None and rule.webhook_url:
        delivery["webhook"] = post_webhook(rule.webhook_url, payload(notice, rule))
    if rule is not None and rule.recipients:
        try:
            send_mail(
                subject=notice_text(notice).splitlines()[0][:200],
                message=notice_text(notice),
                from_email=None,
                recipient_list=rule.recipients,
            )
            delivery["email"] = "sent"
        except Exception as exc:
            delivery["email"] = f"failed: {type(exc).__name__}: {exc}"[:300]
    if not delivery:
        delivery["none"] = "the rule has no webhook and no email address"
    for channel, outcome in delivery.items():
        if outcome != "sent" and channel != "none":
            log.warning("alert %r: %s delivery %s", notice.rule_name, channel, outcome)
    notice.delivery = delivery
    notice.save(update_fields=["delivery"])
    return notice
