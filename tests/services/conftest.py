import pytest

from tests.integration.conftest import BROKERS


@pytest.fixture(autouse=True)
def _services_publish_to_the_test_broker(settings, monkeypatch):
    """Actions publish to settings.CELERY_BROKER_URL; these tests read from the Redis the
    integration tests use (Celery lets the environment variable override an app's own)."""
    settings.CELERY_BROKER_URL = BROKERS["redis"]
    monkeypatch.setenv("CELERY_BROKER_URL", BROKERS["redis"])
