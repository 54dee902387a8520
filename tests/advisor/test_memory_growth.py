"""The memory-growth check on stored samples; tests/integration/test_advisor_checks.py runs
it on real leaking workers (prefork with tasks_admin.poolmemory, and threads)."""

import datetime as dt

import pytest
from django.utils import timezone

from tasks_admin.advisor.base import Context
from tasks_admin.advisor.memory import memory_growth
from tasks_admin.models import WorkerMemorySample, WorkerRecord

pytestmark = pytest.mark.django_db


def _worker(hostname: str, conf: dict, *, pool: str = "threads") -> None:
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
        pool=pool,
    )


def _samples(
    hostname: str, mb: list[int], *, pool_mb: list[int] | None = None, pids: list[int] | None = None
) -> None:
    now = timezone.now()
    for i, value in enumerate(mb):
        WorkerMemorySample.objects.create(
            hostname=hostname,
            sampled_at=now - dt.timedelta(minutes=len(mb) - i),
            maxrss_kb=value * 1024,
            pool_peak_kb=pool_mb[i] * 1024 if pool_mb else None,
            pid=pids[i] if pids else 100,
        )


def _context() -> Context:
    return Context(now=timezone.now(), broker_url="memory://", memory_growth_mb=30)


def test_a_worker_without_a_per_child_limit_whose_memory_keeps_rising_is_reported():
    _worker("celery@leaky", {"accept_content": ["json"]})
    _samples("celery@leaky", [100, 120, 150, 190])
    (finding,) = memory_growth(_context())
    assert (finding.check, finding.subject) == ("memory_growth", "celery@leaky")
    assert "100 MB" in finding.evidence and "190 MB" in finding.evidence
    assert "main process, where the threads pool runs tasks (inspect stats" in finding.evidence


def test_a_threads_worker_with_the_hook_is_judged_on_its_own_peak_not_rusage():
    # rusage.maxrss starts at the launcher's peak (here 220 MB) and hides the growth below
    # it; the hook's VmHWM is the process's own.
    _worker("celery@threads", {}, pool="threads")
    _samples("celery@threads", [220, 220, 220, 220], pool_mb=[50, 90, 130, 170])
    (finding,) = memory_growth(_context())
    assert "main process, where the threads pool runs tasks (VmHWM" in finding.evidence
    assert "50 MB" in finding.evidence and "170 MB" in finding.evidence


def test_a_limit_per_child_or_a_flat_or_single_jump_trend_is_not_reported():
    _worker("celery@limited", {"worker_max_tasks_per_child": 100})
    _samples("celery@limited", [100, 150, 200])
    _worker("celery@flat", {})
    _samples("celery@flat", [100, 101, 102, 103])
    _worker("celery@once", {})
    _samples("celery@once", [100, 100, 180])  # one rise: a big task, not a leak
    assert memory_growth(_context()) == []


def test_a_prefork_leak_is_judged_on_its_pool_processes_not_the_flat_main_process():
    # The main process of a prefork worker stays flat while the child running tasks grows.
    _worker("celery@prefork", {}, pool="prefork")
    _samples("celery@prefork", [50, 50, 50, 50], pool_mb=[45, 86, 127, 168])
    (finding,) = memory_growth(_context())
    assert finding.subject == "celery@prefork"
    assert "largest pool process (VmHWM, from tasks_admin.poolmemory)" in finding.evidence
    assert "45 MB" in finding.evidence and "168 MB" in finding.evidence


def test_a_prefork_worker_without_pool_figures_is_not_judged_on_its_main_process():
    # Without tasks_admin.poolmemory the main process is all there is; it does not run
    # tasks, so even a rising figure there says nothing about them (and a flat one
    # must not count as "no leak" either): the check stays out of it.
    _worker("celery@blind", {}, pool="prefork")
    _samples("celery@blind", [50, 90, 130, 170])
    assert memory_growth(_context()) == []


def test_a_restarted_worker_starts_a_new_trend():
    # A deploy restarted it with a bigger baseline (pid 2), flat since: read across both
    # runs, 100 -> 120 -> 150 would look like two rises of a leak.
    _worker("celery@restarted", {})
    _samples("celery@restarted", [100, 120, 150, 150, 150], pids=[1, 1, 2, 2, 2])
    assert memory_growth(_context()) == []
