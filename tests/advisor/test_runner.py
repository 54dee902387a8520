"""Recording findings: open, still seen, resolved, back again; a failed check keeps its own."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from tasks_admin.advisor.base import Context, Finding
from tasks_admin.advisor.runner import record, run_checks
from tasks_admin.models import AdvisorFinding, AdvisorRun, QueueRecord

pytestmark = pytest.mark.django_db


def pickle_on(*hosts: str):
    def accepts_pickle(ctx: Context) -> list[Finding]:
        return [
            Finding("accepts_pickle", host, "critical", f"{host} accepts pickle", "e", "w", "f")
            for host in hosts
        ]

    return accepts_pickle


def run(at: dt.datetime, *checks) -> AdvisorRun:
    ctx = Context(now=at, broker_url="memory://")
    return record(run_checks(ctx, list(checks)), ctx=ctx, source="collector")


def test_a_finding_keeps_its_first_seen_time_and_resolves_when_no_longer_seen():
    start = timezone.now()
    run(start, pickle_on("w1", "w2"))
    run(start + dt.timedelta(minutes=1), pickle_on("w1"))

    w1 = AdvisorFinding.objects.get(subject="w1")
    w2 = AdvisorFinding.objects.get(subject="w2")
    assert (w1.first_seen_at, w1.last_seen_at, w1.resolved_at) == (
        start,
        start + dt.timedelta(minutes=1),
        None,
    )
    assert w2.resolved_at == start + dt.timedelta(minutes=1)


def test_a_finding_that_comes_back_is_a_new_row_next_to_the_fixed_one():
    start = timezone.now()
    for minutes, hosts in [(0, ["w1"]), (1, []), (2, ["w1"])]:
        run(start + dt.timedelta(minutes=minutes), pickle_on(*hosts))

    rows = list(
        AdvisorFinding.objects.filter(subject="w1")
        .order_by("first_seen_at")
        .values_list("first_seen_at", "resolved_at")
    )
    assert rows == [
        (start, start + dt.timedelta(minutes=1)),
        (start + dt.timedelta(minutes=2), None),
    ]


def test_a_check_that_cannot_run_keeps_its_findings_open_and_says_why():
    start = timezone.now()
    ctx = Context(now=start, broker_url="memory://")
    record(run_checks(ctx, [pickle_on("w1")]), ctx=ctx, source="collector")

    def accepts_pickle(ctx: Context) -> list[Finding]:
        raise ConnectionError("broker away")

    later = Context(now=start + dt.timedelta(minutes=1), broker_url="memory://")
    result = record(run_checks(later, [accepts_pickle]), ctx=later, source="collector")

    assert AdvisorFinding.objects.get(subject="w1").resolved_at is None
    assert result.errors == {"accepts_pickle": "ConnectionError: broker away"}
    assert result.open_findings == 1


def test_manage_py_advise_prints_findings_and_fails_on_request(settings):
    settings.CELERY_BROKER_URL = "memory://"
    now = timezone.now()
    QueueRecord.objects.create(
        name="orphan", depth=2, consumers=0, sampled_at=now, first_seen_at=now
    )
    out = io.StringIO()

    with pytest.raises(SystemExit) as exit_info:
        call_command("advise", "--fail-on", "critical", stdout=out)

    assert exit_info.value.code == 1
    text = out.getvalue()
    assert "[critical] Queue orphan has 2 message(s) and no consumer" in text
    assert "fix:" in text and "-Q orphan" in text
    assert AdvisorRun.objects.get().source == "command"
