import pytest
from django.db import DatabaseError, connection, transaction

from tasks_admin import services
from tasks_admin.models import AuditEntry
from tasks_admin.roles import Actor, Role

pytestmark = pytest.mark.django_db


class _User:
    username = "ada"


def _actor(role: Role | None) -> Actor:
    return Actor(user=_User(), role=role, source="page", address="10.0.0.7")


def test_refused_action_is_audited_and_never_runs() -> None:
    ran = []
    with pytest.raises(services.ActionRefused, match="needs the admin role; you are operator"):
        services.perform(
            _actor(Role.OPERATOR),
            "queue.purge",
            targets=["celery"],
            run=lambda: ran.append(1) or services.ActionResult("purged"),
        )
    assert ran == []
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.role, entry.source, entry.address) == (
        "ada",
        "operator",
        "page",
        "10.0.0.7",
    )
    assert (entry.action, entry.targets, entry.outcome) == ("queue.purge", ["celery"], "refused")


def test_succeeded_action_is_audited_with_its_result() -> None:
    result = services.perform(
        _actor(Role.ADMIN),
        "queue.purge",
        targets=["celery"],
        params={"confirm": "celery"},
        run=lambda: services.ActionResult("3 messages purged", {"purged": 3}),
    )
    assert result.data == {"purged": 3}
    entry = AuditEntry.objects.get()
    assert (entry.outcome, entry.detail, entry.result, entry.params) == (
        "succeeded",
        "3 messages purged",
        {"purged": 3},
        {"confirm": "celery"},
    )


def test_failure_is_audited_and_raised_as_action_error() -> None:
    def explode() -> services.ActionResult:
        raise ConnectionRefusedError("broker down")

    with pytest.raises(services.ActionError, match="ConnectionRefusedError: broker down"):
        services.perform(_actor(Role.OPERATOR), "task.revoke", targets=["t1"], run=explode)
    assert AuditEntry.objects.get().outcome == "failed"


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="ACTION_ROLES"):
        services.perform(
            _actor(Role.ADMIN), "task.explode", targets=[], run=lambda: services.ActionResult("")
        )


def test_audit_entries_cannot_be_updated_or_deleted() -> None:
    services.perform(
        _actor(Role.ADMIN),
        "worker.control",
        targets=["celery@a"],
        run=lambda: services.ActionResult("ok"),
    )
    for statement in (
        "UPDATE tasks_admin_auditentry SET outcome = 'failed'",
        "DELETE FROM tasks_admin_auditentry",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AuditEntry.objects.get().outcome == "succeeded"
