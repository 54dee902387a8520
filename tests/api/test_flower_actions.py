"""Flower 2.x's action routes, called the way a Flower script calls them (HTTP basic auth,
form bodies or query parameters, JSON bodies for apply), answered in Flower's shapes; a
viewer is refused and audited; real workers on Redis and RabbitMQ do what was asked."""

import base64
import json
import socket
import sys
import uuid
from urllib.parse import urlencode

import pytest
from celery import states
from django.utils import timezone

from tasks_admin.models import AuditEntry, TaskRecord, WorkerRecord
from tasks_admin.roles import Role
from tasks_admin.services import tasks_send
from tasks_admin.services.broker import broadcast, broker_connection, replies_by_worker
from tests.api.helpers import task
from tests.integration.conftest import BROKERS, Cluster, cluster, wait_for  # noqa: F401

pytestmark = pytest.mark.django_db

HOST = "celery@w1"


def basic(username: str) -> dict[str, str]:
    pair = f"{username}:pw-{username}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def form_post(client, path: str, username: str, form=None, query=None):
    """What ``requests.post(url, data=form, params=query, auth=(user, password))`` sends."""
    url = path + ("?" + urlencode(query) if query else "")
    return client.post(
        url,
        urlencode(form or {}),
        content_type="application/x-www-form-urlencoded",
        headers=basic(username),
    )


def json_post(client, path: str, username: str, body):
    """What ``requests.post(url, json=body, auth=(user, password))`` sends."""
    return client.post(
        path, json.dumps(body), content_type="application/json", headers=basic(username)
    )


@pytest.fixture
def admin(make_user) -> str:
    make_user("boss", Role.ADMIN)
    return "boss"


@pytest.fixture
def known_worker():
    now = timezone.now()
    return WorkerRecord.objects.create(
        hostname=HOST, first_seen_at=now, updated_at=now, registered=["demo.add"]
    )


ROUTES = [
    (f"/api/worker/shutdown/{HOST}", {}),
    (f"/api/worker/pool/restart/{HOST}", {}),
    (f"/api/worker/pool/grow/{HOST}", {"n": "2"}),
    (f"/api/worker/pool/shrink/{HOST}", {"n": "1"}),
    (f"/api/worker/pool/autoscale/{HOST}", {"min": "1", "max": "4"}),
    (f"/api/worker/queue/add-consumer/{HOST}", {"queue": "extra"}),
    (f"/api/worker/queue/cancel-consumer/{HOST}", {"queue": "extra"}),
    ("/api/task/revoke/t-1", {"terminate": "true"}),
    ("/api/task/abort/t-1", {}),
    ("/api/task/timeout/demo.add", {"workername": HOST, "soft": "10", "hard": "20"}),
    ("/api/task/rate-limit/demo.add", {"workername": HOST, "ratelimit": "10/m"}),
]
SEND_ROUTES = ["/api/task/async-apply/demo.add", "/api/task/send-task/demo.add"]
SEND_ROUTES += ["/api/task/apply/demo.add"]


def test_a_viewer_is_refused_on_every_action_route_and_each_refusal_is_audited(
    client, make_user, known_worker
):
    make_user("watcher", Role.VIEWER)
    task("t-1", state="STARTED")
    for path, form in ROUTES:
        response = form_post(client, path, "watcher", form)
        assert response.status_code == 403, (path, response.content)
        assert response.json()["error"] == "forbidden"
        assert "you are viewer" in response.json()["detail"]
    for path in SEND_ROUTES:
        response = json_post(client, path, "watcher", {"args": [1, 2]})
        assert response.status_code == 403, (path, response.content)
        assert response.json()["detail"] == "task.send needs the admin role; you are viewer."

    entries = list(AuditEntry.objects.order_by("id").values_list("action", "outcome", "source"))
    assert len(entries) == len(ROUTES) + len(SEND_ROUTES)
    assert {outcome for _, outcome, _ in entries} == {"refused"}
    assert {source for _, _, source in entries} == {"api"}
    assert [action for action, _, _ in entries] == (
        ["worker.control"] * 7 + ["task.terminate", "task.revoke"] + ["worker.control"] * 2
    ) + ["task.send"] * 3
    assert set(AuditEntry.objects.values_list("username", flat=True)) == {"watcher"}


def test_an_operator_may_revoke_but_not_control_workers(client, make_user, known_worker):
    make_user("ops", Role.OPERATOR)
    task("t-1", state="SUCCESS")
    # Allowed to revoke: the service runs, and a finished task is a conflict (409).
    response = form_post(client, "/api/task/revoke/t-1", "ops")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "Task t-1 is already SUCCESS: nothing to revoke.",
    }
    response = form_post(client, f"/api/worker/pool/grow/{HOST}", "ops", {"n": "1"})
    assert response.status_code == 403


