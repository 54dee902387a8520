"""Flower 2.x's API as a drop-in: the calls a Flower script makes get Flower's keys and meanings."""

import base64
import datetime as dt
import json

import hypothesis
import pytest
from django.test import override_settings
from django.utils import timezone
from django_celery_results.models import TaskResult
from hypothesis import strategies as st

from tasks_admin.models import QueueRecord, TaskRecord, WorkerRecord
from tests.api.helpers import task

pytestmark = pytest.mark.django_db

# celery.events.state.Task._fields as Flower's as_dict() returns them (worker as hostname).
FLOWER_TASK_KEYS = {
    "uuid",
    "name",
    "state",
    "received",
    "sent",
    "started",
    "rejected",
    "succeeded",
    "failed",
    "retried",
    "revoked",
    "args",
    "kwargs",
    "eta",
    "expires",
    "retries",
    "worker",
    "result",
    "exception",
    "timestamp",
    "runtime",
    "traceback",
    "exchange",
    "routing_key",
    "clock",
    "client",
    "root",
    "root_id",
    "parent",
    "parent_id",
    "children",
}


def basic(username: str, password: str) -> dict:
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def test_flower_scripts_authenticate_with_basic_auth_or_a_bearer_token(client, make_user, api):
    make_user("flo")
    assert client.get("/api/tasks", headers=basic("flo", "pw-flo")).status_code == 200
    assert client.get("/api/tasks", headers=api.headers).status_code == 200
    wrong = client.get("/api/tasks", headers=basic("flo", "nope"))
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "authentication_failed"
    anonymous = client.get("/api/tasks")
    assert anonymous.status_code == 401


def test_api_tasks_returns_an_object_keyed_by_uuid_with_flowers_task_keys(api):
    at = timezone.now() - dt.timedelta(minutes=1)
    parent = task(
        "p1",
        name="demo.add",
        worker="celery@w1",
        args="(1, 2)",
        kwargs="{'x': 1}",
        result="3",
        runtime=0.25,
        received_at=at,
        started_at=at + dt.timedelta(seconds=1),
        succeeded_at=at + dt.timedelta(seconds=2),
        exchange="",
        routing_key="celery",
        at=at,
    )
    task("c1", parent_id="p1", root_id="p1", at=at + dt.timedelta(seconds=5))
    body = api.json("/api/tasks")
    assert list(body) == ["c1", "p1"]  # newest first, as Flower's default
    p = body["p1"]
    assert set(p) == FLOWER_TASK_KEYS
    assert p["uuid"] == "p1" and p["worker"] == "celery@w1" and p["state"] == "SUCCESS"
    assert p["received"] == pytest.approx(parent.received_at.timestamp())
    assert p["succeeded"] == pytest.approx(at.timestamp() + 2)
    assert p["sent"] is None and p["failed"] is None
    assert (p["args"], p["kwargs"], p["result"], p["runtime"]) == ("(1, 2)", "{'x': 1}", "3", 0.25)
    assert p["children"] == ["c1"] and p["parent"] is None
    assert body["c1"]["parent"] == "p1" and body["c1"]["root_id"] == "p1"
    # Flower leaves "worker" out of /api/tasks when the task has none.
    assert "worker" not in body["c1"]


def test_api_tasks_limit_offset_and_sort_by(api):
    base = timezone.now() - dt.timedelta(hours=1)
    for i, name in enumerate(["b", "c", "a"]):
        task(f"t{i}", name=name, at=base + dt.timedelta(minutes=i))
    assert list(api.json("/api/tasks", limit="2")) == ["t2", "t1"]
    assert list(api.json("/api/tasks", limit="2", offset="1")) == ["t1", "t0"]
    assert list(api.json("/api/tasks", offset="-5", limit="1")) == ["t2"]
    assert list(api.json("/api/tasks", sort_by="received")) == ["t0", "t1", "t2"]
    assert list(api.json("/api/tasks", sort_by="-received")) == ["t2", "t1", "t0"]
    assert list(api.json("/api/tasks", sort_by="name")) == ["t2", "t0", "t1"]
    assert list(api.json("/api/tasks", sort_by="-name")) == ["t1", "t0", "t2"]


@override_settings(CONSOLE_FLOWER_MAX_LIMIT=2)
def test_api_tasks_caps_the_number_returned(api):
    for i in range(4):
        task(ago=dt.timedelta(minutes=i + 1))
    assert len(api.json("/api/tasks")) == 2
    assert len(api.json("/api/tasks", limit="100")) == 2


