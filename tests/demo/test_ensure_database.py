import os
import uuid

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from tasks_admin.management.commands.ensure_database import connect_maintenance, database_ensure
from tests.demo.helpers import database_url, manage


def _server_params() -> dict:
    default = settings.DATABASES["default"]
    params = {"host": default["HOST"], "port": default["PORT"], "user": default["USER"]}
    if default["PASSWORD"]:
        params["password"] = default["PASSWORD"]
    return {k: v for k, v in params.items() if v}


def _exists(name: str) -> bool:
    with connect_maintenance(_server_params()) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        return row is not None


@pytest.fixture
def throwaway_name():
    name = f"zz_ensure_{uuid.uuid4().hex[:12]}"
    yield name
    with connect_maintenance(_server_params()) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_ensure_database_command_creates_a_missing_database(throwaway_name):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.test_settings",
        "DATABASE_URL": database_url(settings.DATABASES["default"], name=throwaway_name),
    }
    assert not _exists(throwaway_name)

    result = manage("ensure_database", env=env)

    assert result.returncode == 0, result.stderr
    assert f"database {throwaway_name!r}" in result.stdout
    assert "created" in result.stdout
    assert _exists(throwaway_name)
    # The new database accepts connections (it is a real, empty database).
    with psycopg.connect(**_server_params(), dbname=throwaway_name) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (throwaway_name,)


def test_ensure_database_leaves_an_existing_database_alone(throwaway_name):
    database = {**settings.DATABASES["default"], "NAME": throwaway_name}

    first = database_ensure(database=database)
    second = database_ensure(database=database)

    assert (first, second) == (True, False)
    assert _exists(throwaway_name)


def test_ensure_database_command_fails_plainly_when_the_server_is_unreachable():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "console.test_settings",
        # Port 1 on loopback: nothing listens there, the connection is refused at once.
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/console",
    }

    result = manage("ensure_database", env=env)

    assert result.returncode == 1
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in result.stderr
