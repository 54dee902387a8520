"""Who is asking: bearer tokens, HTTP basic (Flower's scripts), the session (browsable API).

A request's role is decided here, once: the lower of the token's role and its user's
current role (a session or basic auth carries the user's role). ``actor_of`` hands it to
services as an ``Actor`` with source "api", so the API and the pages share one rule.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from tasks_admin.api import throttle
from tasks_admin.models import ApiToken
from tasks_admin.models.api import token_digest
from tasks_admin.roles import GROUP_NAMES, Actor, Role, role_of, role_of_groups

# last_used_at is written at most this often per token: one UPDATE per request would
# turn every read into a write.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
BASIC_AUTH_CACHE_SECONDS = 60


def bearer_token(request: Any) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


def token_user(raw: str) -> tuple[Any, ApiToken]:
    """The user and token for ``raw``; AuthenticationFailed saying why it is refused.

    The token comes back with ``user_role`` set: its user's role, read in the same query.
    """
    if len(raw) > 200 or "\x00" in raw:
        raise exceptions.AuthenticationFailed("Invalid token.")
    token = _token_with_user(token_digest(raw))
    if token is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This token was revoked.")
    if token.expired(now):
        raise exceptions.AuthenticationFailed("This token has expired.")
    if not token.user.is_active:
        raise exceptions.AuthenticationFailed("This token's user is inactive.")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.user, token


def _token_with_user(digest: str) -> ApiToken | None:
    """The token with this digest, its user, and the user's role groups: one round trip.

    Every API call authenticates, and through the ORM this took two queries (the token
    with its user, then the user's groups) and about a fifth of the web process's CPU per
    task-list request, mostly compiling them; this SQL is built once per process.
    """
    sql, token_fields, user_fields = _token_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(GROUP_NAMES.values()), digest])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_fields)
    user_model = get_user_model()
    token = ApiToken.from_db(connection.alias, token_fields, row[:split])
    user = user_model.from_db(connection.alias, user_fields, row[split : split + len(user_fields)])
    token.user = user
    token.user_role = Role.ADMIN if user.is_superuser else role_of_groups(row[-1])
    return token


@functools.cache
def _token_query() -> tuple[str, list[str], list[str]]:
    """(SQL, token fields, user fields) of _token_with_user, for the configured user model."""
    user_model = get_user_model()
    groups: Any = user_model._meta.get_field("groups")
    through = groups.remote_field.through._meta
    q = connection.ops.quote_name
    token_columns = {f.attname: f"t.{q(str(f.column))}" for f in ApiToken._meta.concrete_fields}
    user_columns = {f.attname: f"u.{q(str(f.column))}" for f in user_model._meta.concrete_fields}
    user_pk = user_columns[user_model._meta.pk.attname]
    # Only the console's role groups: a user may be in many others. This parameter comes
    # before the digest's.
    role_groups = (
        f"ARRAY(SELECT g.name FROM {q(through.db_table)} ug "
        f"JOIN {q(Group._meta.db_table)} g ON g.id = ug.{q(groups.m2m_reverse_name())} "
        f"WHERE ug.{q(groups.m2m_column_name())} = {user_pk} AND g.name = ANY(%s))"
    )
    sql = (
        f"SELECT {', '.join([*token_columns.values(), *user_columns.values()])}, {role_groups} "
        f"FROM {q(ApiToken._meta.db_table)} t "
        f"JOIN {q(user_model._meta.db_table)} u ON {user_pk} = {token_columns['user_id']} "
        f"WHERE {token_columns['digest']} = %s"
    )
    return sql, list(token_columns), list(user_columns)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        raw = bearer_token(request)
        return None if raw is None else token_user(raw)

    def authenticate_header(self, request: Request) -> str:
        # A WWW-Authenticate header makes DRF answer 401 (not 403) without credentials.
        return 'Bearer realm="api"'


class ApiSessionAuthentication(authentication.SessionAuthentication):
    """The console's session, for the browsable API; CSRF-checked on unsafe methods."""


class FlowerBasicAuthentication(authentication.BasicAuthentication):
    """Flower's scripts send HTTP basic auth; the console's username and password work."""

    www_authenticate_realm = "flower"

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        # Password hashing is deliberately slow (PBKDF2, ~1M rounds) and scripts call
        # often: a verified pair is remembered for BASIC_AUTH_CACHE_SECONDS, keyed by a
        # keyed hash of the pair, never the password itself.
        key = (
            "console-basic:"
            + hmac.new(
                settings.SECRET_KEY.encode(),
                f"{userid}\x00{password}".encode("utf-8", "surrogatepass"),
                hashlib.sha256,
            ).hexdigest()
        )
        user_pk = cache.get(key)
        user = None
        if user_pk is not None:
            user = get_user_model().objects.filter(pk=user_pk).first()
        if user is None:
            user = authenticate(request=request, username=userid, password=password)
            if user is not None:
                cache.set(key, user.pk, BASIC_AUTH_CACHE_SECONDS)
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return user, None


def request_role(request: Request) -> Role | None:
    """The role this request acts with (see the module docstring)."""
    token = getattr(request, "auth", None)
    if not isinstance(token, ApiToken):
        return role_of(getattr(request, "user", None))
    # Read with the token (token_user): the user's role as of this request.
    user_role = token.user_role if token.user.is_active else None
    return None if user_role is None else min(token.role_enum, user_role)


def client_address(request: Any) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def actor_of(request: Request) -> Actor:
    """The Actor services receive for an API request (phase 2's action endpoints)."""
    return Actor(
        user=request.user,
        role=request_role(request),
        source="api",
        address=client_address(request),
    )


class HasRole(permissions.BasePermission):
    """Any role at all: every read needs a viewer. Actions are checked by services."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.user is None or not request.user.is_authenticated:
            # DRF throttles after permissions; anonymous requests are throttled here, so
            # the anonymous rate also bounds probing without credentials.
            view.check_throttles(request)
            # NotAuthenticated (401), not PermissionDenied (403): no one is signed in.
            raise exceptions.NotAuthenticated()
        return request_role(request) is not None


class ApiThrottle(throttling.SimpleRateThrottle):
    """One bucket per token (or signed-in user), and per address for everyone else.

    Rates come from settings at request time (CONSOLE_API_THROTTLE*), so they can be
    changed by configuration and in tests. Counts are kept in Redis (``throttle``), shared
    by every web process; Django's cache (``self.cache``) is not used.
    """

    def get_rate(self) -> str | None:
        return None  # decided per request in allow_request

    def allow_request(self, request: Request, view: Any) -> bool:
        user = getattr(request, "user", None)
        token = getattr(request, "auth", None)
        if isinstance(token, ApiToken):
            scope, ident = "token", str(token.pk)
            rate = settings.CONSOLE_API_THROTTLE
        elif user is not None and user.is_authenticated:
            scope, ident = "user", str(user.pk)
            rate = settings.CONSOLE_API_THROTTLE
        else:
            scope, ident = "anon", self.get_ident(request)
            rate = settings.CONSOLE_API_THROTTLE_ANON
        if not rate:
            return True
        self.num_requests, self.duration = self.parse_rate(rate)
        self.waited = throttle.hit(throttle.key(scope, ident), self.num_requests, self.duration)
        return not self.waited

    def wait(self) -> float | None:
        return getattr(self, "waited", None) or None


def address_allowed(address: str, networks: list[str]) -> bool:
    """Whether ``address`` is in one of ``networks`` (CIDRs or single addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tasks_admin.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An API token."}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "tasks_admin.api.auth.ApiSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
