"""Schemathesis against the schema the app serves: no 5xx, and every response (errors
included) matches the schema. In process (WSGI), against the test database, with data."""

import datetime as dt
import os

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tasks_admin import histogram
from tasks_admin.models import (
    AuditEntry,
    BulkRun,
    QueueRecord,
    TaskMinuteRollup,
    WorkerRecord,
)
from tests import factories
from tests.api.helpers import task

pytestmark = pytest.mark.django_db


@pytest.fixture
def wsgi_app():
    """Django's WSGI app without closing the test's database connection after each request
    (what Django's own test client does too)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(token, wsgi_app, settings):
    # Schemathesis also sends requests without credentials (expecting 401); the anonymous
    # rate would turn those into 429s. Throttling has its own tests.
    settings.CONSOLE_API_THROTTLE_ANON = "100000/minute"
    now = timezone.now()
    task("t-1", name="demo.add", state="SUCCESS", worker="celery@w1", queue="celery")
    task("t-2", name="demo.fail", state="FAILURE", ago=dt.timedelta(hours=2))
    WorkerRecord.objects.create(hostname="celery@w1", first_seen_at=now, updated_at=now)
    QueueRecord.objects.create(name="celery", depth=3, first_seen_at=now)
    TaskMinuteRollup.objects.create(
        name="demo.add",
        minute=now.replace(second=0, microsecond=0),
        succeeded=2,
        runtime_hist=histogram.from_runtimes([0.1, 0.2]),
    )
    AuditEntry.objects.create(username="u", source="page", action="task.retry", outcome="failed")
    factories.dead_letter("t-2", name="demo.fail")
    BulkRun.objects.create(username="u", action="retry", total=2, done=1)
    app = wsgi_app
    # The token is a viewer's: every action (POST) is refused with a 403 before it could
    # reach a broker, so no message is published and nothing waits for a worker.
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", app, headers=headers)
    schema.config.headers = headers  # every generated request authenticates
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(
    max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_every_endpoint_answers_within_its_schema_and_never_with_a_5xx(case, token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        # A cursor is only valid as `next_cursor` gave it, and `from`/`to` take ISO or
        # relative times: strings a schema cannot pin down, so a schema-valid value may
        # rightly get a 400 (which must still match the schema's error shape).
        excluded_checks=[positive_data_acceptance],
    )
