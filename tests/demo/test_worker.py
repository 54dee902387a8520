"""The demo tasks on a real worker: messages through Redis, results in django-celery-results."""

import json
import random
import subprocess
import sys
import uuid

import pytest
import redis
from django.conf import settings
from django_celery_results.models import TaskResult

from demo import tasks, traffic
from tests.demo.helpers import ROOT


@pytest.fixture
def worker_queue(subprocess_env):
    """A prefork worker consuming a queue of its own, so no other worker takes its tasks."""
    queue = f"demo-test-{uuid.uuid4().hex[:10]}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
            "-n",
            f"{queue}@%h",
        ],
        cwd=ROOT,
        env=subprocess_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield queue
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(queue, f"_kombu.binding.{queue}")


@pytest.mark.integration
def test_demo_tasks_retry_give_up_and_take_big_arguments_on_a_real_worker(worker_queue):
    batch = traffic.order_batch(random.Random(3))
    retrying = tasks.sync_inventory.apply_async(
        ("FRA-1",), {"fail_times": 2, "backoff": 0.05}, queue=worker_queue
    )
    giving_up = tasks.call_partner_api.apply_async(
        ("https://partner.example.com",), {"backoff": 0.05}, queue=worker_queue
    )
    big = tasks.import_orders.apply_async((batch,), queue=worker_queue)

    assert retrying.get(timeout=30)["attempts"] == 3
    with pytest.raises(TimeoutError, match=r"\(attempt 3\)"):
        giving_up.get(timeout=30)
    summary = big.get(timeout=30)

    # The whole payload crossed the broker as JSON, uncut (events only carry a 1024-char repr).
    assert summary["payload_chars"] == len(json.dumps(batch)) > 1024
    assert summary["lines"] == sum(len(order["lines"]) for order in batch["orders"])
    rows = dict(
        TaskResult.objects.filter(task_id__in=[retrying.id, giving_up.id, big.id]).values_list(
            "task_id", "status"
        )
    )
    assert rows == {retrying.id: "SUCCESS", giving_up.id: "FAILURE", big.id: "SUCCESS"}
