import pytest
import redis
from django.conf import settings

from tests.integration.conftest import BROKERS


@pytest.fixture
def actions_on_test_redis(settings, monkeypatch):
    """Actions publish to settings.CELERY_BROKER_URL: point it (and the environment
    variable, which Celery lets override an app's own broker) at the Redis the tests read."""
    settings.CELERY_BROKER_URL = BROKERS["redis"]
    monkeypatch.setenv("CELERY_BROKER_URL", BROKERS["redis"])


@pytest.fixture(autouse=True)
def _fresh_capped_totals():
    """Capped task totals are kept per process for a while: no test sees another's."""
    from tasks_admin.selectors.tasks import forget_capped_totals

    forget_capped_totals()
    yield
    forget_capped_totals()


def forget_throttles() -> None:
    """Delete this suite's API throttle buckets (its own prefix only: the database may be
    a running console's) and the throttle's per-process client and failure state."""
    from tasks_admin.api import throttle

    throttle.reset()
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=throttle.key("*", "*"), count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """API throttle buckets live in Redis and outlast a test (and a run): none sees
    another's counts."""
    forget_throttles()
    yield
    forget_throttles()
