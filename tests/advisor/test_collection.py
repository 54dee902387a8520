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
