import pytest

from tests.advisor.webhook import webhook  # noqa: F401 (a fixture)


@pytest.fixture
def client(client, django_user_model):
    """Signed in as a plain user: every page needs one (test_auth.py asks for anonymity)."""
    client.force_login(django_user_model.objects.create_user("viewer", password="not-used-1"))
    return client
