"""What only a browser proves: sign-in works, pages render without console errors, task
data stays text. Headless Chromium from Debian (apt chromium), driven by Playwright;
screenshots of every page go to artifacts/screenshots/ (kept by CI)."""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tasks_admin.collector.writer import BatchWriter
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
HOSTILE = "<script>alert(1)</script>"
# Chromium flags for a root user on a machine without network or GPU.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Browser:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("Debian's chromium is required for browser tests (apt-get install chromium)")
    # Playwright's sync API keeps an event loop in this thread, which makes Django refuse ORM
    # calls from the test (and the database flush after it); they are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def test_sign_in_then_every_page_renders_without_errors_and_task_data_stays_text(
    live_server, browser, django_user_model
):
    django_user_model.objects.create_user("sre", password="a-long-test-password")
    events = factories.failed_task(name=HOSTILE) + factories.retried_then_succeeded_task()
    events.append(factories.heartbeat(f"celery@{HOSTILE}", type_="worker-online"))
    BatchWriter(max_chars=65536).write(events)
    task_id = events[0]["uuid"]

    page = browser.new_page(viewport={"width": 1366, "height": 800})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # An alert() would mean task data ran as script.
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))

    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "sre")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

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
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        if name in ("tasks", "task", "failures", "workers"):
            # The hostile name is shown as text, and no element came from it.
            assert page.get_by_text(HOSTILE).first.is_visible(), name
    assert page.evaluate("typeof htmx") == "object"
    assert problems == []
