"""Action controls on the pages: shown only to roles that may act, refused (and audited)
for roles that may not, CSRF-protected, answered in place for htmx and by redirect + message
without JavaScript. Refusals and input errors never reach a broker."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from tasks_admin.models import AuditEntry, TaskRecord, WorkerRecord
from tasks_admin.roles import GROUP_NAMES, Role
from tests.pages.markup import text_of

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def signed_in(django_user_model, username: str, role: Role | None, **client_options) -> Client:
    user = django_user_model.objects.create_user(username, password="not-used-1")
    if role is not None:
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        user.groups.add(group)
    client = Client(**client_options)
    client.force_login(user)
    return client


@pytest.fixture
def operator(django_user_model) -> Client:
    return signed_in(django_user_model, "olga", Role.OPERATOR)


@pytest.fixture
def admin(django_user_model) -> Client:
    return signed_in(django_user_model, "ann", Role.ADMIN)


def task(task_id: str, state: str, **fields) -> TaskRecord:
    at = timezone.now() - dt.timedelta(minutes=1)
    return TaskRecord.objects.create(
        task_id=task_id, state=state, first_seen_at=at, last_event_at=at, updated_at=at, **fields
    )


def worker(hostname: str = "celery@w1") -> WorkerRecord:
    now = timezone.now()
    return WorkerRecord.objects.create(
        hostname=hostname,
        is_online=True,
        first_seen_at=now,
        online_at=now,
        last_heartbeat_at=now,
        updated_at=now,
    )


# Every action form the pages post, with fields that would pass validation.
ACTION_POSTS = [
    ("task.revoke", "/actions/tasks/revoke/t-1", {}),
    ("task.terminate", "/actions/tasks/terminate/t-1", {"signal": "SIGTERM"}),
    ("tasks.bulk", "/actions/tasks/bulk/", {"action": "revoke", "step": "count"}),
    ("queue.purge", "/actions/queues/purge/", {"queue": "default", "confirm": "default"}),
    (
        "worker.control",
        "/actions/workers/control/",
        {"hostname": "celery@w1", "command": "pool_grow", "n": "1"},
    ),
]


def test_a_viewer_is_refused_every_action_in_place_and_each_refusal_is_audited(client):
    task("t-1", "PENDING")

    for action, url, data in ACTION_POSTS:
        response = client.post(url, data, headers=HTMX, REMOTE_ADDR="10.1.2.3")
        assert response.status_code == 403, action
        assert "needs the" in response.content.decode() and "you are viewer" in (
            response.content.decode()
        )

    entries = AuditEntry.objects.order_by("id")
    assert [e.action for e in entries] == [action for action, _, _ in ACTION_POSTS]
    assert {(e.outcome, e.username, e.role, e.source, e.address) for e in entries} == {
        ("refused", "viewer", "viewer", "page", "10.1.2.3")
    }
    assert TaskRecord.objects.get().state == "PENDING"


def test_without_javascript_a_refusal_redirects_back_with_a_message(client):
    task("t-1", "PENDING")

    response = client.post("/actions/tasks/revoke/t-1", {"next": "/tasks/t-1/"}, follow=True)

    assert response.redirect_chain == [("/tasks/t-1/", 302)]
    assert "task.revoke needs the operator role; you are viewer." in response.content.decode()
    assert AuditEntry.objects.get().outcome == "refused"


def test_a_redirect_never_leaves_the_site(client):
    response = client.post("/actions/queues/purge/", {"next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == "/queues/"


def test_an_operator_may_revoke_but_is_refused_admin_actions(operator):
    for action, url, data in ACTION_POSTS[2:]:
        response = operator.post(url, data, headers=HTMX)
        assert response.status_code == 403, action
        assert "needs the admin role; you are operator" in response.content.decode()
    assert set(AuditEntry.objects.values_list("outcome", flat=True)) == {"refused"}


def test_a_post_without_a_csrf_token_is_rejected_and_never_reaches_the_service(
    django_user_model,
):
    strict = signed_in(django_user_model, "ann", Role.ADMIN, enforce_csrf_checks=True)
    task("t-1", "PENDING")

    for _, url, data in ACTION_POSTS:
        response = strict.post(url, data, headers=HTMX)
        assert response.status_code == 403, url
        assert b"CSRF" in response.content

    assert not AuditEntry.objects.exists()


def test_a_post_with_the_pages_csrf_token_is_accepted(django_user_model):
    strict = signed_in(django_user_model, "ann", Role.ADMIN, enforce_csrf_checks=True)
    page = strict.get("/queues/")
    token = page.cookies["csrftoken"].value

    response = strict.post(
        "/actions/queues/purge/",
        {"queue": "default", "confirm": "wrong", "csrfmiddlewaretoken": token},
        headers=HTMX,
    )

    assert response.status_code == 400
    assert "Type the queue name &#x27;default&#x27; exactly" in response.content.decode()


def test_actions_only_take_posts(admin):
    assert admin.get("/actions/queues/purge/").status_code == 405
    assert admin.get("/actions/tasks/revoke/t-1").status_code == 405


def test_a_viewer_sees_no_action_controls(client):
    task("t-1", "PENDING")
    task("t-2", "STARTED")
    worker()

    pages = [
        client.get(url).content.decode()
        for url in ("/tasks/t-1/", "/tasks/t-2/", "/tasks/", "/queues/", "/workers/celery@w1/")
    ]

    for body in pages:
        assert "/actions/" not in body
    assert 'href="/audit/"' in pages[0]


def test_an_operator_sees_revoke_on_a_queued_task_and_terminate_on_a_running_one(operator):
    task("t-1", "PENDING")
    task("t-2", "STARTED")
    task("t-3", "SUCCESS")

    queued = operator.get("/tasks/t-1/").content.decode()
    running = operator.get("/tasks/t-2/").content.decode()
    done = operator.get("/tasks/t-3/").content.decode()

    assert 'action="/actions/tasks/revoke/t-1"' in queued and "terminate" not in queued.lower()
    assert 'action="/actions/tasks/terminate/t-2"' in running
    assert '<option value="SIGKILL">' in running
    assert "/actions/" not in done
    # Admin-only controls stay hidden from operators.
    assert "/actions/" not in operator.get("/queues/").content.decode()
    assert "/actions/tasks/bulk/" not in operator.get("/tasks/").content.decode()


def test_an_admin_sees_purge_bulk_and_every_worker_command(admin):
    worker()
    task("t-1", "PENDING")

    assert 'action="/actions/queues/purge/"' in admin.get("/queues/").content.decode()
    assert 'action="/actions/tasks/bulk/"' in admin.get("/tasks/?state=PENDING").content.decode()
    body = admin.get("/workers/celery@w1/").content.decode()
    for command in ("pool_grow", "pool_shrink", "add_consumer", "cancel_consumer", "pool_restart"):
        assert f'value="{command}"' in body
    for command in ("autoscale", "rate_limit", "time_limit", "shutdown"):
        assert f'value="{command}"' in body


def test_the_bulk_form_carries_the_current_filter(admin):
    task("t-1", "PENDING", queue="mail")

    body = admin.get("/tasks/?state=PENDING&queue=mail", headers=HTMX).content.decode()

    assert '<input type="hidden" name="state" value="PENDING">' in body
    assert '<input type="hidden" name="queue" value="mail">' in body


def test_a_bulk_dry_run_shows_the_count_and_a_confirm_button(admin):
    for i in range(3):
        task(f"q-{i}", "PENDING", queue="mail")
    task("q-done", "SUCCESS", queue="mail")
    task("other", "PENDING", queue="web")

    response = admin.post(
        "/actions/tasks/bulk/", {"action": "revoke", "queue": "mail", "step": "count"}, headers=HTMX
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert "3 tasks in PENDING/RECEIVED/RETRY match" in body
    assert "Revoke 3 tasks" in body
    assert '<input type="hidden" name="step" value="run">' in body
    assert '<input type="hidden" name="queue" value="mail">' in body
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.outcome, entry.params["dry_run"]) == (
        "tasks.bulk",
        "succeeded",
        True,
    )


def test_a_bulk_dry_run_over_the_cap_offers_no_confirm(admin, settings):
    settings.CONSOLE_BULK_MAX = 2
    for i in range(3):
        task(f"q-{i}", "PENDING")

    body = admin.post(
        "/actions/tasks/bulk/", {"action": "revoke", "step": "count"}, headers=HTMX
    ).content.decode()

    assert "more than 2 tasks in PENDING/RECEIVED/RETRY match" in body
    assert 'value="run"' not in body


def test_a_bulk_dry_run_without_javascript_is_a_confirmation_page(admin):
    task("q-1", "FAILURE")

    response = admin.post("/actions/tasks/bulk/", {"action": "revoke", "state": "FAILURE"})

    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body
    assert "No task" not in body and "0 tasks" in body
    assert 'value="run"' not in body


def test_bad_bulk_input_is_a_400_with_the_reason(admin):
    bad_filter = admin.post(
        "/actions/tasks/bulk/", {"action": "revoke", "state": "NOPE"}, headers=HTMX
    )
    bad_action = admin.post("/actions/tasks/bulk/", {"action": "explode"}, headers=HTMX)

    assert bad_filter.status_code == 400 and "Unknown state" in bad_filter.content.decode()
    assert bad_action.status_code == 400
    assert "Unknown bulk action &#x27;explode&#x27;" in bad_action.content.decode()


def test_purge_needs_the_queue_name_typed_again(admin):
    response = admin.post(
        "/actions/queues/purge/", {"queue": "billing", "confirm": "billin"}, headers=HTMX
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "Type the queue name &#x27;billing&#x27; exactly to confirm" in body
    assert "Nothing was purged" in body
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.targets, entry.outcome) == ("queue.purge", ["billing"], "failed")


def test_worker_control_arguments_are_validated_before_anything_is_sent(admin):
    cases = [
        ({"command": "pool_grow", "n": "-1"}, "n must be a whole number of at least 1"),
        ({"command": "pool_grow", "n": "two"}, "n must be a whole number of at least 1"),
        ({"command": "autoscale", "max": "2", "min": "5"}, "autoscale min (5) is above max (2)"),
        ({"command": "rate_limit", "task_name": "x", "rate_limit": "fast"}, "is not a rate"),
        ({"command": "time_limit", "task_name": "x", "soft": "9", "hard": "3"}, "is above"),
        ({"command": "add_consumer", "queue": ""}, "add_consumer needs queue"),
        ({"command": "format_disk"}, "Unknown worker command &#x27;format_disk&#x27;"),
    ]
    for data, reason in cases:
        response = admin.post(
            "/actions/workers/control/", {"hostname": "celery@w1", **data}, headers=HTMX
        )
        assert response.status_code == 400, data
        assert reason in response.content.decode(), data
    assert AuditEntry.objects.filter(outcome="failed").count() == len(cases)


def test_task_actions_on_unknown_or_finished_tasks_say_why(admin):
    task("done", "SUCCESS")

    unknown = admin.post("/actions/tasks/revoke/nope", headers=HTMX)
    finished = admin.post("/actions/tasks/terminate/done", headers=HTMX)
    bad_signal = admin.post("/actions/tasks/terminate/done", {"signal": "SIGSTOP"}, headers=HTMX)

    assert unknown.status_code == 404
    assert "No task with id &#x27;nope&#x27;" in unknown.content.decode()
    assert finished.status_code == 409 and "already SUCCESS" in finished.content.decode()
    assert bad_signal.status_code == 400 and "Unknown signal" in bad_signal.content.decode()


def test_action_results_are_escaped(admin):
    response = admin.post(
        "/actions/queues/purge/", {"queue": "<b>x</b>", "confirm": "<i>"}, headers=HTMX
    )
    body = response.content.decode()
    assert "<b>" not in body and "&lt;b&gt;" in body


def test_a_bulk_run_page_shows_progress(admin):
    from tasks_admin.models import BulkRun

    run = BulkRun.objects.create(username="ann", action="revoke", total=200, done=100)

    page = admin.get(f"/actions/bulk/{run.pk}/").content.decode()
    fragment = admin.get(f"/actions/bulk/{run.pk}/", headers=HTMX).content.decode()

    assert '<progress max="200" value="100">50%</progress>' in page
    assert 'http-equiv="refresh"' in page
    assert f'hx-get="/actions/bulk/{run.pk}/" hx-trigger="every 1s"' in fragment
    assert "100 of 200" in text_of(fragment, f"bulk-run-{run.pk}")


def test_a_bulk_run_that_stopped_moving_says_so(admin):
    from tasks_admin.models import BulkRun

    run = BulkRun.objects.create(
        action="revoke", total=10, done=3, updated_at=timezone.now() - dt.timedelta(minutes=2)
    )

    body = admin.get(f"/actions/bulk/{run.pk}/", headers=HTMX).content.decode()

    assert "No progress for over a minute" in body