def test_no_credentials_or_a_wrong_password_get_401(client, admin, known_worker):
    response = client.post(f"/api/worker/pool/grow/{HOST}")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    bad = {"Authorization": "Basic " + base64.b64encode(b"boss:wrong").decode()}
    response = client.post(f"/api/worker/pool/grow/{HOST}", headers=bad)
    assert response.status_code == 401
    assert not AuditEntry.objects.exists()


def test_an_unknown_worker_is_a_404_as_in_flower_and_is_audited(client, admin):
    response = form_post(client, "/api/worker/pool/grow/nobody@box", "boss", {"n": "1"})
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Unknown worker 'nobody@box'"}
    response = form_post(
        client, "/api/task/rate-limit/demo.add", "boss", {"workername": "x@y", "ratelimit": "1"}
    )
    assert response.status_code == 404
    entries = AuditEntry.objects.order_by("id")
    assert [(e.action, e.targets, e.outcome) for e in entries] == [
        ("worker.control", ["nobody@box"], "failed"),
        ("worker.control", ["x@y"], "failed"),
    ]


def test_a_task_the_worker_has_not_registered_is_a_404(client, admin, known_worker):
    response = form_post(
        client, "/api/task/timeout/demo.nope", "boss", {"workername": HOST, "soft": "1"}
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "Unknown task 'demo.nope'"


@pytest.mark.parametrize(
    ("path", "form", "detail"),
    [
        (f"/api/worker/pool/grow/{HOST}", {"n": "many"}, "Invalid argument 'many' of type 'int'"),
        (f"/api/worker/pool/autoscale/{HOST}", {"min": "1"}, "Missing argument max"),
        (f"/api/worker/queue/add-consumer/{HOST}", {}, "Missing argument queue"),
        ("/api/task/revoke/t-1", {"terminate": "maybe"}, "Invalid argument 'maybe' of type 'bool'"),
        ("/api/task/rate-limit/demo.add", {"ratelimit": "1/s"}, "Missing argument workername"),
        ("/api/task/timeout/demo.add", {"workername": HOST, "soft": "x"}, "of type 'float'"),
        (f"/api/worker/pool/grow/{HOST}", {"n": "0"}, "n must be a whole number from 1"),
        ("/api/task/rate-limit/demo.add", {"workername": HOST, "ratelimit": "fast"}, "not a rate"),
    ],
)
def test_bad_arguments_are_a_400_saying_which(client, admin, known_worker, path, form, detail):
    response = form_post(client, path, "boss", form)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid"
    assert detail in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "invalid options"),
        ('{"args": {"x": 1}}', "args must be an array"),
        ('{"args": [1], "kwargs": [2]}', "kwargs must be an object"),
        ('{"args": [1], "serializer": "pickle"}', "Invalid option serializer"),
        ('{"eta": "tomorrow"}', "Invalid option eta"),
        ('{"countdown": -5}', "Invalid option countdown"),
    ],
)
def test_apply_bodies_flower_refuses_are_a_400(client, admin, known_worker, body, detail):
    response = client.post(
        "/api/task/async-apply/demo.add",
        body,
        content_type="application/json",
        headers=basic("boss"),
    )
    assert response.status_code == 400, response.content
    assert detail in response.json()["detail"]


def test_apply_reads_a_json_body_whatever_its_content_type_as_flower_does(
    client, admin, known_worker
):
    # curl -d '{...}' sends application/x-www-form-urlencoded.
    response = client.post(
        "/api/task/async-apply/demo.add",
        '{"args": "1, 2"}',
        content_type="application/x-www-form-urlencoded",
        headers=basic("boss"),
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "args must be an array"


def test_a_parameter_that_is_not_one_plain_value_is_a_400(client, admin, known_worker):
    response = json_post(client, f"/api/worker/pool/grow/{HOST}", "boss", {"n": [1, 2]})
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid argument for n: give one plain value"


def test_apply_of_a_task_nobody_knows_is_a_404_and_audited(client, admin):
    response = json_post(client, "/api/task/apply/nope.task", "boss", {"args": []})
    assert response.status_code == 404
    assert response.json()["detail"] == "Unknown task 'nope.task'"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.targets, entry.outcome) == ("task.send", ["nope.task"], "failed")


def test_revoke_of_a_task_never_seen_is_a_404(client, admin):
    response = form_post(client, "/api/task/revoke/no-such-id", "boss")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_multipart_forms_are_read_too(client, admin, known_worker):
    response = client.post(f"/api/worker/pool/grow/{HOST}", {"n": "many"}, headers=basic("boss"))
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid argument 'many' of type 'int'"


