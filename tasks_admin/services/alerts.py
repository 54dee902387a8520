"""Alert rules: create, change, delete, send a test notice. Admins only, audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks_admin.alerts import deliver
from tasks_admin.models import AlertNotice, AlertRule
from tasks_admin.roles import Actor
from tasks_admin.services.base import (
    ActionConflict,
    ActionInvalid,
    ActionNotFound,
    ActionResult,
    perform,
)

MAX_SECONDS = 30 * 86400


@dataclass(frozen=True)
class RuleFields:
    """What an admin sets on a rule; ``clean`` turns form text into it or says why not."""

    name: str
    kind: str
    target: str
    threshold: float
    window_seconds: int
    cooldown_seconds: int
    webhook_url: str
    email_to: str
    enabled: bool

    @classmethod
    def clean(cls, data: Any) -> RuleFields:
        def text(key: str, limit: int) -> str:
            value = str(data.get(key, "") or "").strip()
            if len(value) > limit:
                raise ActionInvalid(f"{key} is longer than {limit} characters.")
            return value

        def number(key: str, default: float, *, integer: bool = False) -> float:
            raw = str(data.get(key, "") or "").strip()
            if not raw:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                raise ActionInvalid(f"{key} must be a number, not {raw[:40]!r}.") from None
            if value < 0 or value != value or value > 1e12:
                raise ActionInvalid(f"{key} must be zero or more.")
            return value

        name = text("name", 120)
        if not name:
            raise ActionInvalid("A rule needs a name.")
        kind = text("kind", 32)
        if kind not in AlertRule.Kind.values:
            raise ActionInvalid(f"kind must be one of {', '.join(AlertRule.Kind.values)}.")
        window = int(number("window_seconds", 300, integer=True))
        cooldown = int(number("cooldown_seconds", 1800, integer=True))
        if window > MAX_SECONDS or cooldown > MAX_SECONDS:
            raise ActionInvalid("window and cooldown are at most 30 days (2592000 s).")
        webhook = text("webhook_url", 500)
        if webhook:
            try:
                URLValidator(schemes=["http", "https"])(webhook)
            except ValidationError:
                raise ActionInvalid("webhook_url must be an http(s) URL.") from None
        emails = [part.strip() for part in text("email_to", 500).split(",") if part.strip()]
        for address in emails:
            try:
                EmailValidator()(address)
            except ValidationError:
                raise ActionInvalid(f"{address[:80]!r} is not an email address.") from None
        enabled = str(data.get("enabled", "") or "").lower() in {"on", "true", "1", "yes"}
        return cls(
            name=name,
            kind=kind,
            target=text("target", 255),
            threshold=number("threshold", 0.0),
            window_seconds=window,
            cooldown_seconds=cooldown,
            webhook_url=webhook,
            email_to=", ".join(emails),
            enabled=enabled,
        )

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def _audit_params(fields: RuleFields) -> dict[str, Any]:
    # The webhook URL carries its secret in the path: the audit keeps only its host.
    params = fields.as_dict()
    if fields.webhook_url:
        params["webhook_url"] = (
            fields.webhook_url.split("/", 3)[2] if "//" in fields.webhook_url else "set"
        )
    return params


def alert_rule_create(*, actor: Actor, fields: RuleFields) -> ActionResult:
    def run() -> ActionResult:
        try:
            with transaction.atomic():
                rule = AlertRule.objects.create(**fields.as_dict(), created_by=actor.username)
        except IntegrityError:
            raise ActionConflict(f"A rule named {fields.name!r} exists already.") from None
        return ActionResult(f"Rule {rule.name!r} created.", {"rule_id": rule.pk})

    return perform(
        actor, "alerts.manage", targets=[fields.name], params=_audit_params(fields), run=run
    )


def _rule(rule_id: int) -> AlertRule:
    try:
        return AlertRule.objects.get(pk=rule_id)
    except AlertRule.DoesNotExist:
        raise ActionNotFound(f"No alert rule {rule_id}.") from None


def alert_rule_update(*, actor: Actor, rule_id: int, fields: RuleFields) -> ActionResult:
    def run() -> ActionResult:
        rule = _rule(rule_id)
        for key, value in fields.as_dict().items():
            setattr(rule, key, value)
        rule.updated_at = timezone.now()
        try:
            with transaction.atomic():
                rule.save()
                # A changed rule starts afresh: old firing states belong to the old rule.
                if not rule.enabled:
                    rule.states.all().delete()
        except IntegrityError:
            raise ActionConflict(f"A rule named {fields.name!r} exists already.") from None
        return ActionResult(f"Rule {rule.name!r} saved.", {"rule_id": rule.pk})

    return perform(
        actor, "alerts.manage", targets=[str(rule_id)], params=_audit_params(fields), run=run
    )


def alert_rule_delete(*, actor: Actor, rule_id: int) -> ActionResult:
    def run() -> ActionResult:
        rule = _rule(rule_id)
        name = rule.name
        rule.delete()
        return ActionResult(f"Rule {name!r} deleted.", {"rule_id": rule_id})

    return perform(actor, "alerts.manage", targets=[str(rule_id)], run=run)


def alert_test_send(*, actor: Actor, rule_id: int) -> ActionResult:
    """Send a test notice on every channel of the rule now; the history records it."""

    def run() -> ActionResult:
        rule = _rule(rule_id)
        if not rule.webhook_url and not rule.recipients:
            raise ActionInvalid(f"Rule {rule.name!r} has no webhook URL and no email address.")
        notice = AlertNotice.objects.create(
            rule=rule,
            rule_name=rule.name,
            status=AlertNotice.Status.TEST,
            message=f"Test notice sent by {actor.username or 'someone'} from the console.",
        )
        deliver.send(notice, rule)
        outcome = ", ".join(f"{channel}: {result}" for channel, result in notice.delivery.items())
        return ActionResult(f"Test of {rule.name!r} — {outcome}.", {"delivery": notice.delivery})

    return perform(actor, "alerts.manage", targets=[str(rule_id)], params={"test": True}, run=run)
