"""/metrics (celery-exporter's names, from the database) and /readyz."""

import datetime as dt
import time

import pytest
from celery import states
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tasks_admin import histogram
from tasks_admin.collector import rollups
from tasks_admin.collector.writer import BatchWriter
from tasks_admin.models import QueueRecord, TaskMinuteRollup, TaskRecord, WorkerRecord
from tests import factories

pytestmark = pytest.mark.django_db


def rollup(name: str, minute: dt.datetime, runtimes=(), waits=(), **counts):
    """Write one minute's rollup the way the collector's writer does (totals too)."""
    d = rollups.Delta()
    d.counts.update(counts)
    d.runtime_count, d.runtime_sum = len(runtimes), sum(runtimes)
    d.hist = histogram.from_runtimes(runtimes)
    d.wait_count, d.wait_sum = len(waits), sum(waits)
    d.wait_hist = histogram.from_runtimes(waits)
    with connection.cursor() as cursor:
        rollups.apply(cursor, {(name, rollups.minute(minute)): d})


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, metric, **labels):
    return samples.get((metric, tuple(sorted(labels.items()))))


def buckets(samples, metric: str, name: str) -> list[tuple[float, float]]:
    return sorted(
        (float(dict(labels)["le"]), v)
        for (sample, labels), v in samples.items()
        if sample == f"{metric}_bucket" and dict(labels)["name"] == name
    )


def test_task_counters_are_the_sums_of_the_rollups_old_and_new(client):
    now = timezone.now()
    rollup("a", now - dt.timedelta(days=3), sent=6, received=5, succeeded=4, failed=1, rejected=2)
    rollup("a", now, sent=1, received=2, started=2, succeeded=1, retried=1, revoked=1, rejected=1)
    rollup("b", now - dt.timedelta(minutes=5), received=1, failed=1)
    s = scrape(client)
    assert value(s, "celery_task_sent_total", name="a") == 7
    assert value(s, "celery_task_received_total", name="a") == 7
    assert value(s, "celery_task_succeeded_total", name="a") == 5
    assert value(s, "celery_task_failed_total", name="a") == 1
    assert value(s, "celery_task_started_total", name="a") == 2
    assert value(s, "celery_task_retried_total", name="a") == 1
    assert value(s, "celery_task_revoked_total", name="a") == 1
    assert value(s, "celery_task_rejected_total", name="a") == 3
    assert value(s, "celery_task_failed_total", name="b") == 1
    assert value(s, "celery_task_sent_total", name="b") == 0
    assert value(s, "celery_task_rejected_total", name="b") == 0


def test_the_rejected_counter_is_typed_described_and_labelled_like_the_failed_one(client):
    rollup("a", timezone.now(), received=1, failed=1, rejected=1)
    response = client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    rejected, failed = families["celery_task_rejected"], families["celery_task_failed"]
    assert (rejected.type, failed.type) == ("counter", "counter")
    assert "rejected" in rejected.documentation
    assert [(x.name, x.labels) for x in rejected.samples] == [
        ("celery_task_rejected_total", x.labels) for x in failed.samples
    ]
    text = response.content.decode()
    assert "# TYPE celery_task_rejected_total counter" in text
    assert "# HELP celery_task_rejected_total " in text


def test_counters_keep_counting_across_scrapes_and_when_rollups_are_pruned(client):
    now = timezone.now()
    rollup("a", now - dt.timedelta(days=40), succeeded=10)
    assert value(scrape(client), "celery_task_succeeded_total", name="a") == 10
    rollup("a", now, succeeded=3)
    assert value(scrape(client), "celery_task_succeeded_total", name="a") == 13
    TaskMinuteRollup.objects.filter(minute__lt=now - dt.timedelta(days=30)).delete()
    assert value(scrape(client), "celery_task_succeeded_total", name="a") == 13


def test_the_runtime_histogram_is_cumulative_and_agrees_with_the_rollups(client):
    runtimes = [0.002, 0.05, 0.05, 0.4, 3.0, 3.0, 120.0]
    rollup("a", timezone.now(), runtimes=runtimes, succeeded=len(runtimes))
    s = scrape(client)
    found = buckets(s, "celery_task_runtime", "a")
    counts = [v for _, v in found]
    assert counts == sorted(counts) and found[-1] == (float("inf"), 7)
    for le, count in found:
        assert count == sum(1 for r in runtimes if r <= le), le
    assert value(s, "celery_task_runtime_count", name="a") == 7
    assert value(s, "celery_task_runtime_sum", name="a") == pytest.approx(sum(runtimes))


def test_the_queue_wait_histogram_is_cumulative_and_agrees_with_the_rollups(client):
    now = timezone.now()
    rollup("a", now - dt.timedelta(hours=6), waits=[0.001, 0.2, 45.0])
    rollup("a", now, waits=[0.2, 1800.0])
    s = scrape(client)
    waits = [0.001, 0.2, 45.0, 0.2, 1800.0]
    found = buckets(s, "celery_task_queue_wait_time", "a")
    assert found[-1] == (float("inf"), 5)
    for le, count in found:
        assert count == sum(1 for w in waits if w <= le), le
    assert value(s, "celery_task_queue_wait_time_sum", name="a") == pytest.approx(sum(waits))


