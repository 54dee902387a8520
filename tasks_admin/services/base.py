"""The one path every action takes: role check, run, audit entry, typed outcome.

Pages, the API, the Flower-compatible routes and management commands all call services;
services call ``perform``, so the role rule and the audit trail cannot be skipped by a new
entry point. Errors are ``ActionError`` subclasses carrying a stable code and an HTTP
status, which views and the API turn into a message or ``{"error": code, "detail": text}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks_admin.models import AuditEntry
from tasks_admin.roles import ACTION_ROLES, Actor

logger = logging.getLogger(__name__)


class ActionError(Exception):
    """An action that did not happen, with the reason a person can act on."""

    code = "action_failed"
    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ActionInvalid(ActionError):
    code, status = "invalid", 400


class ActionRefused(ActionError):
    code, status = "forbidden", 403


class ActionNotFound(ActionError):
    code, status = "not_found", 404


class ActionConflict(ActionError):
    """The target exists but the action cannot apply to it now (retry a running task)."""

    code, status = "conflict", 409


class ActionUnavailable(ActionError):
    """The broker or a worker did not answer; nothing is known to have happened."""

    code, status = "unavailable", 503


@dataclass
class ActionResult:
    """What an action did: a sentence for people, data for scripts (ids, counts, replies)."""

    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def perform(
    actor: Actor,
    action: str,
    *,
    targets: Sequence[str],
    params: dict[str, Any] | None = None,
    run: Callable[[], ActionResult],
) -> ActionResult:
    """Check ``actor`` may do ``action``, run it, and audit the attempt whatever happens.

    The audit row is committed on its own (autocommit), before the outcome is returned
    or raised, so a refused or failed attempt is recorded even if the caller rolls back.
    Unexpected exceptions are audited as failed and re-raised as ``ActionError``.
    """
    if action not in ACTION_ROLES:
        raise ValueError(f"unknown action {action!r}: add it to roles.ACTION_ROLES")
    params = params or {}
    if not actor.may(action):
        needed = ACTION_ROLES[action].label
        detail = f"{action} needs the {needed} role; you are {_role_label(actor)}."
        _audit(actor, action, targets, params, AuditEntry.Outcome.REFUSED, detail)
        raise ActionRefused(detail)
    try:
        result = run()
    except ActionError as error:
        outcome = (
            AuditEntry.Outcome.REFUSED
            if isinstance(error, ActionRefused)
            else AuditEntry.Outcome.FAILED
        )
        _audit(actor, action, targets, params, outcome, error.detail)
        raise
    except Exception as error:
        logger.exception("%s on %s failed", action, list(targets)[:10])
        detail = f"{type(error).__name__}: {error}"
        _audit(actor, action, targets, params, AuditEntry.Outcome.FAILED, detail)
        raise ActionError(detail) from error
    _audit(actor, action, targets, params, AuditEntry.Outcome.SUCCEEDED, result.detail, result.data)
    return result


def _role_label(actor: Actor) -> str:
    return actor.role.label if actor.role is not None else "not signed in"


def _audit(
    actor: Actor,
    action: str,
    targets: Sequence[str],
    params: dict[str, Any],
    outcome: str,
    detail: str,
    data: dict[str, Any] | None = None,
) -> None:
    AuditEntry.objects.create(
        username=actor.username,
        role=actor.role.label if actor.role is not None else "",
        source=actor.source,
        address=actor.address[:64],
        action=action,
        targets=[str(target) for target in targets],
        params=params,
        outcome=outcome,
        detail=detail,
        result=data or {},
    )
