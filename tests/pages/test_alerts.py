"""The Alerts page: rules for admins (server-side role check, CSRF, audit), read-only for
others, the history, and the send-test button."""

import pytest
from django.contrib.auth.models import Group

from tasks_admin.models import AlertNotice, AlertRule, AuditEntry
from tasks_admin.roles import GROUP_NAMES, Role
from tests.pages.markup import ESCAPED, HOSTILE

pytestmark = pytest.mark.django_db

RULE = {
    "name": "emails backlog",
    "kind": "queue_depth",
    "target": "emails",
    "threshold": "100",
    "window_seconds": "60",
    "cooldown_seconds": "600",
    "webhook_url": "",
    "email_to": "ops@example.com, oncall@example.com",
    "enabled": "on",
}


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_user("alice", password="not-used-1")
    user.groups.add(Group.objects.get_or_create(name=GROUP_NAMES[Role.ADMIN])[0])
    client.force_login(user)
    return client


def test_an_admin_creates_a_rule_and_it_is_audited(admin_client):
    response = admin_client.post("/alerts/rules/", RULE, follow=True)

    assert response.status_code == 200
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.target, rule.threshold, rule.window_seconds) == (
        "queue_depth",
        "emails",
        100.0,
        60,
    )
    assert rule.recipients == ["ops@example.com", "oncall@example.com"]
    assert "Rule &#x27;emails backlog&#x27; created." in response.content.decode()
    entry = AuditEntry.objects.get(action="alerts.manage")
    assert (entry.username, entry.outcome) == ("alice", "succeeded")


def test_a_viewer_sees_rules_read_only_and_is_refused_on_the_server(client):
    AlertRule.objects.create(name="existing", kind="queue_depth", threshold=5)

    page = client.get("/alerts/").content.decode()
    response = client.post("/alerts/rules/", RULE)
    delete = client.post(f"/alerts/rules/{AlertRule.objects.get().pk}/delete/")

    assert "existing" in page and "New rule" not in page and "Send test" not in page
    assert response.status_code == 403 and delete.status_code == 403
    assert "needs the admin role" in response.content.decode()
    assert AlertRule.objects.count() == 1
    assert AuditEntry.objects.filter(action="alerts.manage", outcome="refused").count() == 2


def test_bad_input_is_a_400_with_the_reason_and_keeps_what_was_typed(admin_client):
    response = admin_client.post("/alerts/rules/", {**RULE, "threshold": "lots"})

    assert response.status_code == 400
    body = response.content.decode()
    assert "threshold must be a number" in body
    assert 'value="emails backlog"' in body
    assert not AlertRule.objects.exists()


def test_a_webhook_that_is_not_http_is_refused(admin_client):
    response = admin_client.post("/alerts/rules/", {**RULE, "webhook_url": "file:///etc/passwd"})
    assert response.status_code == 400
    assert "http(s) URL" in response.content.decode()


def test_a_duplicate_name_is_a_409(admin_client):
    admin_client.post("/alerts/rules/", RULE)
    assert admin_client.post("/alerts/rules/", RULE).status_code == 409


def test_an_admin_edits_and_deletes_a_rule(admin_client):
    admin_client.post("/alerts/rules/", RULE)
    rule = AlertRule.objects.get()

    admin_client.post(f"/alerts/rules/{rule.pk}/", {**RULE, "threshold": "7", "enabled": ""})
    rule.refresh_from_db()
    assert (rule.threshold, rule.enabled) == (7.0, False)
    admin_client.post(f"/alerts/rules/{rule.pk}/delete/")
    assert not AlertRule.objects.exists()
    assert admin_client.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 404


def test_send_test_delivers_to_the_webhook_and_by_email_and_is_in_the_history(
    admin_client, webhook, mailoutbox
):
    admin_client.post("/alerts/rules/", {**RULE, "webhook_url": webhook.url})
    rule = AlertRule.objects.get()

    response = admin_client.post(f"/alerts/rules/{rule.pk}/test/", follow=True)

    assert webhook.statuses() == ["test"]
    assert webhook.bodies[0]["rule"] == "emails backlog"
    assert [m.to for m in mailoutbox] == [["ops@example.com", "oncall@example.com"]]
    notice = AlertNotice.objects.get()
    assert notice.delivery == {"webhook": "sent", "email": "sent"}
    assert "webhook: sent" in response.content.decode()


def test_forms_need_a_csrf_token(admin_client):
    admin_client.handler.enforce_csrf_checks = True
    assert admin_client.post("/alerts/rules/", RULE).status_code == 403
    assert not AlertRule.objects.exists()


def test_history_escapes_what_it_shows(client):
    AlertNotice.objects.create(rule_name=HOSTILE, status="firing", subject=HOSTILE, message=HOSTILE)

    page = client.get("/alerts/").content.decode()

    assert HOSTILE not in page and ESCAPED in page
