"""Evaluate every enabled rule: open, remind, suppress and resolve, one notice per change.

Per rule and subject an ``AlertState`` remembers whether it is firing and when a notice
last went out. Crossing sends "firing" unless one went out within the cooldown (then the
notice is recorded as suppressed); still crossed after the cooldown sends a reminder; no
longer crossed sends "resolved". The collector is the only evaluator (one active
collector per broker), so no two processes send the same notice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.utils import timezone

from tasks_admin.alerts import deliver
from tasks_admin.alerts.measure import MEASURES
from tasks_admin.models import AlertNotice, AlertRule, AlertState

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    sent: int = 0
    suppressed: int = 0
    resolved: int = 0


def _notice(
    rule: AlertRule, status: str, subject: str, value: float | None, message: str, now: dt.datetime
) -> AlertNotice:
    return AlertNotice.objects.create(
        rule=rule,
        rule_name=rule.name,
        status=status,
        subject=subject,
        value=value,
        message=message,
        created_at=now,
    )


def evaluate_rule(rule: AlertRule, *, now: dt.datetime, tally: Evaluated) -> None:
    crossed = MEASURES[rule.kind](rule, now)
    cooldown = dt.timedelta(seconds=max(rule.cooldown_seconds, 0))
    states = {state.subject: state for state in rule.states.all()}
    for subject, (value, message) in crossed.items():
        state = states.get(subject) or AlertState(rule=rule, subject=subject)
        recently = state.last_notified_at is not None and now - state.last_notified_at < cooldown
        if not state.firing:
            state.firing, state.since = True, now
            if recently:
                _notice(rule, AlertNotice.Status.SUPPRESSED, subject, value, message, now)
                tally.suppressed += 1
            else:
                deliver.send(_notice(rule, "firing", subject, value, message, now), rule)
                state.last_notified_at = now
                tally.sent += 1
        elif not recently:
            deliver.send(_notice(rule, "reminder", subject, value, message, now), rule)
            state.last_notified_at = now
            tally.sent += 1
        state.value = value
        state.save()
    for subject, state in states.items():
        if state.firing and subject not in crossed:
            since = state.since or now
            message = f"{subject}: back to normal after {(now - since).total_seconds():.0f} s"
            deliver.send(_notice(rule, "resolved", subject, None, message, now), rule)
            state.firing = False
            state.save(update_fields=["firing"])
            tally.resolved += 1


def evaluate_rules(*, now: dt.datetime | None = None) -> Evaluated:
    now = now or timezone.now()
    tally = Evaluated()
    for rule in AlertRule.objects.filter(enabled=True):
        try:
            evaluate_rule(rule, now=now, tally=tally)
        except Exception:
            log.exception("alert rule %r could not be evaluated", rule.name)
    return tally
