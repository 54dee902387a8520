"""/api/v1 actions and dead letters through HTTP: roles, tokens, bad input, answers.

Actions that publish go to the Redis the integration tests use (TEST_REDIS_URL), into
per-test queues that are deleted afterwards; tests/integration/test_api_actions.py runs
them against real workers on Redis and RabbitMQ.
"""

import datetime as dt
import time
import uuid
from typing import Any

import pytest
from django.utils import timezone
from kombu import Connection

from tasks_admin.models import ApiToken, AuditEntry, BulkRun, DeadLetter, TaskRecord
from tasks_admin.roles import Role
from tasks_admin.services.replay import MAX_IDS
from tests import factories
from tests.api.helpers import forget_broker_connections, task
from tests.integration.conftest import BROKERS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _actions_publish_to_the_test_broker(settings, monkeypatch):
    settings.CELERY_BROKER_URL = BROKERS["redis"]
    monkeypatch.setenv("CELERY_BROKER_URL", BROKERS["redis"])
    forget_broker_connections()
    yield
    forget_broker_connections()


@pytest.fixture
def queue_name():
    """A queue of this test's own on the test Redis, deleted after it."""
    name = f"api-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(BROKERS["redis"]) as conn:
        conn.default_channel.client.delete(name)


def audited():
    """Audit entries of actions (making a test's tokens is audited too)."""
    return AuditEntry.objects.exclude(action="token.create")


def depth(queue: str) -> int:
    with Connection(BROKERS["redis"]) as conn:
        return int(conn.default_channel.client.llen(queue))


@pytest.fixture
def as_role(client, make_user, make_token):
    """post(role, path, body) with a token of that role (the user holds the same role)."""

    def post(role: Role, path: str, body: Any = None, **extra: Any):
        user = make_user(f"u-{role.label}-{uuid.uuid4().hex[:4]}", role)
        raw = make_token(user, role)
        return client.post(
            path,
            {} if body is None else body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}"},
            **extra,
        )

    return post


@pytest.fixture
def get(client, make_user, make_token):
    raw = make_token(make_user("viewer-reader"))

    def get(path: str, **params: Any):
        return client.get(path, params, headers={"Authorization": f"Bearer {raw}"})

    return get


# Every action with a body that passes validation, and the action it is audited as.
ACTIONS = [
    ("/api/v1/tasks/t-1/retry/", {"queue": "elsewhere"}, "task.retry", Role.OPERATOR),
    ("/api/v1/tasks/t-1/revoke/", {}, "task.revoke", Role.OPERATOR),
    ("/api/v1/tasks/t-1/revoke/", {"terminate": True}, "task.terminate", Role.OPERATOR),
    ("/api/v1/tasks/bulk/", {"action": "revoke", "dry_run": True}, "tasks.bulk", Role.ADMIN),
    (
        "/api/v1/workers/celery@w1/control/",
        {"command": "pool_grow", "n": 1},
        "worker.control",
        Role.ADMIN,
    ),
    ("/api/v1/queues/celery/purge/", {"confirm": "celery"}, "queue.purge", Role.ADMIN),
    ("/api/v1/dead-letters/1/replay/", {}, "deadletter.replay", Role.OPERATOR),
    ("/api/v1/dead-letters/replay/", {"ids": [1, 2]}, "deadletter.replay", Role.OPERATOR),
    ("/api/v1/dead-letters/1/discard/", {}, "deadletter.discard", Role.ADMIN),
    ("/api/v1/dead-letters/discard/", {"ids": [1]}, "deadletter.discard", Role.ADMIN),
]


