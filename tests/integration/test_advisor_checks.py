"""Every advisor check against real brokers and real workers: it trips on a cluster set up
to show the pitfall, and stays quiet on one set up right.

Each cluster gets a Redis server of its own (the shared one's configuration is never
touched), the real collector (whose AdvisorPoller runs the checks every 2 s) and workers
of tests/integration/advisor_app.py, each configured through ADVISOR_WORKER_CONF and
consuming its own queue so every task lands where the test means it to.
"""

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import states
from django.db.models import Max, Min
from django.utils import timezone

from tasks_admin.advisor import broker
from tasks_admin.advisor.base import Context
from tasks_admin.models import (
    AdvisorFinding,
    AdvisorRun,
    QueueRecord,
    TaskRecord,
    WorkerMemorySample,
    WorkerRecord,
)
from tests.integration.conftest import BROKERS, Cluster, Proc, wait_for

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pings(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start Redis servers of our own on free ports; the URL of db 0 of each."""
    procs: list[subprocess.Popen] = []

    def start(*, policy: str = "noeviction", maxmemory: str = "256mb") -> str:
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    "redis-server",
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--maxmemory", maxmemory,
                    "--maxmemory-policy", policy,
                    "--dir", str(tmp_path),
                ],
                stdout=(tmp_path / f"redis-{port}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: _pings(url), timeout=10)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def open_findings() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for check, subject in AdvisorFinding.objects.filter(resolved_at=None).values_list(
        "check_name", "subject"
    ):
        found.setdefault(check, set()).add(subject)
    return found


def advisor_worker(
    cluster: Cluster,
    name: str,
    conf: dict,
    *,
    pool: str = "prefork",
    concurrency: int = 1,
    events: bool = True,
    pool_memory: bool = False,
) -> tuple[Proc, str, str]:
    """A worker consuming a queue of its own: (process, hostname, queue).

    ``pool_memory`` installs tasks_admin.poolmemory in its app, so its inspect stats
    report the memory of the pool processes that run its tasks.
    """
    hostname = f"{name}-{cluster.suffix}@{socket.gethostname()}"
    queue = f"{name}-{cluster.suffix}"
    args = [
        sys.executable, "-m", "celery", "-A", "tests.integration.advisor_app", "worker",
        "-Q", queue, "-P", pool, "-c", str(concurrency), "-n", hostname,
        "--without-mingle", "--without-gossip", "--loglevel=INFO",
    ]  # fmt: skip
    if events:
        args.append("-E")
    env = {"ADVISOR_WORKER_CONF": json.dumps(conf), "ADVISOR_POOL_MEMORY": str(int(pool_memory))}
    if "pickle" in conf.get("accept_content", ()):
        # Celery refuses pickle as root (as tests here run) unless told to go ahead.
        env["C_FORCE_ROOT"] = "1"
    proc = cluster.spawn(name, args, **env)
    return proc, hostname, queue


def start_collector(cluster: Cluster, *, queues: list[str]) -> Proc:
    return cluster.collector(
        CONSOLE_ADVISOR_INTERVAL="2",
        CONSOLE_ADVISOR_LONG_TASK_SECONDS="2",
        CONSOLE_ADVISOR_MEMORY_GROWTH_MB="30",
        CONSOLE_INSPECT_INTERVAL="2",
        CONSOLE_ALERT_INTERVAL="0",
        CONSOLE_QUEUES=",".join(queues),
        # On a Redis broker's server, another database: only what the test sets up may share
        # it. (The console's own Redis, for live updates, stays a Redis URL on RabbitMQ.)
        **(
            {"REDIS_URL": cluster.broker_url.rsplit("/", 1)[0] + "/1"}
            if cluster.broker_url.startswith("redis")
            else {}
        ),
    )


def send_mixed_runtimes(app, queue: str) -> None:
    """Quick tasks and a tenth of slow ones (3 s): the spread prefetching hurts."""
    for _ in range(14):
        app.send_task("advisor.sleep", (0.05,), queue=queue)
    for _ in range(3):
        app.send_task("advisor.sleep", (3,), queue=queue)


def pool_growth_kb(hostname: str) -> int:
    """How far the pool processes' peak (tasks_admin.poolmemory) of a worker ranged."""
    peaks = WorkerMemorySample.objects.filter(hostname=hostname).aggregate(
        low=Min("pool_peak_kb"), high=Max("pool_peak_kb")
    )
    return (peaks["high"] or 0) - (peaks["low"] or 0)


def succeeded(results_url: str, task_id: str) -> bool:
    """Whether the worker stored a SUCCESS result for ``task_id`` (read straight from Redis:
    an AsyncResult would subscribe to the server the test stops at its end)."""
    meta = redis.Redis.from_url(results_url).get(f"celery-task-meta-{task_id}")
    return bool(meta) and json.loads(meta)["status"] == states.SUCCESS


def leak_step_by_step(app, results_url: str, workers: dict[str, str], *, times: int = 3) -> None:
    """Send each worker (hostname -> queue) a 40 MB leak, ``times`` over; the next only
    once the last one has finished (its result is in) and an inspect sample asked for
    after that is stored.

    So every leak lies between two samples of its own and shows as its own rise, however
    slowly a loaded machine runs tasks or the collector polls. (Sent all at once they can
    land between the same two samples: one rise, which the check rightly reads as one big
    task, not a leak.) Results, not task events, say when a leak finished: a threads
    worker can drop events (pool threads append to the buffer the main thread flushes).
    """
    for _ in range(times):
        sent = {h: app.send_task("advisor.leak", (40,), queue=q).id for h, q in workers.items()}
        wait_for(lambda sent=sent: all(succeeded(results_url, t) for t in sent.values()), 90, 0.5)
        done_at = timezone.now()
        wait_for(
            lambda done_at=done_at: all(
                WorkerMemorySample.objects.filter(hostname=h, sampled_at__gt=done_at).exists()
                for h in workers
            ),
            60,
            interval=0.5,
        )


def dump(cluster: Cluster) -> None:
    print("open findings:", open_findings())
    for row in TaskRecord.objects.exclude(state=states.SUCCESS).values_list(
        "name", "state", "retries", "exception_type", "exception", "failed_at", "worker"
    ):
        print("task:", row)
    from tasks_admin.models import TaskEvent

    for row in TaskEvent.objects.filter(type__in=["task-retried", "task-failed"]).values_list(
        "task_id", "type", "fields"
    ):
        print("event:", row)
    for row in WorkerMemorySample.objects.order_by("hostname", "sampled_at").values_list(
        "hostname", "sampled_at", "pid", "maxrss_kb", "pool_peak_kb"
    ):
        print("memory:", row)
    for proc in cluster.procs:
        print(f"--- {proc.log_path}\n{proc.log()[-4000:]}")


def redis_cluster_of_own(tmp_path, monkeypatch, url: str) -> Cluster:
    cluster = Cluster("redis", tmp_path)
    cluster.broker_url = url
    # Celery lets CELERY_BROKER_URL win over broker=: the test's sender must see ours too.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    return cluster


def test_every_check_trips_on_a_cluster_configured_to_show_its_pitfall(
    tmp_path, transactional_db, own_redis, monkeypatch
):
    cluster = redis_cluster_of_own(tmp_path, monkeypatch, own_redis(policy="allkeys-lru"))
    orphan = f"orphan-{cluster.suffix}"
    try:
        # Pickle, no time limits, prefetch x4, acks_late with a 3 s visibility timeout,
        # results in the broker's own database. Prefork: its task events come from the main
        # process; the threads pool's can be lost (pool threads append to the event buffer
        # while the main thread flushes it; celery/celery#10434), and the checks here read
        # them.
        _, careless, careless_q = advisor_worker(
            cluster,
            "careless",
            {
                "accept_content": ["json", "pickle"],
                "worker_prefetch_multiplier": 4,
                "task_acks_late": True,
                "broker_transport_options": {"visibility_timeout": 3},
                "result_backend": cluster.broker_url,
            },
            concurrency=2,
        )
        # A hard limit the threads pool cannot enforce: its long task stays STARTED.
        _, limited, limited_q = advisor_worker(
            cluster,
            "limited",
            {"task_time_limit": 1, "task_soft_time_limit": 1, "worker_max_tasks_per_child": 50},
            pool="threads",
        )
        # Its pool process is killed like the OOM killer does, then the worker itself.
        doomed_proc, doomed, doomed_q = advisor_worker(
            cluster,
            "doomed",
            {
                "task_time_limit": 60,
                "worker_prefetch_multiplier": 1,
                "worker_max_tasks_per_child": 50,
            },
        )
        # No -E, and enable_events cannot reach it: heartbeats only.
        _, silent, silent_q = advisor_worker(
            cluster, "silent", {"worker_enable_remote_control": False}, events=False
        )
        # Leakers with no per-child limit and nothing but leaks on their queues. Prefork,
        # where real leaks happen: in the pool child, which only the poolmemory hook lets
        # the console see. Threads: in the main process, with the hook too: without it
        # the figure is rusage.maxrss, which on Linux starts at the launcher's peak (here
        # pytest's: 106 MB alone, 219 MB late in the full suite), hiding 160 MB of leaks.
        # Results in another database of the server (not the broker's): the test waits
        # on them.
        results_url = cluster.broker_url.rsplit("/", 1)[0] + "/2"
        right = {
            "task_time_limit": 30,
            "worker_prefetch_multiplier": 1,
            "result_backend": results_url,
        }
        _, leaky, leaky_q = advisor_worker(cluster, "leaky", right, pool_memory=True)
        _, leaky_threads, leaky_threads_q = advisor_worker(
            cluster, "leaky-threads", right, pool="threads", pool_memory=True
        )
        # Leaks the same way, but its child is replaced past 150 MB: nothing to report.
        _, capped, capped_q = advisor_worker(
            cluster,
            "capped",
            {**right, "worker_max_memory_per_child": 150_000},
            pool_memory=True,
        )
        start_collector(
            cluster,
            queues=[careless_q, limited_q, doomed_q, leaky_q, leaky_threads_q, capped_q, orphan],
        )
        hosts = [careless, limited, doomed, leaky, leaky_threads, capped, silent]
        wait_for(
            lambda: WorkerRecord.objects.filter(hostname__in=hosts, is_online=True).count() == 7,
            60,
        )
        wait_for(
            lambda: (
                WorkerRecord.objects.filter(hostname__in=hosts[:6])
                .exclude(inspected_at=None)
                .count()
                == 6
            ),
            30,
        )
        app = cluster.sender()
        send_mixed_runtimes(app, careless_q)
        app.send_task("advisor.sleep", (0.1,), queue=careless_q, countdown=8)
        app.send_task("advisor.parse", ("abc",), queue=careless_q)
        app.send_task("advisor.renamed_task", queue=careless_q)
        app.send_task("advisor.sleep", (300,), queue=limited_q)
        app.send_task("advisor.kill_self", queue=doomed_q)
        for _ in range(4):
            app.send_task("advisor.sleep", (0.01,), queue=silent_q)
        app.send_task("advisor.sleep", (0.1,), queue=orphan)
        leak_step_by_step(
            app, results_url, {leaky: leaky_q, leaky_threads: leaky_threads_q, capped: capped_q}
        )
        wait_for(
            lambda: TaskRecord.objects.filter(
                name="advisor.kill_self", state=states.FAILURE
            ).exists(),
            60,
        )
        wait_for(lambda: QueueRecord.objects.filter(name=orphan, depth=1).exists(), 30)
        doomed_proc.stop(signal.SIGKILL)  # no worker-offline: heartbeats just stop
        expected = {
            "redis_eviction_policy",
            "redis_shared_db",
            "accepts_pickle",
            "no_time_limit",
            "stuck_tasks",
            "memory_growth",
            "worker_vanished",
            "worker_lost",
            "prefetch_uneven",
            "visibility_timeout",
            "queue_without_consumer",
            "not_registered",
            "hopeless_retries",
            "no_task_events",
        }
        # Every leak has been sampled by now: the next advisor runs (every 2 s) see the rest.
        wait_for(lambda: expected <= set(open_findings()), 120, interval=1)
        found = open_findings()
        assert found["accepts_pickle"] == {careless}
        assert found["no_time_limit"] == {careless}
        assert found["stuck_tasks"] == {limited}
        # Pool-child figure (prefork + hook) and main-process figure (threads); the capped
        # worker leaked as much and is not named.
        assert found["memory_growth"] == {leaky, leaky_threads}
        # Seen growing by a leak at least (its child is replaced once past 146 MB, which
        # may take two leaks), and not named.
        assert pool_growth_kb(capped) >= 30 * 1024
        growth = AdvisorFinding.objects.get(
            check_name="memory_growth", subject=leaky, resolved_at=None
        )
        assert "largest pool process (VmHWM" in growth.evidence
        growth = AdvisorFinding.objects.get(
            check_name="memory_growth", subject=leaky_threads, resolved_at=None
        )
        assert "main process, where the threads pool runs tasks (VmHWM" in growth.evidence
        assert found["visibility_timeout"] == {careless}
        assert found["worker_vanished"] == {doomed}
        assert found["no_task_events"] == {silent}
        assert found["worker_lost"] == {"advisor.kill_self"}
        assert found["not_registered"] == {"advisor.renamed_task"}
        assert found["hopeless_retries"] == {"advisor.parse: ValueError"}
        assert found["queue_without_consumer"] == {orphan}
        assert found["prefetch_uneven"] == {careless_q}
        eviction = AdvisorFinding.objects.get(check_name="redis_eviction_policy", resolved_at=None)
        assert "allkeys-lru" in eviction.evidence and eviction.severity == "critical"
        shared = AdvisorFinding.objects.get(check_name="redis_shared_db", resolved_at=None)
        assert careless in shared.evidence
        assert AdvisorRun.objects.filter(source="collector").exists()
    except AssertionError:
        dump(cluster)
        raise
    finally:
        cluster.stop_all()


def test_the_checks_stay_quiet_on_a_cluster_configured_right(
    tmp_path, transactional_db, own_redis, monkeypatch
):
    cluster = redis_cluster_of_own(tmp_path, monkeypatch, own_redis(policy="noeviction"))
    try:
        careful_proc, careful, careful_q = advisor_worker(
            cluster,
            "careful",
            {
                "task_time_limit": 30,
                "task_soft_time_limit": 25,
                "worker_prefetch_multiplier": 1,
                "worker_max_tasks_per_child": 100,
                "task_acks_late": True,
            },
            concurrency=2,
            # Its leaking child is seen, and not reported: it will be replaced.
            pool_memory=True,
        )
        start_collector(cluster, queues=[careful_q])
        wait_for(
            lambda: (
                WorkerRecord.objects.filter(hostname=careful, is_online=True)
                .exclude(inspected_at=None)
                .exists()
            ),
            60,
        )
        app = cluster.sender()
        send_mixed_runtimes(app, careful_q)
        app.send_task("advisor.sleep", (0.1,), queue=careful_q, countdown=8)
        app.send_task("advisor.parse_once", ("abc",), queue=careful_q)
        for _ in range(3):
            app.send_task("advisor.leak", (40,), queue=careful_q)
            time.sleep(2.5)
        wait_for(
            lambda: (
                TaskRecord.objects.filter(
                    worker=careful, state__in=[states.SUCCESS, states.FAILURE]
                ).count()
                == 22
            ),
            60,
        )
        # The hook saw its children grow.
        wait_for(lambda: pool_growth_kb(careful) >= 30 * 1024, 30)
        # A warm shutdown says goodbye (worker-offline): not a vanished worker.
        careful_proc.stop(signal.SIGTERM)
        wait_for(lambda: WorkerRecord.objects.filter(hostname=careful, is_online=False).exists())
        runs = AdvisorRun.objects.count()
        wait_for(lambda: AdvisorRun.objects.count() >= runs + 4, 30)
        # The worker is offline now, so its own checks pass trivially: the runs while it
        # was online must have found nothing either.
        assert not AdvisorFinding.objects.exists(), open_findings()
        assert not AdvisorRun.objects.exclude(errors={}).exists()
    except AssertionError:
        dump(cluster)
        raise
    finally:
        cluster.stop_all()


def test_broker_memory_above_80_percent_of_maxmemory_is_reported(own_redis):
    url = own_redis(policy="noeviction", maxmemory="0")
    client = redis.Redis.from_url(url)
    client.set("filler", b"x" * 4 * 1024 * 1024)
    used = int(client.info("memory")["used_memory"])
    ctx = Context.from_settings(broker_url=url)

    client.config_set("maxmemory", str(int(used / 0.85)))
    findings = broker.memory_usage(ctx)

    assert [f.check for f in findings] == ["redis_memory"]
    assert "used_memory" in findings[0].evidence
    client.config_set("maxmemory", str(used * 4))
    assert broker.memory_usage(ctx) == []


def test_a_noeviction_broker_on_its_own_database_is_not_reported(own_redis, db):
    url = own_redis(policy="noeviction")
    ctx = Context.from_settings(broker_url=url)
    ctx.other_redis_urls = {"a cache": url.rsplit("/", 1)[0] + "/3"}

    assert broker.eviction_policy(ctx) == []
    assert broker.shared_database(ctx) == []
    ctx.other_redis_urls = {"a cache": url}
    assert [f.check for f in broker.shared_database(ctx)] == ["redis_shared_db"]


def delete_queues(url: str, names: list[str]) -> None:
    from kombu import Connection

    with Connection(url) as conn:
        for name in names:
            channel = conn.channel()
            # A queue never declared answers 404 and closes the channel: nothing to delete.
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.close()


def test_on_rabbitmq_worker_checks_trip_redis_only_ones_stay_quiet_and_a_fix_resolves(
    tmp_path, transactional_db, monkeypatch
):
    cluster = Cluster("amqp", tmp_path)
    monkeypatch.setenv("CELERY_BROKER_URL", BROKERS["amqp"])
    orphan = f"orphan-{cluster.suffix}"
    queues = [orphan]
    try:
        # Pickle, acks_late, prefetch x4 and a 3 s visibility timeout, which RabbitMQ has
        # no use for: only the pickle finding applies here.
        _, careless, careless_q = advisor_worker(
            cluster,
            "careless",
            {
                "accept_content": ["json", "pickle"],
                "task_acks_late": True,
                "broker_transport_options": {"visibility_timeout": 3},
            },
            pool="threads",
        )
        queues.append(careless_q)
        start_collector(cluster, queues=[careless_q, orphan])
        wait_for(
            lambda: (
                WorkerRecord.objects.filter(hostname=careless, is_online=True)
                .exclude(inspected_at=None)
                .exists()
            ),
            60,
        )
        app = cluster.sender()
        app.send_task("advisor.sleep", (0.1,), queue=careless_q, countdown=8)
        app.send_task("advisor.sleep", (0.1,), queue=orphan)
        wait_for(lambda: {"accepts_pickle", "queue_without_consumer"} <= set(open_findings()), 60)
        found = open_findings()
        assert found["queue_without_consumer"] == {orphan}
        # RabbitMQ itself counts the consumers: 0 for the orphan queue.
        assert QueueRecord.objects.get(name=orphan).consumers == 0
        wait_for(
            lambda: TaskRecord.objects.filter(queue=careless_q, state=states.SUCCESS).exists(),
            30,
        )
        runs = AdvisorRun.objects.count()
        wait_for(lambda: AdvisorRun.objects.count() >= runs + 2, 30)
        assert set(open_findings()) == {"accepts_pickle", "queue_without_consumer"}

        # The fix: a worker consuming the orphan queue. The finding moves to "fixed".
        cluster.spawn(
            "rescuer",
            [
                sys.executable, "-m", "celery", "-A", "tests.integration.advisor_app",
                "worker", "-E", "-Q", orphan, "-c", "1", "-n",
                f"rescuer-{cluster.suffix}@{socket.gethostname()}",
                "--without-mingle", "--without-gossip",
            ],
            ADVISOR_WORKER_CONF="{}",
        )  # fmt: skip
        fixed = wait_for(
            lambda: (
                AdvisorFinding.objects.filter(check_name="queue_without_consumer", subject=orphan)
                .exclude(resolved_at=None)
                .first()
            ),
            60,
        )
        assert fixed.resolved_at >= fixed.last_seen_at >= fixed.first_seen_at
    except AssertionError:
        dump(cluster)
        raise
    finally:
        cluster.stop_all()
        delete_queues(BROKERS["amqp"], queues)
