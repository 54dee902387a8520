import os

import pytest
from django.db import connection

from tests.demo.helpers import database_url


@pytest.fixture
def subprocess_env(transactional_db) -> dict[str, str]:
    """The environment for a manage.py or celery child that shares the test database.

    Rows the child commits are visible to the test and flushed after it (transactional_db).
    """
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.test_settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
