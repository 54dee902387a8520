"""The worker-side hook's reading of process memory (its place in a real worker's
``inspect stats`` is tested in tests/integration/test_advisor_checks.py)."""

import os

from tasks_admin.poolmemory import process_memory


def test_a_live_process_reports_its_resident_and_peak_memory_from_proc():
    before = process_memory(os.getpid())
    ballast = b"x" * (64 * 1024 * 1024)  # written pages: resident
    after = process_memory(os.getpid())
    assert before is not None and after is not None
    assert after["pid"] == os.getpid()
    assert after["rss_kb"] - before["rss_kb"] >= 60 * 1024
    assert after["peak_kb"] >= after["rss_kb"]
    del ballast


def test_a_process_that_is_gone_reports_nothing():
    with open("/proc/sys/kernel/pid_max") as pid_max:
        assert process_memory(int(pid_max.read()) + 1) is None
