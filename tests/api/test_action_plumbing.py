"""What phase 2's action endpoints rely on, end to end through a stand-in endpoint: the
token's role reaches services as an Actor with source "api", refusals and conflicts come
back as JSON with their status, and every attempt is audited with who and from where."""

import pytest
from django.test import override_settings

from tasks_admin.models import AuditEntry
from tasks_admin.roles import Role

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.action_urls")]


def post(client, raw: str, task_id: str):
    return client.post(
        f"/test-actions/{task_id}/retry/",
        {},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )


def test_a_viewer_token_is_refused_with_403_json_and_the_refusal_is_audited(
    client, make_user, make_token
):
    raw = make_token(make_user("ops", Role.OPERATOR), Role.VIEWER)
    response = post(client, raw, "t-1")
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": "task.retry needs the operator role; you are viewer.",
    }
    entry = AuditEntry.objects.get(action="task.retry")
    assert (entry.username, entry.role, entry.source, entry.address, entry.outcome) == (
        "ops",
        "viewer",
        "api",
        "127.0.0.1",
        "refused",
    )


def test_an_operator_token_acts_and_gets_what_happened(client, make_user, make_token):
    raw = make_token(make_user("ops", Role.OPERATOR))
    response = post(client, raw, "t-1")
    assert response.status_code == 200
    assert response.json() == {"detail": "Retried t-1.", "result": {"new_task_id": "n-1"}}
    entry = AuditEntry.objects.get(action="task.retry")
    assert (entry.outcome, entry.targets, entry.result) == (
        "succeeded",
        ["t-1"],
        {"new_task_id": "n-1"},
    )


def test_an_action_that_cannot_apply_is_a_409_json_and_audited_as_failed(
    client, make_user, make_token
):
    raw = make_token(make_user("ops", Role.OPERATOR))
    response = post(client, raw, "running")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "The task is running; revoke it first.",
    }
    assert AuditEntry.objects.get(action="task.retry").outcome == "failed"


@override_settings(CONSOLE_API_THROTTLE="1/minute")
def test_actions_are_throttled_like_reads(client, make_user, make_token):
    raw = make_token(make_user("ops", Role.OPERATOR))
    assert post(client, raw, "t-1").status_code == 200
    assert post(client, raw, "t-2").status_code == 429