def test_apply_answers_with_the_state_so_far_when_the_task_does_not_finish_in_time(
    client, admin, known_worker, settings, monkeypatch
):
    settings.CELERY_BROKER_URL = BROKERS["redis"]
    monkeypatch.setattr(tasks_send, "APPLY_WAIT", 0.5)
    queue = f"nobody-{uuid.uuid4().hex[:8]}"  # no worker consumes it
    try:
        response = json_post(
            client, "/api/task/apply/demo.add", "boss", {"args": [1, 2], "queue": queue}
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["state"], body["result"]) == ("PENDING", None)
        entry = AuditEntry.objects.get(action="task.send")
        assert entry.outcome == "succeeded" and entry.result["ready"] is False
        assert "had not finished after 0.5 s" in entry.detail
        with broker_connection() as conn:
            message = conn.SimpleQueue(queue).get(timeout=5)
            assert message.headers["id"] == body["task-id"]
            assert message.headers["task"] == "demo.add"
            assert message.content_type == "application/json"
            assert json.loads(message.body)[0] == [1, 2]
            message.ack()
    finally:
        with broker_connection() as conn:
            conn.default_channel.queue_delete(queue)


def test_a_known_worker_that_does_not_answer_is_a_503(client, admin, known_worker, settings):
    settings.CELERY_BROKER_URL = BROKERS["redis"]
    response = form_post(client, f"/api/worker/pool/grow/{HOST}", "boss", query={"n": "1"})
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert AuditEntry.objects.get().outcome == "failed"


# --- real workers, on Redis and on RabbitMQ ---------------------------------------------


@pytest.fixture
def brokered(cluster, settings, monkeypatch) -> Cluster:  # noqa: F811
    """The cluster, with the console's services publishing to its broker."""
    settings.CELERY_BROKER_URL = cluster.broker_url
    monkeypatch.setenv("CELERY_BROKER_URL", cluster.broker_url)
    return cluster


def start_worker(on: Cluster, name: str, *, concurrency: int = 2) -> tuple[object, str]:
    hostname = f"{name}-{on.suffix}@{socket.gethostname()}"
    args = [sys.executable, "-m", "celery", "-A", "console", "worker", "-E", "-Q", on.queue]
    args += ["-c", str(concurrency), "-n", hostname, "--without-gossip", "--without-mingle"]
    proc = on.spawn(name, [*args, "--loglevel=INFO"])
    wait_for(lambda: broadcast("ping", destination=[hostname], timeout=1), 40)
    now = timezone.now()
    # What the collector records for a worker it has seen (Flower: the inspector cache).
    WorkerRecord.objects.update_or_create(
        hostname=hostname,
        defaults={"first_seen_at": now, "updated_at": now, "registered": ["demo.add"]},
    )
    return proc, hostname


def pool_size(hostname: str) -> int:
    stats = replies_by_worker(broadcast("stats", destination=[hostname], timeout=3))
    return len(stats.get(hostname, {}).get("pool", {}).get("processes", []))


def active_queues(hostname: str) -> set[str]:
    replies = replies_by_worker(broadcast("active_queues", destination=[hostname], timeout=3))
    return {q["name"] for q in replies.get(hostname, [])}


@pytest.mark.integration
def test_worker_routes_drive_a_real_worker_as_flower_does(brokered, client, admin):
    proc, host = start_worker(brokered, "fl")
    assert wait_for(lambda: pool_size(host) == 2)

    grow = form_post(client, f"/api/worker/pool/grow/{host}", "boss", {"n": "1"})
    assert (grow.status_code, grow.json()) == (
        200,
        {"message": f"Growing '{host}' worker's pool by 1"},
    )
    wait_for(lambda: pool_size(host) == 3)
    shrink = form_post(client, f"/api/worker/pool/shrink/{host}", "boss", query={"n": "1"})
    assert shrink.json() == {"message": f"Shrinking '{host}' worker's pool by 1"}
    wait_for(lambda: pool_size(host) == 2)

    # Flower's 403 when the worker refuses (no --autoscale, no pool restarts).
    scale = form_post(client, f"/api/worker/pool/autoscale/{host}", "boss", {"min": 1, "max": 3})
    assert scale.status_code == 403
    assert scale.json()["detail"].startswith(f"Failed to autoscale '{host}' worker: ")
    assert "Autoscale not enabled" in scale.json()["detail"]
    restart = form_post(client, f"/api/worker/pool/restart/{host}", "boss")
    assert restart.status_code == 403
    assert restart.json()["detail"].startswith(f"Failed to restart the '{host}' pool: ")

    extra = f"extra-{brokered.suffix}"
    added = form_post(client, f"/api/worker/queue/add-consumer/{host}", "boss", {"queue": extra})
    assert added.json() == {"message": f"add consumer {extra}"}
    wait_for(lambda: extra in active_queues(host))
    cancelled = form_post(
        client, f"/api/worker/queue/cancel-consumer/{host}", "boss", query={"queue": extra}
    )
    assert cancelled.json() == {"message": f"no longer consuming from {extra}"}
    wait_for(lambda: extra not in active_queues(host))

    limit = form_post(
        client, "/api/task/rate-limit/demo.add", "boss", {"workername": host, "ratelimit": "10/m"}
    )
    assert limit.json() == {"message": "new rate limit set successfully"}
    timeout = form_post(
        client,
        "/api/task/timeout/demo.add",
        "boss",
        {"workername": host, "soft": "30", "hard": "60"},
    )
    assert timeout.json() == {"message": "time limits set successfully"}

    shutdown = form_post(client, f"/api/worker/shutdown/{host}", "boss")
    assert shutdown.json() == {"message": "Shutting down!"}
    wait_for(lambda: proc.popen.poll() is not None, 30)  # type: ignore[attr-defined]

    entries = AuditEntry.objects.filter(action="worker.control").order_by("id")
    commands = [(e.params["command"], e.outcome) for e in entries]
    assert commands == [
        ("pool_grow", "succeeded"),
        ("pool_shrink", "succeeded"),
        ("autoscale", "failed"),
        ("pool_restart", "failed"),
        ("add_consumer", "succeeded"),
        ("cancel_consumer", "succeeded"),
        ("rate_limit", "succeeded"),
        ("time_limit", "succeeded"),
        ("shutdown", "succeeded"),
    ]
    assert {(e.username, e.source) for e in entries} == {("boss", "api")}


