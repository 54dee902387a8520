"""API tokens: created by their user (at most their role), shown once, revoked by them."""

from __future__ import annotations

import datetime as dt
import secrets

from django.utils import timezone

from tasks_admin.models import ApiToken
from tasks_admin.models.api import SHOWN_CHARS, TOKEN_PREFIX, token_digest
from tasks_admin.roles import Actor, Role
from tasks_admin.services.base import (
    ActionInvalid,
    ActionNotFound,
    ActionRefused,
    ActionResult,
    perform,
)

MAX_EXPIRES_DAYS = 3650


def api_token_create(
    *, actor: Actor, name: str, role: Role, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token for the actor's own user, and its secret (the only time it exists in
    clear). Refused when ``role`` is above the actor's role."""
    name = name.strip()
    created: list[tuple[ApiToken, str]] = []

    def run() -> ActionResult:
        if not name or len(name) > 100:
            raise ActionInvalid("Give the token a name of 1 to 100 characters.")
        if actor.role is None or role > actor.role:
            mine = actor.role.label if actor.role is not None else "none"
            raise ActionRefused(
                f"A token's role cannot be above your own: you are {mine}, asked {role.label}."
            )
        if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
            raise ActionInvalid(f"Expiry must be 1 to {MAX_EXPIRES_DAYS} days.")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = (
            timezone.now() + dt.timedelta(days=expires_days) if expires_days is not None else None
        )
        token = ApiToken.objects.create(
            user=actor.user,
            name=name,
            prefix=raw[:SHOWN_CHARS],
            digest=token_digest(raw),
            role=role.label,
            expires_at=expires_at,
        )
        created.append((token, raw))
        return ActionResult(
            detail=f"Token {token.prefix}… ({role.label}) created.",
            data={"token_id": token.pk, "prefix": token.prefix},
        )

    perform(
        actor,
        "token.create",
        targets=[name],
        params={"role": role.label, "expires_days": expires_days},
        run=run,
    )
    return created[0]


def api_token_revoke(*, actor: Actor, token_id: int) -> ApiToken:
    """Revoke one of the actor's own tokens (idempotent: revoking twice keeps the first time)."""
    revoked: list[ApiToken] = []

    def run() -> ActionResult:
        token = ApiToken.objects.filter(pk=token_id, user=actor.user).first()
        if token is None:
            raise ActionNotFound("You have no token with that id.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
        revoked.append(token)
        return ActionResult(detail=f"Token {token.prefix}… revoked.", data={"token_id": token.pk})

    perform(actor, "token.revoke", targets=[str(token_id)], run=run)
    return revoked[0]