@pytest.mark.parametrize(("path", "body", "action", "needed"), ACTIONS)
def test_a_viewer_token_is_refused_on_every_action_with_403_json_audited_from_the_api(
    as_role, path, body, action, needed
):
    response = as_role(Role.VIEWER, path, body)

    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "detail": f"{action} needs the {needed.label} role; you are viewer.",
    }
    entry = audited().get()
    assert (entry.action, entry.role, entry.source, entry.outcome, entry.address) == (
        action,
        "viewer",
        "api",
        "refused",
        "127.0.0.1",
    )


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [(path, body, action) for path, body, action, needed in ACTIONS if needed is Role.ADMIN],
)
def test_an_operator_token_is_refused_on_admin_actions(as_role, path, body, action):
    response = as_role(Role.OPERATOR, path, body)

    assert response.status_code == 403
    assert response.json()["detail"] == f"{action} needs the admin role; you are operator."
    entry = audited().get()
    assert (entry.action, entry.role, entry.source, entry.outcome) == (
        action,
        "operator",
        "api",
        "refused",
    )


def test_a_token_above_its_users_current_role_acts_only_with_the_users_role(
    client, make_user, make_token
):
    user = make_user("demoted", Role.ADMIN)
    raw = make_token(user, Role.ADMIN)
    user.groups.clear()  # the user is a viewer now; the admin token must not outrank them

    response = client.post(
        "/api/v1/queues/celery/purge/",
        {"confirm": "celery"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 403
    assert audited().get().role == "viewer"


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_an_expired_or_revoked_admin_token_is_refused_before_anything_runs(
    client, make_user, make_token, how
):
    raw = make_token(make_user("root", Role.ADMIN), expires_days=1)
    token = ApiToken.objects.get()
    if how == "expired":
        token.expires_at = timezone.now() - dt.timedelta(seconds=1)
    else:
        token.revoked_at = timezone.now()
    token.save()

    response = client.post(
        "/api/v1/queues/celery/purge/",
        {"confirm": "celery"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )

    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": f"This token {'has expired' if how == 'expired' else 'was revoked'}.",
    }
    assert not AuditEntry.objects.filter(action="queue.purge").exists()


def test_an_action_without_credentials_is_a_401_and_runs_nothing(client):
    response = client.post("/api/v1/tasks/t-1/retry/", {}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert not audited().exists()


def test_retrying_a_running_task_is_a_409_that_says_why(as_role):
    task("t-run", name="demo.add", state="STARTED", args="(1, 2)", kwargs="{}")

    response = as_role(Role.OPERATOR, "/api/v1/tasks/t-run/retry/")

    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "Task t-run is STARTED: only tasks that ended FAILURE, REVOKED, LOST or "
        "REJECTED can be retried.",
    }
    entry = audited().get()
    assert (entry.action, entry.outcome, entry.source) == ("task.retry", "failed", "api")


def test_retrying_a_failed_task_answers_the_new_task_id_and_publishes_it(as_role, queue_name):
    task("t-fail", name="demo.add", state="FAILURE", args="(1, 2)", kwargs="{}")

    response = as_role(Role.OPERATOR, "/api/v1/tasks/t-fail/retry/", {"queue": queue_name})

    assert response.status_code == 200, response.content
    body = response.json()
    new_id = body["result"]["task_id"]
    assert body["result"] == {
        "task_id": new_id,
        "replay_of": "t-fail",
        "source": "rebuilt",
        "dead_letter": None,
        "queue": queue_name,
    }
    assert body["detail"].startswith(f"Retried demo.add t-fail as {new_id}")
    assert TaskRecord.objects.get(pk=new_id).replay_of == "t-fail"
    assert depth(queue_name) == 1


def test_unknown_tasks_and_dead_letters_are_404s(as_role):
    for path in (
        "/api/v1/tasks/no-such-task/retry/",
        "/api/v1/tasks/no-such-task/revoke/",
        "/api/v1/dead-letters/999999/replay/",
        "/api/v1/dead-letters/999999/discard/",
        "/api/v1/dead-letters/99999999999999999999/discard/",
        "/api/v1/dead-letters/abc/discard/",
    ):
        response = as_role(Role.ADMIN, path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found", path


def test_revoking_a_finished_task_is_a_409(as_role):
    task("t-done", state="SUCCESS")
    for body in ({}, {"terminate": True, "signal": "SIGKILL"}):
        response = as_role(Role.OPERATOR, "/api/v1/tasks/t-done/revoke/", body)
        assert response.status_code == 409
        assert "already SUCCESS" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        (
            "/api/v1/tasks/t-1/retry/",
            {"queu": "x"},
            "queu: Unknown field; allowed: keep_chord, queue",
        ),
        ("/api/v1/tasks/t-1/retry/", ["queue"], "The body must be a JSON object."),
        (
            "/api/v1/tasks/t-1/retry/",
            {"keep_chord": "maybe"},
            "keep_chord: Must be a valid boolean.",
        ),
        (
            "/api/v1/tasks/t-1/revoke/",
            {"signal": "SIGKILL"},
            "signal: A signal is sent only with terminate: true.",
        ),
        (
            "/api/v1/tasks/t-1/revoke/",
            {"terminate": True, "signal": "SIGBOGUS"},
            "Unknown signal 'SIGBOGUS'",
        ),
        ("/api/v1/tasks/bulk/", {"action": "purge"}, 'action: "purge" is not a valid choice.'),
        (
            "/api/v1/tasks/bulk/",
            {"action": "retry", "state": ["WAITING"]},
            'state.0: "WAITING" is not a valid choice.',
        ),
        (
            "/api/v1/tasks/bulk/",
            {"action": "retry", "from": "yesterday"},
            "From: “yesterday” is not a time",
        ),
        (
            "/api/v1/tasks/bulk/",
            {"action": "retry", "from": "1h", "to": "2h"},
            "To: “To” is before “from”.",
        ),
        (
            "/api/v1/tasks/bulk/",
            {"action": "retry", "cap": 0},
            "cap: Ensure this value is greater than or equal to 1.",
        ),
        ("/api/v1/tasks/bulk/", {"action": "revoke", "cursor": "x"}, "cursor: Unknown field"),
        (
            "/api/v1/workers/w1/control/",
            {"command": "explode"},
            'command: "explode" is not a valid choice.',
        ),
        (
            "/api/v1/workers/w1/control/",
            {"command": "shutdown", "n": 2},
            "shutdown takes no arguments; unexpected: n.",
        ),
        (
            "/api/v1/workers/w1/control/",
            {"command": "pool_grow"},
            "pool_grow needs n (processes to add).",
        ),
        (
            "/api/v1/workers/w1/control/",
            {"command": "autoscale", "max": 1, "min": 3},
            "autoscale min (3) is above max (1).",
        ),
        (
            "/api/v1/workers/w1/control/",
            {"command": "rate_limit", "task_name": "demo.add", "rate_limit": "fast"},
            "is not a rate",
        ),
        ("/api/v1/queues/celery/purge/", {}, "confirm: This field is required."),
        (
            "/api/v1/queues/celery/purge/",
            {"confirm": "celer"},
            "Type the queue name 'celery' exactly",
        ),
        (
            "/api/v1/dead-letters/replay/",
            {"ids": []},
            "ids: Ensure this field has at least 1 elements.",
        ),
        ("/api/v1/dead-letters/discard/", {"ids": ["one"]}, "ids.0: A valid integer is required."),
        (
            "/api/v1/dead-letters/discard/",
            {"ids": list(range(1, MAX_IDS + 2))},
            "ids: Ensure this field has no more than 500 elements.",
        ),
        (
            "/api/v1/dead-letters/1/discard/",
            {"why": "old"},
            "why: Unknown field; allowed: no fields",
        ),
    ],
)
def test_bad_input_is_a_400_that_says_what_is_wrong_and_runs_nothing(as_role, path, body, says):
    response = as_role(Role.ADMIN, path, body)

    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
    assert says in response.json()["detail"]
    # Either nothing was attempted, or the service refused it before acting.
    assert not audited().exclude(outcome="failed").exists()


def test_a_body_that_is_not_json_is_a_400(as_role):
    response = as_role(Role.ADMIN, "/api/v1/queues/celery/purge/", "{confirm")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_bulk_dry_run_counts_what_the_same_filter_lists(as_role, get):
    for n in range(3):
        task(f"f-{n}", name="demo.fail", state="FAILURE", queue="q1")
    task("f-other", name="demo.add", state="FAILURE", queue="q1")
    task("f-ok", name="demo.fail", state="SUCCESS", queue="q1")

    response = as_role(
        Role.ADMIN, "/api/v1/tasks/bulk/", {"action": "retry", "dry_run": True, "name": "demo.fail"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"count": 3, "over_cap": False, "cap": 1000}
    listed = get("/api/v1/tasks/", name="demo.fail", state="FAILURE").json()
    assert len(listed["results"]) == 3
    over = as_role(
        Role.ADMIN, "/api/v1/tasks/bulk/", {"action": "retry", "dry_run": True, "cap": 2}
    ).json()["result"]
    assert over == {"count": 3, "over_cap": True, "cap": 2}
    refused = as_role(Role.ADMIN, "/api/v1/tasks/bulk/", {"action": "retry", "cap": 2})
    assert refused.status_code == 400
    assert "More than 2 tasks match" in refused.json()["detail"]
    nothing = as_role(Role.ADMIN, "/api/v1/tasks/bulk/", {"action": "revoke", "name": "demo.add"})
    assert nothing.status_code == 400
    assert "nothing to revoke" in nothing.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_bulk_retry_starts_with_202_and_its_progress_is_readable(as_role, get):
    queue = f"api-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        task(f"b-{n}", name="demo.add", state="FAILURE", queue=queue, args=f"({n}, 1)", kwargs="{}")
    try:
        response = as_role(
            Role.ADMIN,
            "/api/v1/tasks/bulk/",
            {"action": "retry", "queue": queue, "state": ["FAILURE"]},
        )

        assert response.status_code == 202, response.content
        body = response.json()
        run_id = body["result"]["run_id"]
        assert body["detail"] == f"Bulk retry of 3 tasks started (run {run_id})."
        assert sorted(body["result"]["ids"]) == ["b-0", "b-1", "b-2"]
        assert BulkRun.objects.get(pk=run_id).query == f"state=FAILURE&queue={queue}"
        deadline = timezone.now() + dt.timedelta(seconds=20)
        while BulkRun.objects.get(pk=run_id).status == "running" and timezone.now() < deadline:
            time.sleep(0.1)
        progress = get(f"/api/v1/tasks/bulk/{run_id}/")
        assert progress.status_code == 200
        shown = progress.json()
        assert {
            k: shown[k]
            for k in ("action", "status", "total", "done", "succeeded", "failed", "percent")
        } == {
            "action": "retry",
            "status": "succeeded",
            "total": 3,
            "done": 3,
            "succeeded": 3,
            "failed": 0,
            "percent": 100,
        }
        assert shown["detail"] == "Retried 3 tasks."
        assert depth(queue) == 3
        assert get("/api/v1/tasks/bulk/999999/").status_code == 404
    finally:
        with Connection(BROKERS["redis"]) as conn:
            conn.default_channel.client.delete(queue)


def test_purge_answers_how_many_messages_the_broker_deleted(as_role, queue_name):
    with Connection(BROKERS["redis"]) as conn:
        queue = conn.SimpleQueue(queue_name)
        for n in range(4):
            queue.put({"n": n})
        queue.close()
    assert depth(queue_name) == 4

    response = as_role(Role.ADMIN, f"/api/v1/queues/{queue_name}/purge/", {"confirm": queue_name})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "detail": f"Purged 4 messages from queue {queue_name}.",
        "result": {"queue": queue_name, "purged": 4},
    }
    assert depth(queue_name) == 0
    entry = audited().get()
    assert (entry.action, entry.source, entry.outcome, entry.result) == (
        "queue.purge",
        "api",
        "succeeded",
        {"queue": queue_name, "purged": 4},
    )


def test_a_revoke_no_worker_acknowledged_is_a_503_and_audited_as_failed(as_role):
    task("t-queued", name="demo.add", state="PENDING")

    response = as_role(Role.OPERATOR, "/api/v1/tasks/t-queued/revoke/")

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert response.json()["detail"].startswith("No worker answered the revoke")
    entry = audited().get()
    assert (entry.action, entry.outcome, entry.source) == ("task.revoke", "failed", "api")


def test_control_of_a_worker_that_does_not_answer_is_a_503(as_role):
    response = as_role(
        Role.ADMIN, "/api/v1/workers/celery@nobody-here/control/", {"command": "pool_grow", "n": 1}
    )
    assert response.status_code == 503
    assert response.json() == {
        "error": "unavailable",
        "detail": "celery@nobody-here did not answer within 3 s: it may be offline, busy or "
        "gone. Nothing is known to have changed.",
    }


# --- Dead letters ---


def test_dead_letters_list_filters_like_the_page_and_pages_with_a_cursor(get):
    old = factories.dead_letter(received_at=timezone.now() - dt.timedelta(days=3))
    letters = [factories.dead_letter(name="demo.charge_card") for _ in range(51)]
    other = factories.dead_letter(
        name="demo.sync", queue="sync", exception="TimeoutError()", exception_type="TimeoutError"
    )
    DeadLetter.objects.filter(pk=letters[0].pk).update(state="discarded", discarded_by="x")

    first = get("/api/v1/dead-letters/", name="demo.charge_card")
    assert first.status_code == 200
    page = first.json()
    assert [r["id"] for r in page["results"]] == [x.pk for x in reversed([old, *letters])][:50]
    assert page["counts"] == {"new": 51, "replayed": 0, "discarded": 1}
    row = page["results"][0]
    assert set(row) == {
        "id", "task_id", "name", "state", "reason", "source", "queue", "exception",
        "exception_type", "received_at", "died_at", "replayed_as", "replayed_by",
        "discarded_by", "body_complete",
    }  # fmt: skip
    assert "kwargs" not in row and "args" not in row
    rest = get("/api/v1/dead-letters/", name="demo.charge_card", cursor=page["next_cursor"])
    assert [r["id"] for r in rest.json()["results"]] == [letters[0].pk, old.pk]
    assert rest.json()["next"] is None
    assert page["next"].endswith(f"cursor={page['next_cursor']}")

    def ids(**params: str) -> list[int]:
        response = get("/api/v1/dead-letters/", **params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["results"]]

    assert ids(exception="timeouterror") == [other.pk]
    assert ids(queue="sync") == [other.pk]
    assert ids(state="discarded") == [letters[0].pk]
    assert old.pk not in ids(age="24h") and len(ids(age="24h")) == 50
    for params, says in (
        ({"age": "soon"}, "Age: “soon” is not an age"),
        ({"state": "lost"}, 'state: "lost" is not a valid choice.'),
        ({"cursor": "abc"}, "cursor: Not a cursor of this list."),
        ({"page": "2"}, "page: Unknown parameter"),
    ):
        response = get("/api/v1/dead-letters/", **params)
        assert response.status_code == 400
        assert says in response.json()["detail"]


def test_one_dead_letter_shows_its_original_message_with_secret_arguments_redacted(get, settings):
    settings.CONSOLE_REDACT_ARGS = ["payment_method"]
    letter = factories.dead_letter()

    response = get(f"/api/v1/dead-letters/{letter.pk}/")

    assert response.status_code == 200
    shown = response.json()
    assert shown["args"] == [42, 1999]
    assert shown["kwargs"] == {"payment_method": "[redacted]"}
    assert shown["headers"]["kwargsrepr"] == "{'payment_method': '[redacted]'}"
    assert "pm_card_chargeDeclined" not in response.content.decode()
    assert (shown["id"], shown["task_id"], shown["state"], shown["queue"]) == (
        letter.pk,
        letter.task_id,
        "new",
        "default",
    )
    assert shown["traceback"].startswith("Traceback")
    assert shown["properties"] == {"correlation_id": letter.task_id, "priority": 0}
    # Stored rows keep the real value, so a replay stays faithful.
    letter.refresh_from_db()
    assert letter.kwargs == {"payment_method": "pm_card_chargeDeclined"}
    assert get("/api/v1/dead-letters/999999/").status_code == 404


def test_discarding_dead_letters_one_or_many_says_which_were_discarded_skipped_or_missing(
    as_role,
):
    one, two, three = (factories.dead_letter() for _ in range(3))

    single = as_role(Role.ADMIN, f"/api/v1/dead-letters/{one.pk}/discard/")
    assert single.status_code == 200
    assert single.json()["result"] == {"discarded": [one.pk], "skipped": {}, "missing": []}
    again = as_role(Role.ADMIN, f"/api/v1/dead-letters/{one.pk}/discard/")
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"

    many = as_role(
        Role.ADMIN, "/api/v1/dead-letters/discard/", {"ids": [one.pk, two.pk, three.pk, 999999]}
    )
    assert many.status_code == 200
    result = many.json()["result"]
    assert result["discarded"] == [two.pk, three.pk]
    assert set(result["skipped"]) == {str(one.pk)} and result["missing"] == [999999]
    assert set(DeadLetter.objects.values_list("state", flat=True)) == {"discarded"}
    assert DeadLetter.objects.get(pk=two.pk).discarded_by.startswith("u-admin")


def test_replaying_dead_letters_answers_the_new_task_ids(as_role, queue_name):
    one, two = factories.dead_letter(), factories.dead_letter()
    broken = factories.dead_letter(body_complete=False, body_repr="b'\\x80'")

    single = as_role(Role.OPERATOR, f"/api/v1/dead-letters/{one.pk}/replay/", {"queue": queue_name})
    assert single.status_code == 200, single.content
    new_id = single.json()["result"]["replayed"][str(one.pk)]
    assert single.json()["result"] == {
        "replayed": {str(one.pk): new_id},
        "skipped": {},
        "missing": [],
    }
    assert TaskRecord.objects.get(pk=new_id).replay_of == one.task_id

    many = as_role(
        Role.OPERATOR,
        "/api/v1/dead-letters/replay/",
        {"ids": [one.pk, two.pk, broken.pk], "queue": queue_name},
    )
    assert many.status_code == 200, many.content
    result = many.json()["result"]
    assert list(result["replayed"]) == [str(two.pk)]
    assert set(result["skipped"]) == {str(one.pk), str(broken.pk)}
    assert depth(queue_name) == 2
    nothing = as_role(Role.OPERATOR, f"/api/v1/dead-letters/{broken.pk}/replay/")
    assert nothing.status_code == 409


def test_every_action_and_dead_letter_path_is_in_the_schema_with_its_bodies_and_errors(get):
    schema = get("/api/v1/schema/", format="json").json()
    paths = schema["paths"]
    posts = {
        "/api/v1/tasks/{task_id}/retry/": "RetryBody",
        "/api/v1/tasks/{task_id}/revoke/": "RevokeBody",
        "/api/v1/tasks/bulk/": "BulkBody",
        "/api/v1/workers/{hostname}/control/": "WorkerControlBody",
        "/api/v1/queues/{name}/purge/": "PurgeBody",
        "/api/v1/dead-letters/{id}/replay/": "DeadLetterReplayBody",
        "/api/v1/dead-letters/replay/": "DeadLetterReplayManyBody",
        "/api/v1/dead-letters/discard/": "DeadLetterIdsBody",
        "/api/v1/dead-letters/{id}/discard/": None,
    }
    for path, request in posts.items():
        operation = paths[path]["post"]
        assert {"200", "400", "401", "403", "404", "409", "503"} <= set(operation["responses"]), (
            path
        )
        if request:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith(f"/{request}Request"), (path, ref)
    assert "202" in paths["/api/v1/tasks/bulk/"]["post"]["responses"]
    for path in (
        "/api/v1/dead-letters/",
        "/api/v1/dead-letters/{id}/",
        "/api/v1/tasks/bulk/{run_id}/",
    ):
        assert "get" in paths[path], path
    retry_answer = schema["components"]["schemas"]["RetryAnswer"]
    assert retry_answer["properties"]["result"]["$ref"].endswith("/RetryResult")
