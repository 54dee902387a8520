"""In a browser, as an admin: the advisor's findings and its run button, an alert rule
created from the form and its "Send test" reaching a webhook; no console errors."""

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from tasks_admin.models import AdvisorFinding, AlertRule, QueueRecord
from tasks_admin.roles import GROUP_NAMES, Role
from tests.advisor.webhook import webhook  # noqa: F401 (a fixture)
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_pages import HOSTILE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_runs_the_checks_and_sets_up_an_alert_with_a_test_notice(
    live_server,
    browser,
    webhook,  # noqa: F811
    django_user_model,
    settings,
):
    settings.CELERY_BROKER_URL = "memory://"
    user = django_user_model.objects.create_user("root", password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name=GROUP_NAMES[Role.ADMIN])[0])
    now = timezone.now()
    QueueRecord.objects.create(
        name=HOSTILE, depth=3, consumers=0, sampled_at=now, first_seen_at=now
    )
    AdvisorFinding.objects.create(
        check_name="accepts_pickle", subject="old@box", severity="critical",
        title="old@box accepts pickle", evidence="e", why="w", fix="f",
        first_seen_at=now, last_seen_at=now, resolved_at=now,
    )  # fmt: skip
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    # Straight to the advisor: this server (in-process, for the settings override) speaks
    # no websockets, which the live pages (the dashboard) would open.
    page.goto(f"{live_server.url}/login/?next=/advisor/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/advisor/")

    page.click("text=Run checks now")
    page.get_by_text("no consumer").first.wait_for()
    assert page.get_by_text(f"Queue {HOSTILE} has 3 message(s)").first.is_visible()
    assert page.get_by_text("old@box accepts pickle").is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "advisor-findings.png"), full_page=True)

    page.goto(f"{live_server.url}/alerts/")
    page.click("text=New rule")
    form = page.locator("form.rule-form").last
    form.locator("input[name=name]").fill("backlog")
    form.locator("select[name=kind]").select_option("queue_depth")
    form.locator("input[name=threshold]").fill("2")
    form.locator("input[name=webhook_url]").fill(webhook.url)
    form.locator("button[type=submit]").click()
    page.get_by_text("Rule 'backlog' created.").wait_for()
    page.click("text=Send test")
    page.get_by_text("webhook: sent").first.wait_for()
    page.screenshot(path=str(SCREENSHOTS / "alerts-admin.png"), full_page=True)

    assert AlertRule.objects.get().threshold == 2.0
    assert webhook.statuses() == ["test"]
    assert problems == []
