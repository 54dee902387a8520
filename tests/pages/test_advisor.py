"""The Advisor page: what is wrong now and what was fixed, and the run-now button."""

import pytest
from django.utils import timezone

from tasks_admin.models import AdvisorFinding, AdvisorRun, AuditEntry, QueueRecord
from tests.pages.markup import ESCAPED, HOSTILE, text_of

pytestmark = pytest.mark.django_db


def finding(subject: str, *, resolved: bool = False, **fields) -> AdvisorFinding:
    now = timezone.now()
    values = {
        "check_name": "accepts_pickle",
        "severity": "critical",
        "title": f"{subject} accepts pickle",
        "evidence": "inspect conf: accept_content = ['json', 'pickle'].",
        "why": "Unpickling runs arbitrary code.",
        "fix": "Set accept_content = ['json'].",
        "first_seen_at": now,
        "last_seen_at": now,
        "resolved_at": now if resolved else None,
        **fields,
    }
    return AdvisorFinding.objects.create(subject=subject, **values)


def test_the_page_shows_open_findings_with_evidence_why_and_fix_and_the_fixed_ones(client):
    finding("w1@box")
    finding("w0@box", resolved=True, title="w0@box accepted pickle")

    page = client.get("/advisor/").content.decode()

    assert "w1@box accepts pickle" in page
    assert "inspect conf: accept_content" in page and "arbitrary code" in page
    assert "Set accept_content" in page
    assert "w0@box accepted pickle" in text_of(page, "advisor-body").split("Fixed", 1)[1]


def test_broker_and_worker_strings_are_escaped(client):
    finding(HOSTILE, evidence=f"queue {HOSTILE}", title=HOSTILE)

    page = client.get("/advisor/").content.decode()

    assert HOSTILE not in page
    assert ESCAPED in page


def test_htmx_gets_the_partial(client):
    response = client.get("/advisor/", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body and 'id="advisor-body"' in body
    assert "No pitfall found" in body


def test_run_now_runs_the_checks_records_the_run_and_audits_it(client, settings):
    # A broker nobody listens on: that check fails, the others run against history.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    now = timezone.now()
    QueueRecord.objects.create(
        name="orphan", depth=4, consumers=0, sampled_at=now, first_seen_at=now
    )

    response = client.post("/advisor/run/", follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Queue orphan has 4 message(s) and no consumer" in page
    assert "could not run" in page and "eviction_policy" in page
    run = AdvisorRun.objects.get()
    assert (run.source, run.open_findings) == ("page", 1)
    assert AuditEntry.objects.filter(action="advisor.run", outcome="succeeded").exists()


def test_run_now_needs_post_and_a_csrf_token(client):
    assert client.get("/advisor/run/").status_code == 405
    client.handler.enforce_csrf_checks = True
    assert client.post("/advisor/run/").status_code == 403
    assert not AdvisorRun.objects.exists()
