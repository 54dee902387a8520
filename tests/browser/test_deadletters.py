"""In a browser: replay and retry post through htmx and the outcome appears in the page,
without a reload; hostile dead-letter data stays text."""

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from kombu import Connection

from tasks_admin.models import DeadLetter, TaskRecord
from tasks_admin.roles import GROUP_NAMES, Role
from tests import factories
from tests.browser.conftest import SCREENSHOTS
from tests.integration.conftest import BROKERS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = "<script>alert(1)</script>"


def test_an_operator_replays_and_retries_and_sees_each_outcome_without_a_reload(
    asgi_server,
    browser,
):
    user = User.objects.create_user("op", password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name=GROUP_NAMES[Role.OPERATOR])[0])
    letter = factories.dead_letter(name=HOSTILE, args=[{"note": HOSTILE}])
    at = timezone.now() - dt.timedelta(minutes=1)
    cut = TaskRecord.objects.create(
        task_id=factories.new_task_id(),
        name="demo.import_orders",
        state="FAILURE",
        args="({'orders': [...]},)",
        kwargs="{}",
        first_seen_at=at,
        last_event_at=at,
        updated_at=at,
    )
    queue = f"browser-{uuid.uuid4().hex[:8]}"

    page = browser.new_page(viewport={"width": 1366, "height": 800})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # hx-confirm asks first; a script from task data would show up as an unexpected dialog.
    page.on(
        "dialog",
        lambda d: d.accept() if d.type == "confirm" else (problems.append(d.message), d.dismiss()),
    )
    page.goto(f"{asgi_server.url}/login/")
    page.fill("input[name=username]", "op")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server.url}/")

    try:
        page.goto(f"{asgi_server.url}/deadletters/")
        assert page.get_by_text(HOSTILE).first.is_visible()
        page.evaluate("window.stillHere = true")
        page.check(f"input[name=id][value='{letter.pk}']")
        page.fill(".deadletter-actions input[name=queue]", queue)
        page.click("text=Replay selected")
        outcome = page.locator("#deadletter-outcome [data-outcome]")
        outcome.wait_for()
        assert outcome.get_attribute("data-outcome") == "ok"
        assert "Replayed 1 dead letter" in outcome.inner_text()
        assert page.evaluate("window.stillHere") is True  # swapped in, not reloaded
        assert "replayed as" in page.locator(f"#deadletter-state-{letter.pk}").inner_text()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "deadletters.png"), full_page=True)
        letter.refresh_from_db()
        assert (letter.state, letter.replay_queue) == ("replayed", queue)

        page.goto(f"{asgi_server.url}/deadletters/{letter.pk}/")
        page.screenshot(path=str(SCREENSHOTS / "deadletter.png"), full_page=True)

        page.goto(f"{asgi_server.url}/tasks/{cut.task_id}/")
        page.evaluate("window.stillHere = true")
        page.click("#task-deadletters button[type=submit]")
        refusal = page.locator("#retry-outcome [data-outcome]")
        refusal.wait_for()
        assert refusal.get_attribute("data-outcome") == "conflict"
        assert "shortened by Celery" in refusal.inner_text()
        assert page.evaluate("window.stillHere") is True
    finally:
        with Connection(BROKERS["redis"]) as conn:
            conn.default_channel.queue_purge(queue)
    assert DeadLetter.objects.get().replayed_as
    assert problems == []
