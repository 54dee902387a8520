"""Create the PostgreSQL database that DATABASE_URL names, if the server lacks it.

Runs before ``migrate`` on a fresh machine, so it cannot use Django's connection (that one
opens the database that does not exist yet): it connects with psycopg to the server's
maintenance database instead. Idempotent: a second run only reports that it exists.
"""

from collections.abc import Mapping
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from psycopg import sql

MAINTENANCE_DATABASES = ("postgres", "template1")
# Keys of Django's OPTIONS that Django itself consumes; the rest are libpq parameters.
DJANGO_ONLY_OPTIONS = frozenset({"isolation_level", "server_side_binding", "pool", "assume_role"})


def connect_maintenance(params: dict[str, Any]) -> psycopg.Connection:
    """A connection to the same server and role as ``params``, but the maintenance database."""
    last_error: psycopg.OperationalError | None = None
    for dbname in MAINTENANCE_DATABASES:
        try:
            return psycopg.connect(**{**params, "dbname": dbname}, autocommit=True)
        except psycopg.OperationalError as exc:
            # A server without a "postgres" database still has template1.
            last_error = exc
    assert last_error is not None
    raise last_error


def database_ensure(*, database: Mapping[str, Any]) -> bool:
    """Create ``database["NAME"]`` unless it exists; return True when it was created.

    Safe against a concurrent run: losing the CREATE race counts as "already there".
    """
    name = database["NAME"]
    params: dict[str, Any] = {
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "connect_timeout": 10,
    }
    for key, value in database.get("OPTIONS", {}).items():
        if key not in DJANGO_ONLY_OPTIONS:
            params[key] = value
    with connect_maintenance({k: v for k, v in params.items() if v is not None}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        try:
            # CREATE DATABASE cannot run in a transaction: the connection is in autocommit.
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False
        return True


class Command(BaseCommand):
    help = "Create the database named by DATABASE_URL if it does not exist (before migrate)."
    # System checks may touch the database that this command is here to create.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="alias in DATABASES")

    def handle(self, *args: Any, **options: Any) -> None:
        database = settings.DATABASES[options["database"]]
        where = f"{database.get('HOST') or 'local socket'}:{database.get('PORT') or 5432}"
        try:
            created = database_ensure(database=database)
        except psycopg.Error as exc:
            raise CommandError(f"cannot reach PostgreSQL at {where}: {exc}") from exc
        verb = "created" if created else "already exists"
        self.stdout.write(f"database {database['NAME']!r} on {where}: {verb}")
