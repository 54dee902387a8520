import pytest
from django.contrib.auth.models import Group, User

from tasks_admin.roles import GROUP_NAMES, Actor, Role, may, role_of

pytestmark = pytest.mark.django_db


def test_signed_in_user_without_role_group_is_a_viewer() -> None:
    user = User.objects.create_user("plain")
    assert role_of(user) is Role.VIEWER


def test_highest_role_group_wins() -> None:
    user = User.objects.create_user("both")
    for role in (Role.VIEWER, Role.OPERATOR):
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        user.groups.add(group)
    assert role_of(user) is Role.OPERATOR


def test_superuser_is_admin_and_inactive_user_has_no_role() -> None:
    assert role_of(User.objects.create_superuser("root", password="x")) is Role.ADMIN
    assert role_of(User.objects.create_user("gone", is_active=False)) is None


def test_actions_need_their_least_role() -> None:
    assert not may(Role.VIEWER, "task.retry")
    assert may(Role.OPERATOR, "task.retry")
    assert not may(Role.OPERATOR, "queue.purge")
    assert may(Role.ADMIN, "queue.purge")
    assert not may(Role.ADMIN, "no.such.action")
    assert not may(None, "task.retry")


def test_actor_checks_its_role() -> None:
    actor = Actor(user=None, role=Role.OPERATOR, source="api", address="127.0.0.1")
    assert actor.may("deadletter.replay") and not actor.may("worker.control")


def test_parse_names_the_choices_on_bad_input() -> None:
    assert Role.parse(" Operator ") is Role.OPERATOR
    with pytest.raises(ValueError, match="viewer, operator, admin"):
        Role.parse("root")


def test_pages_know_what_the_signed_in_user_may_do(client) -> None:
    user = User.objects.create_user("op", password="pw-123456")
    user.groups.add(Group.objects.create(name=GROUP_NAMES[Role.OPERATOR]))
    client.force_login(user)
    context = client.get("/").context
    assert context["console_role"] is Role.OPERATOR
    assert context["console_may"]["task_retry"] is True
    assert context["console_may"]["queue_purge"] is False