def seen(task_id: str, state: str, timeout: float = 40.0) -> TaskRecord:
    return wait_for(
        lambda: TaskRecord.objects.filter(task_id=task_id, state=state).first(), timeout
    )


@pytest.mark.integration
def test_tasks_are_applied_sent_revoked_and_aborted_as_flower_does(brokered, client, admin):
    brokered.collector("--no-pollers")
    _, host = start_worker(brokered, "fa")
    queue = brokered.queue

    sent = json_post(
        client, "/api/task/async-apply/demo.add", "boss", {"args": [2, 3], "queue": queue}
    )
    assert sent.status_code == 200, sent.content
    assert set(sent.json()) == {"task-id", "state"} and sent.json()["state"] == "PENDING"
    assert seen(sent.json()["task-id"], states.SUCCESS).result == "5"

    applied = json_post(
        client,
        "/api/task/apply/demo.add",
        "boss",
        {"args": [4], "kwargs": {"y": 5}, "queue": queue},
    )
    body = applied.json()
    assert (applied.status_code, body["result"], body["state"]) == (200, 9, "SUCCESS")
    assert set(body) == {"task-id", "result", "state"}
    failed = json_post(
        client, "/api/task/apply/demo.add", "boss", {"args": [1, "x"], "queue": queue}
    ).json()
    assert set(failed) == {"task-id", "result", "state", "traceback"}
    assert failed["state"] == "FAILURE" and failed["result"].startswith("TypeError(")
    assert "TypeError" in failed["traceback"]

    # send-task needs no known name; a long report to revoke while it runs.
    report = json_post(
        client,
        "/api/task/send-task/demo.generate_report",
        "boss",
        {"args": [7], "kwargs": {"seconds": 120}, "queue": queue},
    )
    report_id = report.json()["task-id"]
    seen(report_id, states.STARTED)
    revoked = form_post(
        client, f"/api/task/revoke/{report_id}", "boss", {"terminate": "true", "signal": "SIGTERM"}
    )
    assert revoked.json() == {"message": f"Revoked '{report_id}'"}
    seen(report_id, states.REVOKED)

    # Abort (Flower: AbortableTask) revokes: the worker holds the id in its revoked set.
    later = json_post(
        client,
        "/api/task/async-apply/demo.add",
        "boss",
        {"args": [1, 1], "queue": queue, "countdown": 300},
    )
    later_id = later.json()["task-id"]
    seen(later_id, states.RECEIVED)
    aborted = form_post(client, f"/api/task/abort/{later_id}", "boss")
    assert aborted.json() == {"message": f"Aborted '{later_id}'"}
    revoked_ids = replies_by_worker(broadcast("revoked", destination=[host], timeout=3))[host]
    assert later_id in revoked_ids

    actions = list(AuditEntry.objects.order_by("id").values_list("action", "outcome"))
    assert actions == [
        ("task.send", "succeeded"),
        ("task.send", "succeeded"),
        ("task.send", "succeeded"),
        ("task.send", "succeeded"),
        ("task.terminate", "succeeded"),
        ("task.send", "succeeded"),
        ("task.revoke", "succeeded"),
    ]
    applied_entry = AuditEntry.objects.filter(action="task.send").order_by("id")[1]
    assert applied_entry.result["result"] == 9 and applied_entry.params["wait"] is True
