"""Bulk actions: the set is what the task list shows for the same filter, capped, counted
first; retry goes task by task through the retry service and records each refusal."""

import datetime as dt

import pytest
from django.utils import timezone

from tasks_admin import services
from tasks_admin.models import AuditEntry, BulkRun, TaskRecord
from tasks_admin.roles import Actor, Role
from tasks_admin.selectors import tasks as task_selectors
from tasks_admin.selectors.tasks import TaskFilters

pytestmark = pytest.mark.django_db


class _User:
    username = "ann"


ADMIN = Actor(user=_User(), role=Role.ADMIN, source="api", address="10.0.0.9")


def task(task_id: str, state: str, *, minutes: int = 1, **fields) -> TaskRecord:
    at = timezone.now() - dt.timedelta(minutes=minutes)
    return TaskRecord.objects.create(
        task_id=task_id, state=state, first_seen_at=at, last_event_at=at, updated_at=at, **fields
    )


def listed_ids(filters: TaskFilters) -> list[str]:
    ids, cursor = [], None
    while True:
        page = task_selectors.task_page(filters, after=cursor)
        ids += [row.task_id for row in page.rows]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.parametrize(
    "filters",
    [
        TaskFilters(),
        TaskFilters(queue="mail"),
        TaskFilters(states=("FAILURE", "PENDING")),
        TaskFilters(search="needle", match="text"),
        TaskFilters(search="abcd"),
        TaskFilters(sort="runtime"),
    ],
)
def test_the_bulk_set_is_every_task_the_list_shows(filters, monkeypatch):
    monkeypatch.setattr(task_selectors, "PAGE_SIZE", 3)
    for i in range(4):
        task(f"abcd-{i}", "PENDING", minutes=i, queue="mail", args="('needle',)", runtime=1.0)
    for i in range(3):
        task(f"other-{i}", "FAILURE", minutes=10 + i, queue="web", runtime=2.0)
    task("old", "SUCCESS", minutes=60 * 48, queue="mail")

    assert task_selectors.matching_task_ids(filters, limit=100) == listed_ids(filters)


def test_the_bulk_set_keeps_only_the_states_the_action_applies_to():
    task("p", "PENDING")
    task("s", "STARTED")
    task("f", "FAILURE")

    revocable = task_selectors.matching_task_ids(
        TaskFilters(), only_states=("PENDING", "STARTED"), limit=10
    )
    failed_only = task_selectors.matching_task_ids(
        TaskFilters(states=("FAILURE",)), only_states=("PENDING",), limit=10
    )

    assert sorted(revocable) == ["p", "s"]
    assert failed_only == []


def test_a_dry_run_counts_up_to_the_cap_and_acts_on_nothing(settings):
    settings.CONSOLE_BULK_MAX = 3
    for i in range(5):
        task(f"t-{i}", "PENDING")

    result = services.tasks_bulk(actor=ADMIN, action="revoke", filters=TaskFilters(), dry_run=True)

    assert result.data == {"count": 4, "over_cap": True, "cap": 3}
    assert result.detail.startswith("more than 3 tasks")
    assert not BulkRun.objects.exists()
    with pytest.raises(services.ActionInvalid, match="cap must be a whole number"):
        services.tasks_bulk(actor=ADMIN, action="revoke", filters=TaskFilters(), cap=0)


def test_nothing_matching_is_refused_with_the_reason():
    task("done", "SUCCESS")

    with pytest.raises(services.ActionInvalid, match="No task in PENDING/RECEIVED/RETRY"):
        services.tasks_bulk(actor=ADMIN, action="revoke", filters=TaskFilters())


def test_bulk_retry_calls_the_retry_service_per_task_and_records_refusals(monkeypatch):
    # The retry service lives in services/replay.py (another change); this stands in for it
    # with the same contract, to check the bulk loop around it.
    calls = []

    def task_retry(*, actor: Actor, task_id: str) -> services.ActionResult:
        calls.append((actor.username, task_id))
        if task_id == "f-1":
            raise services.ActionConflict("no captured message for f-1")
        return services.ActionResult(f"retried {task_id}")

    monkeypatch.setattr(services, "task_retry", task_retry, raising=False)
    for i in range(3):
        task(f"f-{i}", "FAILURE", minutes=i)
    task("ok", "SUCCESS")

    result = services.tasks_bulk(actor=ADMIN, action="retry", filters=TaskFilters())

    assert sorted(calls) == [("ann", "f-0"), ("ann", "f-1"), ("ann", "f-2")]
    run = BulkRun.objects.get(pk=result.data["run_id"])
    assert (run.status, run.total, run.done, run.succeeded, run.failed) == (
        "partial",
        3,
        3,
        2,
        1,
    )
    assert run.errors == [{"task_id": "f-1", "error": "no captured message for f-1"}]
    assert result.detail == "Retried 2 of 3 tasks; 1 refused or failed."
    entry = AuditEntry.objects.get(action="tasks.bulk")
    assert (entry.outcome, entry.source, entry.params["action"]) == ("succeeded", "api", "retry")


def test_bulk_needs_the_admin_role():
    operator = Actor(user=_User(), role=Role.OPERATOR, source="api")
    with pytest.raises(services.ActionRefused, match=r"tasks\.bulk needs the admin role"):
        services.tasks_bulk(actor=operator, action="revoke", filters=TaskFilters(), dry_run=True)
    assert AuditEntry.objects.get().outcome == "refused"
