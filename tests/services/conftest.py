import pytest


@pytest.fixture(autouse=True)
def _services_publish_to_the_test_broker(actions_on_test_redis):
    """Applies tests/conftest.py's actions_on_test_redis to every test here."""