def test_metrics_agree_with_the_task_rows_the_collector_wrote(client):
    start = time.time() - 7200
    events = []
    for i in range(20):
        events += factories.succeeded_task(name="demo.add", at=start + 300 * i, wait=0.05 * i)
    events += factories.retried_then_succeeded_task(at=start)
    events += factories.failed_task(at=start + 60)
    for i in range(5):
        events += factories.rejected_task(name="demo.add", at=start + 90 * i, requeue=i % 2 == 1)
    BatchWriter(max_chars=65536).write(events)
    s = scrape(client)
    rows = TaskRecord.objects.filter(name="demo.add")
    assert value(s, "celery_task_sent_total", name="demo.add") == (
        rows.exclude(sent_at=None).count()
    )
    assert value(s, "celery_task_succeeded_total", name="demo.add") == (
        rows.filter(state=states.SUCCESS).count()
    )
    rejected = rows.exclude(rejected_at=None).count()
    assert value(s, "celery_task_rejected_total", name="demo.add") == rejected == 5
    assert value(s, "celery_task_rejected_total", name="demo.fail") == 0
    waits = [(r.started_at - r.sent_at).total_seconds() for r in rows.exclude(sent_at=None)]
    assert value(s, "celery_task_queue_wait_time_count", name="demo.add") == len(waits) == 20
    assert value(s, "celery_task_queue_wait_time_sum", name="demo.add") == pytest.approx(sum(waits))
    for le, count in buckets(s, "celery_task_queue_wait_time", "demo.add"):
        assert count == sum(1 for w in waits if w <= le), le
    # No task-sent, or retried: no queue wait, as in celery-exporter.
    assert value(s, "celery_task_queue_wait_time_count", name="demo.flaky") == 0
    assert value(s, "celery_task_queue_wait_time_count", name="demo.fail") == 0


@override_settings(CONSOLE_METRICS_MAX_NAMES=2)
def test_task_names_past_the_limit_are_summed_as_other(client):
    now = timezone.now()
    for name, n in (("big", 30), ("mid", 20), ("small1", 2), ("small2", 3)):
        rollup(name, now, succeeded=n)
    s = scrape(client)
    names = {
        dict(labels)["name"] for (metric, labels) in s if metric == "celery_task_succeeded_total"
    }
    assert names == {"big", "mid", "other"}
    assert value(s, "celery_task_succeeded_total", name="other") == 5
    assert {dict(labels)["name"] for (metric, labels) in s if metric.startswith("celery_task")} == (
        names
    )


def test_worker_and_queue_gauges(client):
    now = timezone.now()
    for hostname, online, active, offline_at in (
        ("w1", True, 3, None),
        ("w2", False, 0, now - dt.timedelta(seconds=30)),
        ("gone", False, 0, now - dt.timedelta(days=1)),
    ):
        WorkerRecord.objects.create(
            hostname=hostname,
            is_online=online,
            active=active,
            offline_at=offline_at,
            queues=["celery"],
            concurrency=4,
            first_seen_at=now,
            updated_at=now,
        )
    QueueRecord.objects.create(name="celery", depth=12, consumers=1, first_seen_at=now)
    s = scrape(client)
    assert value(s, "celery_worker_up", hostname="w1") == 1
    assert value(s, "celery_worker_up", hostname="w2") == 0
    assert value(s, "celery_worker_up", hostname="gone") is None  # offline too long: dropped
    assert value(s, "celery_worker_tasks_active", hostname="w1") == 3
    assert value(s, "celery_queue_length", queue_name="celery") == 12
    assert value(s, "celery_active_consumer_count", queue_name="celery") == 1
    assert value(s, "celery_active_worker_count", queue_name="celery") == 1
    assert value(s, "celery_active_process_count", queue_name="celery") == 4


@override_settings(CONSOLE_METRICS_ALLOWED_ADDRESSES=["10.0.0.0/8"], CONSOLE_METRICS_TOKEN="s3cret")
def test_metrics_need_an_allowed_address_or_a_token(client, token):
    refused = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert refused.status_code == 401 and refused.json()["error"] == "not_authenticated"
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_metrics_refuse_other_methods(client):
    assert client.post("/metrics").status_code == 405


def test_readyz_is_ok_when_database_broker_and_channel_layer_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "channel_layer": "ok"},
    }


def test_readyz_names_an_unreachable_broker_with_503(client):
    # A port nothing listens on: a real failed connection, not a mock.
    with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"].startswith("unreachable")
    assert body["checks"]["database"] == "ok" and body["checks"]["channel_layer"] == "ok"
    assert body["error"] == "unavailable" and body["detail"] == "Not reachable: broker."


def test_readyz_names_an_unreachable_channel_layer(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "Not reachable: channel_layer."


def test_healthz_and_readyz_need_no_sign_in(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
