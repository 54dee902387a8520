import pytest

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
