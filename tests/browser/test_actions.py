"""Action controls in a real browser: htmx posts them with the CSRF token and swaps the
outcome (or the refusal, whatever its status) into the page without a reload."""

import datetime as dt

import pytest
from django.utils import timezone

from tasks_admin.models import AuditEntry, BulkRun, TaskRecord, WorkerRecord
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _task(task_id: str, state: str) -> None:
    at = timezone.now() - dt.timedelta(minutes=1)
    TaskRecord.objects.create(
        task_id=task_id, state=state, first_seen_at=at, last_event_at=at, updated_at=at, queue="q"
    )


def test_actions_answer_in_the_page_without_a_reload(asgi_server, browser, django_user_model):
    django_user_model.objects.create_superuser("root", password="a-long-test-password")
    now = timezone.now()
    WorkerRecord.objects.create(
        hostname="ghost@nowhere",
        is_online=True,
        first_seen_at=now,
        online_at=now,
        last_heartbeat_at=now,
        updated_at=now,
    )
    _task("queued-1", "PENDING")
    _task("queued-2", "PENDING")

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{asgi_server.url}/login/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server.url}/")

    # Purge: a mistyped confirmation is refused in place (a 400 swapped in).
    page.goto(f"{asgi_server.url}/queues/")
    page.evaluate("window.notReloaded = true")
    page.fill("#queue-purge input[name=queue]", "billing")
    page.fill("#queue-purge input[name=confirm]", "bill")
    page.click("#queue-purge button[type=submit]")
    page.wait_for_selector("#purge-result .notice.error")
    assert "exactly to confirm" in page.inner_text("#purge-result")
    assert page.evaluate("window.notReloaded") is True

    # Worker control: a worker that does not answer is said so, in place.
    page.goto(f"{asgi_server.url}/workers/ghost@nowhere/")
    page.evaluate("window.notReloaded = true")
    page.click("button[value=pool_grow]")
    page.wait_for_selector("#worker-action-result .notice.error", timeout=15000)
    assert "did not answer" in page.inner_text("#worker-action-result")
    assert page.evaluate("window.notReloaded") is True

    # Bulk: count first, then confirm, then the progress (here it stops: no worker online).
    page.goto(f"{asgi_server.url}/tasks/?state=PENDING")
    page.click("#bulk-actions summary")
    page.click("#bulk-actions button[type=submit]")
    page.wait_for_selector("text=Revoke 2 tasks")
    page.click("text=Revoke 2 tasks")
    page.wait_for_selector(".bulk-run progress")
    page.wait_for_selector(".bulk-run .notice.error", timeout=20000)
    assert "No worker answered" in page.inner_text(".bulk-run")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "bulk-action.png"), full_page=True)
    assert BulkRun.objects.get().status == "failed"

    assert problems == []
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {
        "queue.purge",
        "worker.control",
        "tasks.bulk",
    }
