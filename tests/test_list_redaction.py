"""CONSOLE_REDACT_ARGS applies wherever a task's arguments are listed, not only on its page:
the task list (page, live row, /api/v1, Flower's /api/tasks and /api/task/info) and a
worker's reserved tasks."""

import base64

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from tasks_admin.models import TaskRecord, WorkerRecord
from tasks_admin.selectors import task_facts
from tasks_admin.selectors import tasks as task_selectors

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redact_password")]

SECRET = "hunter2-s3cret"
KWARGS = f"{{'password': '{SECRET}', 'user': 'ada'}}"
ARGS = f"(1, Login(password='{SECRET}'))"


@pytest.fixture
def redact_password():
    with override_settings(CONSOLE_REDACT_ARGS=["password"]):
        yield


@pytest.fixture
def stored_task() -> TaskRecord:
    now = timezone.now()
    return TaskRecord.objects.create(
        task_id="t-secret",
        name="app.login",
        state="STARTED",
        worker="celery@w1",
        first_seen_at=now,
        last_event_at=now,
        updated_at=now,
        started_at=now,
        args=ARGS,
        kwargs=KWARGS,
    )


@pytest.fixture
def user() -> User:
    return User.objects.create_user("ada", password="pw-ada-123")


def assert_redacted(text: str) -> None:
    assert SECRET not in text
    assert "[redacted]" in text


def test_task_list_rows_are_redacted_in_the_selector_and_stored_values_are_not(stored_task):
    [row] = task_selectors.task_page(task_selectors.TaskFilters()).rows
    assert row.kwargs == "{'password': '[redacted]', 'user': 'ada'}"
    assert row.args == "(1, Login(password='[redacted]'))"
    assert TaskRecord.objects.get(pk="t-secret").kwargs == KWARGS
    [by_id] = task_selectors.task_page(task_selectors.TaskFilters(search="t-secret")).rows
    assert by_id.kwargs == row.kwargs


def test_the_tasks_page_shows_redacted_arguments(client, user, stored_task):
    client.force_login(user)
    response = client.get("/tasks/")
    assert response.status_code == 200
    assert_redacted(response.content.decode())


def test_a_live_row_is_redacted(stored_task):
    row = task_facts.row_from_facts(task_facts.task_facts(stored_task))
    assert row.kwargs == "{'password': '[redacted]', 'user': 'ada'}"


def test_the_v1_task_list_is_redacted(client, user, stored_task):
    client.force_login(user)
    response = client.get("/api/v1/tasks/")
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["kwargs"] == "{'password': '[redacted]', 'user': 'ada'}"
    assert_redacted(response.content.decode())


@pytest.mark.parametrize("path", ["/api/tasks", "/api/task/info/t-secret", "/api/workers"])
def test_flowers_task_reads_are_redacted(client, user, stored_task, path):
    WorkerRecord.objects.create(
        hostname="celery@w1",
        first_seen_at=timezone.now(),
        updated_at=timezone.now(),
        last_heartbeat_at=timezone.now(),
        online_at=timezone.now(),
    )
    basic = base64.b64encode(b"ada:pw-ada-123").decode()
    response = client.get(path, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.content
    assert_redacted(response.content.decode())


def test_a_workers_reserved_tasks_are_redacted(client, user):
    now = timezone.now()
    reserved = {"task_id": "r-1", "name": "app.login", "args": ARGS, "kwargs": KWARGS}
    WorkerRecord.objects.create(
        hostname="celery@w1",
        first_seen_at=now,
        updated_at=now,
        reserved=[reserved],
        reserved_count=1,
        inspected_at=now,
    )
    client.force_login(user)
    response = client.get("/workers/celery@w1/")
    assert response.status_code == 200
    assert_redacted(response.content.decode())
