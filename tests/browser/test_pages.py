"""What only a browser proves: sign-in works, pages render without console errors, task
data stays text. Headless Chromium from Debian (apt chromium), driven by Playwright;
screenshots of every page go to artifacts/screenshots/ (kept by CI)."""

import pytest

from tasks_admin.collector.writer import BatchWriter
from tests import factories
from tests.browser.conftest import SCREENSHOTS, sign_in, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = "<script>alert(1)</script>"


def test_sign_in_then_every_page_renders_without_errors_and_task_data_stays_text(
    asgi_server, browser, django_user_model
):
    django_user_model.objects.create_user("sre", password="a-long-test-password")
    events = factories.failed_task(name=HOSTILE) + factories.retried_then_succeeded_task()
    events.append(factories.heartbeat(f"celery@{HOSTILE}", type_="worker-online"))
    BatchWriter(max_chars=65536).write(events)
    task_id = events[0]["uuid"]

    page, problems = watched_page(browser)
    sign_in(page, asgi_server, "sre", "a-long-test-password")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in [
        ("dashboard", "/"),
        ("tasks", "/tasks/"),
        ("task", f"/tasks/{task_id}/"),
        ("failures", "/failures/"),
        ("workers", "/workers/"),
        ("queues", "/queues/"),
        ("advisor", "/advisor/"),
        ("alerts", "/alerts/"),
    ]:
        response = page.goto(f"{asgi_server.url}{path}")
        assert response is not None and response.status == 200, path
        # A live page's connection opened, and its snapshot (which swaps the same parts) is in.
        if page.locator("[ws-connect]").count():
            page.wait_for_selector("#live-status[data-state=live]", timeout=10_000)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        if name in ("tasks", "task", "failures", "workers"):
            # The hostile name is shown as text, and no element came from it.
            assert page.get_by_text(HOSTILE).first.is_visible(), name
    assert page.evaluate("typeof htmx") == "object"
    assert problems == []
