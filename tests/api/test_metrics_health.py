"""/metrics (celery-exporter's names, from the database) and /readyz."""

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tasks_admin import histogram
from tasks_admin.api import metrics
from tasks_admin.models import QueueRecord, TaskMinuteRollup, WorkerRecord

pytestmark = pytest.mark.django_db


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


def test_task_counters_are_the_sums_of_the_rollups_old_and_new(client):
    now = timezone.now()
    rollup("a", now - dt.timedelta(days=3), received=5, succeeded=4, failed=1)
    rollup("a", now, received=2, started=2, succeeded=1, retried=1, revoked=1)
    rollup("b", now - dt.timedelta(minutes=5), received=1, failed=1)
    s = scrape(client)
    assert value(s, "celery_task_received_total", name="a") == 7
    assert value(s, "celery_task_succeeded_total", name="a") == 5
    assert value(s, "celery_task_failed_total", name="a") == 1
    assert value(s, "celery_task_started_total", name="a") == 2
    assert value(s, "celery_task_retried_total", name="a") == 1
    assert value(s, "celery_task_revoked_total", name="a") == 1
    assert value(s, "celery_task_failed_total", name="b") == 1


def test_counters_keep_counting_across_scrapes_and_restarts(client):
    now = timezone.now()
    rollup("a", now - dt.timedelta(hours=5), succeeded=10)
    assert value(scrape(client), "celery_task_succeeded_total", name="a") == 10
    rollup("a", now, succeeded=3)
    assert value(scrape(client), "celery_task_succeeded_total", name="a") == 13
    metrics.CUMULATIVE.reset()  # a new web process: the database still has everything
    assert value(scrape(client), "celery_task_succeeded_total", name="a") == 13


def test_the_runtime_histogram_is_cumulative_and_agrees_with_the_rollups(client):
    runtimes = [0.002, 0.05, 0.05, 0.4, 3.0, 3.0, 120.0]
    rollup("a", timezone.now(), runtimes=runtimes, succeeded=len(runtimes))
    s = scrape(client)
    buckets = sorted(
        (float(labels[0][1]) if labels[0][0] == "le" else float(labels[1][1]), v)
        for (name, labels), v in s.items()
        if name == "celery_task_runtime_bucket" and dict(labels)["name"] == "a"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and buckets[-1] == (float("inf"), 7)
    for le, count in buckets:
        assert count == sum(1 for r in runtimes if r <= le), le
    assert value(s, "celery_task_runtime_count", name="a") == 7
    assert value(s, "celery_task_runtime_sum", name="a") == pytest.approx(sum(runtimes))


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
