"""A monitored project's Celery app for the advisor's tests, configured per worker.

Workers run ``celery -A tests.integration.advisor_app worker`` with ADVISOR_WORKER_CONF
(JSON settings laid over the JSON-only defaults), so each can show one pitfall, or none.
No Django here: it stands for a project the console watches, not the console.
"""

import json
import os
import signal
import time

from celery import Celery

from tasks_admin import poolmemory

app = Celery("advisor_it")
app.conf.update(
    broker_url=os.environ["CELERY_BROKER_URL"],
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_send_sent_event=True,
    task_track_started=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
app.conf.update(json.loads(os.environ.get("ADVISOR_WORKER_CONF", "{}")))
# The hook that lets the console see pool children's memory, where prefork tasks leak.
if os.environ.get("ADVISOR_POOL_MEMORY") == "1":
    poolmemory.install(app)

# What leak() keeps: module globals live as long as the pool process.
_LEAKED: list[bytes] = []


@app.task(name="advisor.sleep")
def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="advisor.leak")
def leak(megabytes: int) -> int:
    _LEAKED.append(b"x" * (megabytes * 1024 * 1024))
    return len(_LEAKED)


@app.task(name="advisor.kill_self")
def kill_self() -> None:
    # What the OOM killer does to a pool process.
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="advisor.parse", autoretry_for=(ValueError,), max_retries=2, default_retry_delay=0)
def parse(text: str) -> int:
    return int(text)  # ValueError on every attempt for "abc"


@app.task(name="advisor.parse_once")
def parse_once(text: str) -> int:
    return int(text)  # fails once, for good: nothing retried
