"""Tokens: bearer auth, expiry, revocation, roles at most the user's, the command, the page."""

import datetime as dt
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from tasks_admin import services
from tasks_admin.api.auth import actor_of, request_role
from tasks_admin.models import ApiToken, AuditEntry
from tasks_admin.models.api import token_digest
from tasks_admin.roles import GROUP_NAMES, Actor, Role

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def test_a_request_without_credentials_gets_401_json_with_a_bearer_challenge(client):
    response = client.get("/api/v1/tasks/")
    assert response.status_code == 401
    assert response.json() == {
        "error": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_valid_token_reads_and_records_when_it_was_last_used(client, make_user, make_token):
    raw = make_token(make_user("bob"))
    response = client.get("/api/v1/tasks/", headers=bearer(raw))
    assert response.status_code == 200
    token = ApiToken.objects.get(digest=token_digest(raw))
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < dt.timedelta(seconds=10)


def test_tokens_are_stored_hashed_with_only_a_prefix_in_clear(make_user, make_token):
    raw = make_token(make_user("bob"))
    token = ApiToken.objects.get()
    assert raw.startswith("cc_") and len(raw) > 40
    assert token.digest == token_digest(raw) and raw not in token.digest
    assert raw.startswith(token.prefix) and len(token.prefix) == 10


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer cc_not-a-real-token", "Invalid token."),
        ("Bearer " + "x" * 300, "Invalid token."),
    ],
)
def test_an_unknown_token_is_refused_with_401(client, header, detail):
    response = client.get("/api/v1/tasks/", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"error": "authentication_failed", "detail": detail}


def test_a_revoked_token_is_refused(client, make_user, make_token):
    user = make_user("bob")
    raw = make_token(user)
    token = ApiToken.objects.get()
    services.api_token_revoke(actor=Actor(user, Role.VIEWER, "page"), token_id=token.pk)
    response = client.get("/api/v1/tasks/", headers=bearer(raw))
    assert response.status_code == 401
    assert response.json()["detail"] == "This token was revoked."


def test_an_expired_token_is_refused(client, make_user, make_token):
    raw = make_token(make_user("bob"), expires_days=1)
    ApiToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.get("/api/v1/tasks/", headers=bearer(raw))
    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "This token has expired.",
    }


def test_a_token_of_an_inactive_user_is_refused(client, make_user, make_token):
    user = make_user("bob")
    raw = make_token(user)
    user.is_active = False
    user.save()
    response = client.get("/api/v1/tasks/", headers=bearer(raw))
    assert response.status_code == 401


def test_a_token_role_above_the_users_is_refused_at_creation_and_audited(make_user):
    user = make_user("op", Role.OPERATOR)
    with pytest.raises(services.ActionRefused, match="cannot be above your own"):
        services.api_token_create(
            actor=Actor(user, Role.OPERATOR, "page"), name="too much", role=Role.ADMIN
        )
    assert not ApiToken.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome, entry.username) == ("token.create", "refused", "op")


def test_creating_a_token_is_audited_without_the_secret(make_user, make_token):
    raw = make_token(make_user("bob"))
    entry = AuditEntry.objects.get(action="token.create")
    assert entry.outcome == "succeeded"
    assert raw not in str(entry.params) + str(entry.result) + entry.detail


