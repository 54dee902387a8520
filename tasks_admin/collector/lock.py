"""One active collector per broker: a PostgreSQL advisory lock held on its own connection.

The lock lives as long as the session that took it, so it sits on a dedicated connection
(not Django's, which error handling may close and reopen). A standby blocks in
``acquire`` until the active collector's session ends, by exit, crash or SIGKILL.
"""

import contextlib
import hashlib
import logging
import threading
from typing import Any

import psycopg
from django.conf import settings

log = logging.getLogger(__name__)


def lock_key(broker_identity: str) -> int:
    digest = hashlib.blake2b(f"celery-console:{broker_identity}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _connect() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
        connect_timeout=5,
        application_name="celery-console collector lock",
    )


class CollectorLock:
    def __init__(self, broker_identity: str) -> None:
        self.key = lock_key(broker_identity)
        self._conn: psycopg.Connection[Any] | None = None

    def try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = _connect()
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
            return bool(row and row[0])
        except psycopg.OperationalError as exc:
            log.warning("cannot reach the database for the collector lock: %s", exc)
            self.release()
            return False

    def acquire(self, stop: threading.Event, poll: float = 2.0) -> bool:
        """Wait until this process holds the lock (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            if self.try_acquire():
                return True
            if not announced:
                log.info("another collector is active for this broker; standing by")
                announced = True
            stop.wait(poll)
        return False

    def still_held(self) -> bool:
        """Check the lock's session; after a lost connection, try to take the lock again."""
        if self._conn is not None and not self._conn.closed:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                log.warning("lost the collector lock's database session")
                self.release()
        return self.try_acquire()

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
