"""An alert rule evaluated by the real collector on a real broker, delivered to a local
webhook receiver: fires once when crossed, not again within its cooldown, resolved after."""

import time

import pytest

from tasks_admin.models import AlertNotice, AlertRule
from tests.advisor.webhook import webhook  # noqa: F401 (a fixture)
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_queue_depth_alert_fires_once_then_resolves_when_workers_drain_the_queue(
    cluster,
    webhook,  # noqa: F811
    monkeypatch,
):
    # Celery lets CELERY_BROKER_URL win over broker=: the sender must use this cluster's.
    monkeypatch.setenv("CELERY_BROKER_URL", cluster.broker_url)
    AlertRule.objects.create(
        name="backlog",
        kind=AlertRule.Kind.QUEUE_DEPTH,
        target=cluster.queue,
        threshold=3,
        window_seconds=0,
        cooldown_seconds=3600,
        webhook_url=webhook.url,
    )
    cluster.collector(CONSOLE_ALERT_INTERVAL="1", CONSOLE_ADVISOR_INTERVAL="0")
    app = cluster.sender()
    for i in range(5):
        app.send_task("demo.add", (i, i), queue=cluster.queue)

    wait_for(lambda: webhook.statuses() == ["firing"], 30)
    time.sleep(4)  # four more evaluations, all still over the threshold
    assert webhook.statuses() == ["firing"]
    assert webhook.bodies[0]["subject"] == cluster.queue
    assert webhook.bodies[0]["value"] == 5

    cluster.worker()
    wait_for(lambda: webhook.statuses() == ["firing", "resolved"], 60)
    assert list(AlertNotice.objects.order_by("created_at").values_list("status", flat=True)) == [
        "firing",
        "resolved",
    ]
