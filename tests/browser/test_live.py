"""Live updates in a real browser: a real collector and Celery worker (Redis), the console
under uvicorn, and Chromium watching pages change without reloading."""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page

from tasks_admin.models import TaskRecord
from tasks_admin.roles import GROUP_NAMES, Role
from tests.browser.conftest import SCREENSHOTS, sign_in, watched_page
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"


def _open_live(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#live-status[data-state=live]", timeout=15_000)
    # Survives only as long as the document does: a reload would drop it.
    page.evaluate("window.__sameDocument = true")


def _same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")


@pytest.fixture
def signed_in(asgi_server, browser, django_user_model):
    user = django_user_model.objects.create_user("sre", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=GROUP_NAMES[Role.OPERATOR])[0])
    page, problems = watched_page(browser)
    sign_in(page, asgi_server, "sre", PASSWORD)
    yield page, problems
    page.close()


def test_a_worker_started_during_the_test_appears_on_the_dashboard_without_a_reload(
    asgi_server, signed_in, redis_cluster
) -> None:
    page, problems = signed_in
    redis_cluster.collector()
    _open_live(page, f"{asgi_server.url}/")
    _, hostname = redis_cluster.worker()
    page.locator("#dashboard-workers").get_by_text(hostname).wait_for(timeout=30_000)
    page.locator("#stat-workers-online .value").filter(has_text="1").wait_for(timeout=10_000)
    assert _same_document(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "live-dashboard.png"), full_page=True)
    assert problems == []


def test_a_task_goes_from_received_to_succeeded_on_the_tasks_and_task_pages_without_a_reload(
    asgi_server, signed_in, redis_cluster
) -> None:
    page, problems = signed_in
    redis_cluster.collector()
    redis_cluster.worker()
    app = redis_cluster.sender()
    _open_live(page, f"{asgi_server.url}/tasks/")

    # A new task is announced, not inserted; a click brings it in (htmx, same document).
    first = app.send_task("demo.generate_report", args=[1], kwargs={"seconds": 4})
    notice = page.locator("#tasks-new .new-tasks")
    notice.filter(has_text="1 new task").wait_for(timeout=20_000)
    notice.click()
    row = page.locator(f'tr[data-task-id="{first.id}"]')
    row.wait_for(timeout=10_000)
    # Sent (PENDING), received or started: anything but its end, which comes live.
    assert row.locator(".state").inner_text() in ("PENDING", "RECEIVED", "STARTED")
    row.locator(".state-success").wait_for(timeout=20_000)
    assert _same_document(page)

    # The task page of a running task follows it to the end.
    second = app.send_task("demo.generate_report", args=[2], kwargs={"seconds": 4})
    wait_for(lambda: TaskRecord.objects.filter(pk=second.id, state="STARTED").exists(), 20)
    _open_live(page, f"{asgi_server.url}/tasks/{second.id}/")
    state = page.locator("#task-head h1 .state")
    assert state.inner_text() == "STARTED"
    # An operator may terminate it while it runs; the control goes when the task ends.
    terminate = page.locator("#task-controls button", has_text="Terminate")
    assert terminate.is_visible()
    page.locator("#task-head h1 .state-success").wait_for(timeout=20_000)
    terminate.wait_for(state="detached", timeout=10_000)
    assert _same_document(page)
    page.get_by_text("task-succeeded").first.wait_for(timeout=5_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "live-task.png"), full_page=True)
    assert problems == []
