from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from tasks_admin import services
from tasks_admin.roles import GROUP_NAMES, Actor, Role, role_of


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Verified basic-auth logins are remembered in the cache: per test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_user(django_user_model):
    def make(username: str = "alice", role: Role = Role.VIEWER, **fields: Any):
        user = django_user_model.objects.create_user(username, password="pw-" + username, **fields)
        if role is not Role.VIEWER:
            group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
            user.groups.add(group)
        return user

    return make


@pytest.fixture
def make_token():
    def make(user, role: Role | None = None, *, expires_days: int | None = None) -> str:
        user_role = role_of(user)
        actor = Actor(user=user, role=user_role, source="command")
        _, raw = services.api_token_create(
            actor=actor, name="test", role=role or user_role, expires_days=expires_days
        )
        return raw

    return make


@pytest.fixture
def token(make_user, make_token) -> str:
    return make_token(make_user("reader"))


@pytest.fixture
def api(client, token):
    """GET/POST with a viewer's bearer token; returns (status, json)."""

    class Api:
        def __init__(self) -> None:
            self.headers = {"Authorization": f"Bearer {token}"}

        def get(self, path: str, **params: Any):
            response = client.get(path, params, headers=self.headers)
            return response

        def json(self, path: str, status: int = 200, **params: Any) -> Any:
            response = self.get(path, **params)
            assert response.status_code == status, response.content[:2000]
            return response.json()

    return Api()