def test_the_request_role_is_the_tokens_role_not_the_users(make_user, make_token):
    admin = make_user("root", Role.ADMIN)
    raw = make_token(admin, Role.OPERATOR)
    request = APIRequestFactory().get("/api/v1/tasks/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    from tasks_admin.api.auth import BearerTokenAuthentication

    user, token = BearerTokenAuthentication().authenticate(request)
    request.user, request.auth = user, token
    assert request_role(request) == Role.OPERATOR
    actor = actor_of(request)
    assert (actor.role, actor.source, actor.address, actor.username) == (
        Role.OPERATOR,
        "api",
        "127.0.0.1",
        "root",
    )
    assert not actor.may("queue.purge") and actor.may("task.retry")


@pytest.mark.parametrize(
    ("groups", "superuser", "expected"),
    [
        ([], False, Role.VIEWER),
        (["unrelated", GROUP_NAMES[Role.OPERATOR]], False, Role.OPERATOR),
        ([GROUP_NAMES[Role.OPERATOR], GROUP_NAMES[Role.ADMIN], "ops"], False, Role.ADMIN),
        (["unrelated"], True, Role.ADMIN),
    ],
)
def test_the_token_query_reads_the_users_role_from_its_role_groups_only(
    make_user, make_token, groups, superuser, expected
):
    from django.contrib.auth.models import Group

    from tasks_admin.api.auth import token_user

    user = make_user("carol", is_superuser=superuser)
    raw = make_token(user, Role.VIEWER)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    found_user, token = token_user(raw)
    assert (found_user.pk, found_user.username, token.user_id) == (user.pk, "carol", user.pk)
    assert token.user_role is expected
    assert token.role_enum is Role.VIEWER


def test_a_demoted_user_demotes_their_tokens(make_user, make_token):
    admin = make_user("root", Role.ADMIN)
    raw = make_token(admin, Role.ADMIN)
    admin.groups.clear()
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    from tasks_admin.api.auth import BearerTokenAuthentication

    request.user, request.auth = BearerTokenAuthentication().authenticate(request)
    assert request_role(request) == Role.VIEWER


def test_session_auth_works_and_unsafe_methods_need_csrf(make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("bob"))
    assert client.get("/api/v1/tasks/").status_code == 200
    response = client.post("/api/v1/tasks/", {}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "CSRF" in response.json()["detail"]


def test_a_method_the_endpoint_lacks_is_405_json(client, token):
    response = client.post(
        "/api/v1/tasks/", {}, content_type="application/json", headers=bearer(token)
    )
    assert response.status_code == 405
    assert response.json() == {
        "error": "method_not_allowed",
        "detail": 'Method "POST" not allowed.',
    }


@override_settings(CONSOLE_API_THROTTLE="3/minute")
def test_a_token_past_its_rate_gets_429_json_with_retry_after(client, token):
    statuses = [
        client.get("/api/v1/task-names/", headers=bearer(token)).status_code for _ in range(3)
    ]
    response = client.get("/api/v1/task-names/", headers=bearer(token))
    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response.json()["error"] == "throttled"
    assert "Request was throttled" in response.json()["detail"]
    assert 1 <= int(response["Retry-After"]) <= 61


@override_settings(CONSOLE_API_THROTTLE="3/minute")
def test_throttling_counts_each_token_apart(client, make_user, make_token):
    first, second = make_token(make_user("a")), make_token(make_user("b"))
    for _ in range(3):
        client.get("/api/v1/task-names/", headers=bearer(first))
    assert client.get("/api/v1/task-names/", headers=bearer(first)).status_code == 429
    assert client.get("/api/v1/task-names/", headers=bearer(second)).status_code == 200


@override_settings(CONSOLE_API_THROTTLE_ANON="2/minute")
def test_requests_without_credentials_are_throttled_per_address(client):
    statuses = [client.get("/api/v1/tasks/").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


# --- the create_token command --------------------------------------------------------------


def test_create_token_prints_a_working_token_with_the_users_role(client, make_user, capsys):
    make_user("ops", Role.OPERATOR)
    call_command("create_token", "--user", "ops")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(digest=token_digest(raw))
    assert (token.role, token.expires_at, token.user.username) == ("operator", None, "ops")
    assert client.get("/api/v1/tasks/", headers=bearer(raw)).status_code == 200


def test_create_token_takes_a_lower_role_and_an_expiry(make_user, capsys):
    make_user("root", Role.ADMIN)
    call_command("create_token", "--user", "root", "--role", "viewer", "--expires-days", "7")
    token = ApiToken.objects.get(digest=token_digest(capsys.readouterr().out.strip()))
    assert token.role == "viewer"
    assert dt.timedelta(days=6.99) < token.expires_at - timezone.now() <= dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No user named 'nobody'"),
        (["--user", "ops", "--role", "admin"], "cannot be above your own"),
        (["--user", "ops", "--role", "boss"], "unknown role 'boss'"),
        (["--user", "ops", "--expires-days", "0"], "Expiry must be 1 to 3650 days"),
    ],
)
def test_create_token_refuses_bad_requests(make_user, args, message):
    make_user("ops", Role.OPERATOR)
    with pytest.raises(CommandError, match=message):
        call_command("create_token", *args)
    assert not ApiToken.objects.exists()


# --- the Tokens page --------------------------------------------------------------------------


def test_the_tokens_page_shows_a_new_token_once_and_then_only_its_prefix(client, make_user):
    client.force_login(make_user("bob", Role.OPERATOR))
    response = client.post("/tokens/", {"name": "ci", "role": "operator", "expires_days": "30"})
    assert response.status_code == 200
    page = response.content.decode()
    raw = re.search(
        r'<div class="notice" role="status" id="new-token">.*?<code>([^<]+)</code>', page, re.S
    )
    assert raw is not None
    token = ApiToken.objects.get(digest=token_digest(raw.group(1)))
    assert (token.name, token.role) == ("ci", "operator")
    assert response["Cache-Control"] == "no-store"
    again = client.get("/tokens/").content.decode()
    assert raw.group(1) not in again and f"{token.prefix}…" in again


def test_the_tokens_page_offers_only_roles_up_to_the_users(client, make_user):
    client.force_login(make_user("bob"))
    page = client.get("/tokens/").content.decode()
    assert '<option value="viewer"' in page
    assert 'value="operator"' not in page and 'value="admin"' not in page


def test_the_tokens_page_refuses_a_role_above_the_users(client, make_user):
    client.force_login(make_user("bob"))
    response = client.post("/tokens/", {"name": "x", "role": "admin"})
    assert response.status_code == 403
    assert "cannot be above your own" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_users_revoke_their_own_tokens_but_not_others(client, make_user, make_token):
    bob, eve = make_user("bob"), make_user("eve")
    make_token(bob)
    eves = ApiToken.objects.get(user=bob)
    client.force_login(eve)
    assert client.post(f"/tokens/{eves.pk}/revoke/").status_code == 404
    eves.refresh_from_db()
    assert eves.revoked_at is None
    client.force_login(bob)
    assert client.post(f"/tokens/{eves.pk}/revoke/").status_code == 302
    eves.refresh_from_db()
    assert eves.revoked_at is not None


def test_the_tokens_page_needs_sign_in_and_csrf(make_user):
    from django.test import Client

    anonymous = Client()
    assert anonymous.get("/tokens/").status_code == 302
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("bob"))
    assert strict.post("/tokens/", {"name": "x", "role": "viewer"}).status_code == 403
    assert not ApiToken.objects.exists()


def test_group_names_are_what_make_user_uses():
    assert GROUP_NAMES[Role.ADMIN] == "console-admin"
