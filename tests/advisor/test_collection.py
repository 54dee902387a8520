"""What the collector keeps for the advisor: silent deaths and memory samples."""

import datetime as dt

import pytest
from django.utils import timezone

from tasks_admin.collector.pollers.workers import WorkerLivenessPoller, record_memory_samples
from tasks_admin.models import WorkerMemorySample, WorkerRecord, WorkerVanished

pytestmark = pytest.mark.django_db


def online_worker(hostname: str, heartbeat_at: dt.datetime) -> None:
    WorkerRecord.objects.create(
        hostname=hostname,
        is_online=True,
        first_seen_at=heartbeat_at,
        last_heartbeat_at=heartbeat_at,
        updated_at=heartbeat_at,
    )


def test_heartbeats_that_stop_while_the_collector_listens_are_noted_as_a_silent_death():
    poller = WorkerLivenessPoller(first_delay=0)
    poller.started_at = timezone.now() - dt.timedelta(minutes=5)
    online_worker("died@box", timezone.now() - dt.timedelta(minutes=1))
    # Its heartbeats stopped before this collector started: it may have said goodbye then.
    online_worker("before@box", timezone.now() - dt.timedelta(minutes=10))

    poller.poll()

    assert not WorkerRecord.objects.filter(is_online=True).exists()
    assert list(WorkerVanished.objects.values_list("hostname", flat=True)) == ["died@box"]


def test_memory_samples_come_from_inspect_stats_rusage_maxrss():
    now = timezone.now()
    record_memory_samples(
        {"a@box": {"rusage": {"maxrss": 81234}}, "b@box": {"rusage": {}}, "c@box": "?"}, at=now
    )

    assert list(WorkerMemorySample.objects.values_list("hostname", "maxrss_kb")) == [
        ("a@box", 81234)
    ]


def test_memory_samples_keep_the_largest_pool_process_peak_and_the_main_pid():
    # What a prefork worker with tasks_admin.poolmemory installed answers.
    reply = {
        "pid": 4242,
        "rusage": {"maxrss": 51000},
        "pool_memory": {
            "processes": [
                {"pid": 4243, "rss_kb": 90000, "peak_kb": 120000},
                {"pid": 4244, "rss_kb": 160000, "peak_kb": 170000},
            ]
        },
    }
    plain = {"pid": 5000, "rusage": {"maxrss": 60000}}

    record_memory_samples({"hooked@box": reply, "plain@box": plain}, at=timezone.now())

    rows = WorkerMemorySample.objects.order_by("hostname").values_list(
        "hostname", "maxrss_kb", "pool_peak_kb", "pid"
    )
    assert list(rows) == [("hooked@box", 51000, 170000, 4242), ("plain@box", 60000, None, 5000)]
