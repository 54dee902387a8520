"""/api/v1 reads: shapes, filters, cursor pages, 400s for bad input, 404s, the schema."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework import serializers

from tasks_admin import histogram
from tasks_admin.api import serializers as s
from tasks_admin.collector.partitions import ensure_partitions
from tasks_admin.models import AuditEntry, QueueRecord, QueueSample, TaskMinuteRollup, WorkerRecord
from tests.api.helpers import task

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {
    "task_id",
    "name",
    "state",
    "first_seen_at",
    "started_at",
    "runtime",
    "retries",
    "worker",
    "queue",
    "args",
    "kwargs",
}


def ids(body) -> list[str]:
    return [row["task_id"] for row in body["results"]]


def test_task_list_has_the_documented_shape(api):
    t = task(name="demo.add", worker="w1", queue="q1", args="(1, 2)", runtime=0.5)
    body = api.json("/api/v1/tasks/")
    assert set(body) == {
        "results",
        "next",
        "next_cursor",
        "total",
        "total_capped",
        "total_cap",
        "mode",
        "window",
    }
    assert body["total"] == 1 and body["next"] is None and body["mode"] == "list"
    row = body["results"][0]
    assert set(row) == SUMMARY_KEYS
    assert (row["task_id"], row["name"], row["worker"], row["args"], row["runtime"]) == (
        t.task_id,
        "demo.add",
        "w1",
        "(1, 2)",
        0.5,
    )


def test_a_task_row_is_written_exactly_as_drfs_fields_would_write_it():
    started = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    rows = [
        task(name="demo.add", worker="w1", queue="q1", args="(1, 2)", runtime=0.5),
        task(name="<b>x</b>", kwargs="{'a': 'é'}", started_at=started, retries=3),
        task(state="STARTED", runtime=None, started_at=None),
    ]
    fast = s.TaskSummarySerializer(rows, many=True).data
    generic = [serializers.Serializer.to_representation(s.TaskSummarySerializer(), r) for r in rows]
    assert fast == generic
    assert fast[1]["started_at"] == "2026-01-02T03:04:05.678901Z"


def test_task_list_is_newest_first_and_filters_like_the_tasks_page(api):
    old = task(name="a", state="FAILURE", worker="w1", queue="q", ago=dt.timedelta(hours=3))
    new = task(name="a", state="SUCCESS", worker="w2", queue="q")
    other = task(name="b", state="FAILURE", worker="w1", queue="r", ago=dt.timedelta(minutes=5))
    assert ids(api.json("/api/v1/tasks/")) == [new.task_id, other.task_id, old.task_id]
    assert ids(api.json("/api/v1/tasks/", name="a")) == [new.task_id, old.task_id]
    assert ids(api.json("/api/v1/tasks/", state="FAILURE")) == [other.task_id, old.task_id]
    assert ids(api.json("/api/v1/tasks/", worker="w1", queue="q")) == [old.task_id]
    assert ids(api.json("/api/v1/tasks/", **{"from": "1h"})) == [new.task_id, other.task_id]
    assert ids(api.json("/api/v1/tasks/", to="2h")) == [old.task_id]


def test_several_states_can_be_repeated_or_comma_separated(client, api):
    f = task(state="FAILURE", ago=dt.timedelta(minutes=2))
    r = task(state="RETRY")
    task(state="SUCCESS")
    repeated = client.get("/api/v1/tasks/?state=FAILURE&state=RETRY", headers=api.headers).json()
    assert ids(repeated) == [r.task_id, f.task_id]
    assert ids(api.json("/api/v1/tasks/", state="FAILURE,RETRY")) == [r.task_id, f.task_id]


def test_search_finds_an_exact_id_an_id_prefix_and_text(api):
    a = task("abcd1234-0000", args="('alice@example.com',)")
    b = task("abce9999-0000", kwargs="{'user': 'bob'}", ago=dt.timedelta(minutes=2))
    assert api.json("/api/v1/tasks/", search=a.task_id)["mode"] == "id"
    assert ids(api.json("/api/v1/tasks/", search=a.task_id)) == [a.task_id]
    body = api.json("/api/v1/tasks/", search="abc")
    assert body["mode"] == "text" and ids(body) == []
    prefix = api.json("/api/v1/tasks/", search="abce")
    assert prefix["mode"] == "prefix" and ids(prefix) == [b.task_id]
    text = api.json("/api/v1/tasks/", search="ALICE@", match="text")
    assert text["mode"] == "text" and ids(text) == [a.task_id]
    assert text["window"]["kind"] == "time" and text["window"]["full"] is False


def test_cursor_pages_walk_every_task_once_in_a_stable_order(api):
    at = timezone.now() - dt.timedelta(minutes=10)
    # Many share a timestamp: the task id breaks ties, so none is skipped or repeated.
    made = [task(f"t-{i:03d}", at=at - dt.timedelta(seconds=i // 7)) for i in range(120)]
    seen, params, pages = [], {"page_size": "25"}, 0
    while True:
        body = api.json("/api/v1/tasks/", **params)
        seen += ids(body)
        pages += 1
        if body["next"] is None:
            break
        assert body["next"].startswith("http://testserver/api/v1/tasks/?")
        params = {"page_size": "25", "cursor": body["next_cursor"]}
        task(at=timezone.now())  # new arrivals do not shift the pages being walked
    assert pages == 5
    assert len(seen) == len(set(seen)) == 120
    expected = sorted(made, key=lambda t: (-t.first_seen_at.timestamp(), t.task_id))
    assert seen == [t.task_id for t in expected]


def test_the_next_link_keeps_the_filters(client, api):
    for i in range(3):
        task(name="x", ago=dt.timedelta(minutes=i + 1))
    task(name="y")
    body = api.json("/api/v1/tasks/", name="x", page_size="2")
    following = client.get(body["next"], headers=api.headers).json()
    assert len(following["results"]) == 1 and following["results"][0]["name"] == "x"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"state": "NOPE"}, "state"),
        ({"state": ""}, "state"),
        ({"from": "yesterday-ish"}, "is not a time"),
        ({"to": "2025-13-45"}, "is not a time"),
        ({"from": "1h", "to": "2h"}, "'to' is before 'from'"),
        ({"sort": "name"}, "sort"),
        ({"match": "fuzzy"}, "match"),
        ({"cursor": "garbage"}, "Not a cursor"),
        ({"cursor": "nan~x", "sort": "runtime"}, "Not a cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"colour": "blue"}, "colour: Unknown parameter"),
        ({"name": "a\x00b"}, "NUL"),
        ({"search": "x" * 300}, "search"),
    ],
)
def test_bad_task_list_input_is_a_400_that_names_the_problem(api, params, needle):
    body = api.json("/api/v1/tasks/", status=400, **params)
    assert body["error"] == "invalid"
    assert needle in body["detail"]


def test_a_parameter_given_twice_is_a_400(client, api):
    response = client.get("/api/v1/tasks/?name=a&name=b", headers=api.headers)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "detail": "name: Give this parameter once."}


def test_one_task_has_every_field_its_timeline_and_its_lineage(api):
    parent = task("parent-1", name="flow.start", ago=dt.timedelta(minutes=3))
    t = task(
        "child/1",  # ids may hold slashes
        name="flow.step",
        parent_id=parent.task_id,
        root_id=parent.task_id,
        exception="ValueError('x')",
        state="FAILURE",
    )
    task("grandchild-1", parent_id=t.task_id, root_id=parent.task_id)
    ensure_partitions(timezone.now().date())
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tasks_admin_taskevent (id, recorded_at, task_id, type, event_at, "
            "hostname, clock, event_key, fields) VALUES (1, now(), %s, 'task-failed', now(), "
            "'w1', 1, 1, %s)",
            [t.task_id, '{"exception": "ValueError(\'x\')", "pid": 7}'],
        )
    body = api.json("/api/v1/tasks/child/1/")
    assert set(body) == {"task", "timeline", "timeline_capped", "lineage"}
    assert body["task"]["task_id"] == "child/1" and body["task"]["state"] == "FAILURE"
    assert body["task"]["exception"] == "ValueError('x')"
    assert body["timeline"] == [
        {
            "type": "task-failed",
            "event_at": body["timeline"][0]["event_at"],
            "hostname": "w1",
            "offset": 0.0,
            "fields": {"exception": "ValueError('x')"},
        }
    ]
    lineage = body["lineage"]
    assert lineage["parent"]["task_id"] == "parent-1" and lineage["root_id"] == "parent-1"
    assert [c["task_id"] for c in lineage["children"]["tasks"]] == ["grandchild-1"]
    assert lineage["children"]["total"] == 1 and lineage["children"]["more"] is False


def test_an_unknown_task_is_a_json_404(api):
    assert api.json("/api/v1/tasks/nope/", status=404) == {
        "error": "not_found",
        "detail": "No task with id 'nope'.",
    }


def test_task_names_lists_every_distinct_name_sorted(api):
    for name in ("b.two", "a.one", "b.two", "c.three"):
        task(name=name)
    task(name="")
    assert api.json("/api/v1/task-names/") == {"names": ["a.one", "b.two", "c.three"]}


def worker(hostname: str, **fields):
    now = timezone.now()
    fields.setdefault("last_heartbeat_at", now)
    return WorkerRecord.objects.create(
        hostname=hostname, first_seen_at=now, updated_at=now, **fields
    )


def test_workers_list_online_first_and_one_worker_has_its_tasks(api):
    worker("b@host", is_online=True, active=2, queues=["celery"], loadavg=[0.5, 0.2, 0.1])
    worker("a@host", is_online=False, offline_at=timezone.now())
    running = task(state="STARTED", worker="b@host", name="slow")
    body = api.json("/api/v1/workers/")
    assert [w["hostname"] for w in body["results"]] == ["b@host", "a@host"]
    first = body["results"][0]
    assert first["queues"] == ["celery"] and first["active"] == 2 and first["is_online"]
    assert first["loadavg"] == [0.5, 0.2, 0.1]
    one = api.json("/api/v1/workers/b@host/")
    assert [t["task_id"] for t in one["started"]] == [running.task_id]
    assert one["stats"] == {} and one["registered"] == []
    assert api.json("/api/v1/workers/zzz/", status=404)["error"] == "not_found"


def test_queues_list_depth_consumers_and_the_trend(api):
    now = timezone.now()
    QueueRecord.objects.create(
        name="celery", depth=7, consumers=2, sampled_at=now, first_seen_at=now
    )
    QueueSample.objects.create(queue="celery", sampled_at=now - dt.timedelta(minutes=30), depth=3)
    body = api.json("/api/v1/queues/")
    assert body["total_depth"] == 7
    (queue,) = body["results"]
    assert (queue["name"], queue["depth"], queue["consumers"], queue["delta"]) == (
        "celery",
        7,
        2,
        4,
    )
    assert [p["depth"] for p in queue["trend"]] == [3]


def audit(action: str, username: str = "bob", outcome: str = "succeeded", **fields):
    return AuditEntry.objects.create(
        username=username, source="page", action=action, outcome=outcome, **fields
    )


def test_audit_entries_newest_first_filtered_and_paged(api):
    made = [audit("task.retry", targets=[f"t{i}"]) for i in range(5)]
    audit("queue.purge", username="eve", outcome="refused")
    body = api.json("/api/v1/audit/", action="task.retry", page_size="3")
    assert [e["targets"] for e in body["results"]] == [["t4"], ["t3"], ["t2"]]
    rest = api.json(
        "/api/v1/audit/", action="task.retry", page_size="3", cursor=body["next_cursor"]
    )
    assert [e["id"] for e in rest["results"]] == [made[1].id, made[0].id]
    assert rest["next"] is None
    refused = api.json("/api/v1/audit/", outcome="refused")["results"]
    assert [(e["username"], e["action"]) for e in refused] == [("eve", "queue.purge")]
    assert api.json("/api/v1/audit/", cursor="x", status=400)["error"] == "invalid"
    assert api.json("/api/v1/audit/", outcome="maybe", status=400)["error"] == "invalid"


def rollup(name: str, minute: dt.datetime, runtimes=(), **counts):
    hist = histogram.from_runtimes(runtimes)
    return TaskMinuteRollup.objects.create(
        name=name,
        minute=minute.replace(second=0, microsecond=0),
        runtime_hist=hist,
        runtime_count=len(runtimes),
        runtime_sum=sum(runtimes),
        **counts,
    )


def test_stats_count_rates_and_percentiles_per_name_over_the_window(api):
    now = timezone.now()
    rollup("a", now, runtimes=[0.1] * 9 + [2.0], received=12, succeeded=10, failed=2)
    rollup("a", now - dt.timedelta(minutes=30), succeeded=5)
    rollup("b", now - dt.timedelta(minutes=5), received=1, failed=1)
    rollup("a", now - dt.timedelta(hours=3), succeeded=100)  # outside the default hour
    body = api.json("/api/v1/stats/")
    assert body["window_minutes"] == 60
    by_name = {t["name"]: t for t in body["tasks"]}
    a = by_name["a"]
    assert (a["succeeded"], a["failed"], a["received"]) == (15, 2, 12)
    assert a["failure_rate"] == pytest.approx(2 / 17)
    assert a["per_minute"] == pytest.approx(17 / 60)
    assert a["runtime"]["p50"] == pytest.approx(0.1, rel=0.15)
    assert a["runtime"]["p99"] == pytest.approx(2.0, rel=0.15)
    assert by_name["b"]["runtime"] == {"p50": None, "p95": None, "p99": None}
    assert body["totals"]["succeeded"] == 15 and body["totals"]["failed"] == 3
    wide = api.json("/api/v1/stats/", window="240", name="a")
    assert [t["name"] for t in wide["tasks"]] == ["a"] and wide["tasks"][0]["succeeded"] == 115
    assert api.json("/api/v1/stats/", window="0", status=400)["error"] == "invalid"
    assert api.json("/api/v1/stats/", window="x", status=400)["error"] == "invalid"


def test_unknown_api_paths_are_json_404s_and_a_missing_slash_redirects(client, api):
    response = client.get("/api/v1/nothing/", headers=api.headers)
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "detail": "No API endpoint at /api/v1/nothing/.",
    }
    odd = client.get("/api/v1/tasks/a%0Ab/", headers=api.headers)
    assert odd.status_code == 404 and odd.json()["error"] == "not_found"
    redirect = client.get("/api/v1/tasks?state=FAILURE", headers=api.headers)
    assert redirect.status_code == 308 and redirect["Location"] == "/api/v1/tasks/?state=FAILURE"


def test_the_schema_is_served_and_lists_every_v1_path(client, api):
    response = client.get("/api/v1/schema/", headers={**api.headers, "Accept": "application/json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) == {
        "/api/v1/tasks/",
        "/api/v1/tasks/{task_id}/",
        "/api/v1/task-names/",
        "/api/v1/workers/",
        "/api/v1/workers/{hostname}/",
        "/api/v1/queues/",
        "/api/v1/audit/",
        "/api/v1/stats/",
        "/api/v1/advisor/findings/",
        "/api/v1/advisor/run/",
        "/api/v1/alerts/rules/",
        "/api/v1/alerts/notices/",
        # The actions and dead letters (tests/api/test_v1_actions.py).
        "/api/v1/tasks/{task_id}/retry/",
        "/api/v1/tasks/{task_id}/revoke/",
        "/api/v1/tasks/bulk/",
        "/api/v1/tasks/bulk/{run_id}/",
        "/api/v1/workers/{hostname}/control/",
        "/api/v1/queues/{name}/purge/",
        "/api/v1/dead-letters/",
        "/api/v1/dead-letters/{id}/",
        "/api/v1/dead-letters/{id}/replay/",
        "/api/v1/dead-letters/{id}/discard/",
        "/api/v1/dead-letters/replay/",
        "/api/v1/dead-letters/discard/",
    }
    assert "bearerAuth" in schema["components"]["securitySchemes"]
    assert "429" in schema["paths"]["/api/v1/tasks/"]["get"]["responses"]


def test_the_schema_needs_credentials(client):
    assert client.get("/api/v1/schema/").status_code == 401


def test_the_docs_pages_send_anonymous_visitors_to_sign_in(client):
    for path in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), path


def test_the_docs_pages_are_served_by_the_app_without_a_cdn(client, make_user):
    client.force_login(make_user("bob"))
    for path in ("/api/v1/docs/", "/api/v1/redoc/"):
        page = client.get(path).content.decode()
        assert "/static/drf_spectacular_sidecar/" in page, path
        assert "cdn" not in page.lower() and "unpkg" not in page.lower(), path
    assert (
        client.get(
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        ).status_code
        == 200
    )


def test_the_browsable_api_renders_html_for_a_signed_in_browser(client, make_user):
    client.force_login(make_user("bob"))
    response = client.get("/api/v1/tasks/", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "<html" in response.content.decode()
