import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from tasks_admin.roles import GROUP_NAMES, Role, role_of

pytestmark = pytest.mark.django_db


def _create(**options: str) -> str:
    out = StringIO()
    call_command("create_user", stdout=out, **options)
    return out.getvalue()


def test_create_user_with_a_role_prints_a_generated_password_that_signs_in() -> None:
    output = _create(username="olga", role="operator")

    password = re.search(r"created operator olga  password (\S+)", output)[1]
    user = authenticate(username="olga", password=password)
    assert user is not None and role_of(user) is Role.OPERATOR
    assert list(user.groups.values_list("name", flat=True)) == ["console-operator"]


def test_create_user_creates_the_role_groups_on_demand_and_keeps_a_given_password() -> None:
    assert not Group.objects.exists()

    output = _create(username="ann", role="ADMIN", password="correct horse 7")

    assert output.strip() == "created admin ann"
    assert "correct horse" not in output
    user = authenticate(username="ann", password="correct horse 7")
    assert role_of(user) is Role.ADMIN
    assert Group.objects.get().name == GROUP_NAMES[Role.ADMIN]
    _create(username="vic", role="viewer")
    assert Group.objects.count() == 2


def test_create_user_refuses_an_unknown_role_naming_the_choices() -> None:
    with pytest.raises(CommandError, match="unknown role 'root'; choose one of viewer, operator"):
        _create(username="x", role="root")
    assert not Group.objects.exists()


def test_create_user_refuses_an_existing_username() -> None:
    _create(username="olga", role="viewer")
    with pytest.raises(CommandError, match="user 'olga' already exists"):
        _create(username="olga", role="admin")