def test_api_tasks_filters_by_workername_taskname_state_and_received_range(api):
    now = timezone.now().replace(second=0, microsecond=0)
    task("a", name="n1", worker="w1", state="FAILURE", at=now - dt.timedelta(hours=2))
    task("b", name="n1", worker="w2", state="SUCCESS", at=now - dt.timedelta(minutes=30))
    task("c", name="n2", worker="w1", state="SUCCESS", at=now - dt.timedelta(minutes=10))
    assert list(api.json("/api/tasks", workername="w1")) == ["c", "a"]
    assert list(api.json("/api/tasks", taskname="n1")) == ["b", "a"]
    assert list(api.json("/api/tasks", state="FAILURE")) == ["a"]
    assert list(api.json("/api/tasks", state="All")) == ["c", "b", "a"]
    everything = api.json("/api/tasks", workername="All", taskname="All")
    assert list(everything) == ["c", "b", "a"]
    start = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    end = (now - dt.timedelta(minutes=20)).strftime("%Y-%m-%d %H:%M")
    assert list(api.json("/api/tasks", received_start=start, received_end=end)) == ["b"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("state:FAILURE", ["f1"]),
        ("name:billing", ["f1", "s1"]),
        ("name:BILLING state:SUCCESS", ["s1"]),
        ("state:FAILURE OR state:RETRY", ["r1", "f1"]),
        ("(state:FAILURE OR state:RETRY) AND name:mail", ["r1"]),
        ("args:alice", ["s1"]),
        ("result:'ok'", ["s1"]),
        ("kwargs:user=bob", ["f1"]),
        ("kwargs:retries=3", ["r1"]),
        ("kwargs:user=bo", []),
        ("worker:node-2", ["r1"]),
        ("charge", ["f1", "s1"]),
        ('"send mail"', ["r1"]),
    ],
)
def test_api_tasks_search_uses_flowers_syntax(api, search, expected):
    now = timezone.now()
    task(
        "s1",
        name="billing.charge",
        state="SUCCESS",
        args="('alice',)",
        result="'ok'",
        at=now - dt.timedelta(minutes=3),
    )
    task(
        "f1",
        name="billing.charge",
        state="FAILURE",
        kwargs="{'user': 'bob', 'n': 2}",
        at=now - dt.timedelta(minutes=2),
    )
    task(
        "r1",
        name="mail.send mail",
        state="RETRY",
        worker="celery@node-2",
        kwargs="{'retries': 3}",
        at=now - dt.timedelta(minutes=1),
    )
    assert list(api.json("/api/tasks", search=search)) == expected


@pytest.mark.parametrize(
    ("search", "needle"),
    [
        ("(state:FAILURE", "unclosed '('"),
        ("ab", "terms need 3+ characters"),
        ("name:x", "terms need 3+ characters"),
        ("kwargs:novalue", "kwargs needs key=value"),
        ("state:A OR", "ends where a term was expected"),
        ("x" * 2049, "longer than 2048"),
        ("((((((state:A))))))", "deeper than 5"),
        (")", "unexpected ')'"),
    ],
)
def test_a_bad_flower_search_is_a_400_with_an_error(api, search, needle):
    body = api.json("/api/tasks", status=400, search=search)
    assert body["error"] == "invalid" and needle in body["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "ten"},
        {"sort_by": "runtime"},
        {"received_start": "yesterday"},
        {"offset": "99999999"},
    ],
)
def test_bad_flower_parameters_are_400s_not_500s(api, params):
    assert api.json("/api/tasks", status=400, **params)["error"] == "invalid"


def test_task_types_lists_the_names_seen(api):
    task(name="b.x")
    task(name="a.y")
    assert api.json("/api/task/types") == {"task-types": ["a.y", "b.x"]}


def test_task_info_is_one_task_dict_and_404_for_an_unknown_id(api):
    task("i1", name="demo.add")
    body = api.json("/api/task/info/i1")
    assert set(body) == FLOWER_TASK_KEYS
    assert body["uuid"] == "i1" and body["worker"] is None
    missing = api.json("/api/task/info/nope", status=404)
    assert missing == {"error": "not_found", "detail": "Unknown task 'nope'"}


def test_task_result_prefers_the_result_backends_json_value(api):
    task("r-ok", state="SUCCESS", result="{'a': 1}")
    TaskResult.objects.create(
        task_id="r-ok",
        status="SUCCESS",
        result=json.dumps({"a": 1}),
        content_type="application/json",
    )
    assert api.json("/api/task/result/r-ok") == {
        "task-id": "r-ok",
        "state": "SUCCESS",
        "result": {"a": 1},
    }


