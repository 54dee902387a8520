"""The memory-growth check on stored samples (the real-worker run is in
tests/integration/test_advisor_checks.py, which does not depend on its timing for this)."""

import datetime as dt

import pytest
from django.utils import timezone

from tasks_admin.advisor.base import Context
from tasks_admin.advisor.memory import memory_growth
from tasks_admin.models import WorkerMemorySample, WorkerRecord

pytestmark = pytest.mark.django_db


def _worker(hostname: str, conf: dict) -> None:
    now = timezone.now()
    WorkerRecord.objects.create(
        hostname=hostname,
        is_online=True,
        first_seen_at=now - dt.timedelta(minutes=10),
        online_at=now - dt.timedelta(minutes=10),
        last_heartbeat_at=now,
        updated_at=now,
        inspected_at=now,
        conf=conf,
    )


def _samples(hostname: str, mb: list[int]) -> None:
    now = timezone.now()
    for i, value in enumerate(mb):
        WorkerMemorySample.objects.create(
            hostname=hostname,
            sampled_at=now - dt.timedelta(minutes=len(mb) - i),
            maxrss_kb=value * 1024,
        )


def _context() -> Context:
    return Context(now=timezone.now(), broker_url="memory://", memory_growth_mb=30)


def test_a_worker_without_a_per_child_limit_whose_memory_keeps_rising_is_reported():
    _worker("celery@leaky", {"accept_content": ["json"]})
    _samples("celery@leaky", [100, 120, 150, 190])
    (finding,) = memory_growth(_context())
    assert (finding.check, finding.subject) == ("memory_growth", "celery@leaky")
    assert "100 MB" in finding.evidence and "190 MB" in finding.evidence


def test_a_limit_per_child_or_a_flat_or_single_jump_trend_is_not_reported():
    _worker("celery@limited", {"worker_max_tasks_per_child": 100})
    _samples("celery@limited", [100, 150, 200])
    _worker("celery@flat", {})
    _samples("celery@flat", [100, 101, 102, 103])
    _worker("celery@once", {})
    _samples("celery@once", [100, 100, 180])  # one rise: a big task, not a leak
    assert memory_growth(_context()) == []
