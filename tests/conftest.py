import pytest

from tests.integration.conftest import BROKERS


@pytest.fixture
def actions_on_test_redis(settings, monkeypatch):
    """Actions publish to settings.CELERY_BROKER_URL: point it (and the environment
    variable, which Celery lets override an app's own broker) at the Redis the tests read."""
    settings.CELERY_BROKER_URL = BROKERS["redis"]
    monkeypatch.setenv("CELERY_BROKER_URL", BROKERS["redis"])
