"""API tokens: what scripts authenticate with (``Authorization: Bearer <token>``)."""

import datetime as dt
import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

from tasks_admin.roles import Role

TOKEN_PREFIX = "cc_"  # noqa: S105 (a marker that lets secret scanners spot tokens)
# Characters of the token kept in clear, so people can tell their tokens apart.
SHOWN_CHARS = 10


def token_digest(token: str) -> str:
    """SHA-256 of the token. Tokens are 256 random bits, so a fast hash is enough: there is
    no dictionary to try, and a slow one would cost every API request."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiToken(models.Model):
    """A token is shown once, at creation; only its digest and first characters are kept.

    ``role`` is at most the user's role when created; a request's role is the lower of the
    token's and the user's current role, so demoting a user demotes their tokens.
    """

    ROLE_CHOICES = [(role.label, role.label) for role in Role]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=SHOWN_CHARS)
    digest = models.CharField(max_length=64, unique=True)
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # Not a column: the user's role, read with the token by the API's authentication so a
    # request decides its role without another query (tasks_admin.api.auth.token_user).
    user_role: Role | None = None

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_idx")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name}, {self.role})"

    @property
    def role_enum(self) -> Role:
        return Role.parse(self.role)

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and not self.expired()