def test_task_result_of_a_failure_has_the_exception_and_traceback(api):
    task("r-bad", state="FAILURE", exception="ValueError('boom')", traceback="Traceback ...")
    body = api.json("/api/task/result/r-bad")
    assert body == {
        "task-id": "r-bad",
        "state": "FAILURE",
        "result": "ValueError('boom')",
        "traceback": "Traceback ...",
    }


def test_task_result_of_an_unknown_or_running_task_has_no_result(api):
    task("r-run", state="STARTED")
    assert api.json("/api/task/result/r-run") == {"task-id": "r-run", "state": "STARTED"}
    assert api.json("/api/task/result/unknown") == {"task-id": "unknown", "state": "PENDING"}
    assert api.json("/api/task/result/x", status=400, timeout="soon")["error"] == "invalid"


def worker(hostname: str, **fields):
    now = timezone.now()
    return WorkerRecord.objects.create(
        hostname=hostname, first_seen_at=now, updated_at=now, **fields
    )


def test_api_workers_has_flowers_keys_per_worker(api):
    inspected = timezone.now()
    worker(
        "celery@w1",
        is_online=True,
        stats={"pid": 42, "pool": {"max-concurrency": 4}},
        queues=["celery", "mail"],
        registered=["demo.add"],
        conf={"task_acks_late": False},
        inspected_at=inspected,
    )
    running = task("run-1", state="STARTED", worker="celery@w1", name="demo.add", args="(1,)")
    body = api.json("/api/workers")
    w = body["celery@w1"]
    assert set(w) == {
        "stats",
        "active_queues",
        "registered",
        "scheduled",
        "active",
        "reserved",
        "revoked",
        "conf",
        "timestamp",
    }
    assert w["stats"]["pid"] == 42 and w["registered"] == ["demo.add"]
    assert [q["name"] for q in w["active_queues"]] == ["celery", "mail"]
    assert w["timestamp"] == pytest.approx(inspected.timestamp())
    assert [(t["id"], t["name"], t["hostname"]) for t in w["active"]] == [
        (running.task_id, "demo.add", "celery@w1")
    ]


def test_api_workers_status_workername_and_refresh(client, api):
    worker("celery@up", is_online=True)
    worker("celery@down", is_online=False)
    statuses = client.get("/api/workers?status=1", headers=api.headers).json()
    assert statuses == {"celery@down": False, "celery@up": True}
    # Flower answers status for every worker, whatever workername says.
    one = client.get("/api/workers?status=true&workername=celery@up", headers=api.headers)
    assert one.json() == statuses
    assert list(api.json("/api/workers", workername="celery@up", refresh="true")) == ["celery@up"]
    missing = api.json("/api/workers", workername="nope", status=404)
    assert missing == {"error": "not_found", "detail": "Unknown worker 'nope'"}
    assert api.json("/api/workers", refresh="maybe", status=400)["error"] == "invalid"


def test_api_queues_length(api):
    now = timezone.now()
    QueueRecord.objects.create(name="mail", depth=3, first_seen_at=now)
    QueueRecord.objects.create(name="celery", depth=0, first_seen_at=now)
    assert api.json("/api/queues/length") == {
        "active_queues": [{"name": "celery", "messages": 0}, {"name": "mail", "messages": 3}]
    }


def test_flower_routes_are_not_in_the_v1_schema(client, api):
    schema = client.get("/api/v1/schema/?format=json", headers=api.headers).json()
    assert not any(not path.startswith("/api/v1/") for path in schema["paths"])


def test_basic_auth_is_remembered_briefly_but_not_for_a_deactivated_user(client, make_user):
    user = make_user("flo")
    assert client.get("/api/task/types", headers=basic("flo", "pw-flo")).status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/task/types", headers=basic("flo", "pw-flo")).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/workers?workername=a%00b",
        "/api/tasks?taskname=a%00b",
        "/api/tasks?search=a%00bcd",
        "/api/task/result/a%00b",
        "/api/task/info/a%00b",
    ],
)
def test_nul_characters_are_a_400_not_a_500(client, api, path):
    response = client.get(path, headers=api.headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


@hypothesis.settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(search=st.text(max_size=60))
def test_any_flower_search_is_answered_or_refused_never_a_500(client, api, search):
    if not TaskRecord.objects.filter(pk="s1").exists():  # once: examples share the test's db
        task("s1", name="billing.charge", kwargs="{'user': 'bob'}")
    response = client.get("/api/tasks", {"search": search}, headers=api.headers)
    assert response.status_code in (200, 400), (search, response.content[:300])
