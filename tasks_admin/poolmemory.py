"""Pool process memory for any Celery app: what ``inspect stats`` cannot tell the console.

Install it in the monitored app (the one the workers run) with one call::

    from tasks_admin import poolmemory
    poolmemory.install(app)

Why: ``inspect stats`` reports ``rusage.maxrss`` from ``getrusage(RUSAGE_SELF)`` in the
worker's main process. With the prefork pool (Celery's default) tasks run in pool child
processes, so a task that leaks grows a child while that figure stays flat; no heartbeat
field or other reply carries the children's memory either. With this installed, every
``inspect stats`` reply also holds ``pool_memory``: the resident and peak resident memory
(KiB) of each process that runs tasks (the pool's children for prefork, the main process
for threads/solo/gevent/eventlet), read from ``/proc/<pid>/status`` (Linux). The peak is
the figure billiard compares with ``worker_max_memory_per_child``.

It is a worker bootstep whose ``info`` Celery merges into the ``stats`` reply: nothing is
sent unless asked, and a console that does not know the key ignores it. This module
imports only Celery: it runs inside any app, with or without Django.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, bootsteps

KEY = "pool_memory"


def install(app: Celery) -> None:
    """Add the bootstep to ``app``'s workers (idempotent)."""
    app.steps["worker"].add(PoolMemory)


def process_memory(pid: int) -> dict[str, int] | None:
    """``{"pid", "rss_kb", "peak_kb"}`` from /proc, or None (gone, or not Linux)."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    # "VmRSS:     86516 kB"
                    fields[name] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if "VmRSS" not in fields:
        return None  # a zombie, or a kernel thread
    return {"pid": pid, "rss_kb": fields["VmRSS"], "peak_kb": fields.get("VmHWM", fields["VmRSS"])}


def task_pids(pool: Any) -> list[int]:
    """The processes that run tasks: prefork's children, else the worker itself."""
    try:
        processes = pool.info.get("processes")
    except Exception:  # a pool not started yet, or one whose info fails: say nothing
        return []
    if isinstance(processes, list) and processes:
        return [pid for pid in processes if isinstance(pid, int)]
    return [os.getpid()]


class PoolMemory(bootsteps.StartStopStep):
    """Adds ``pool_memory`` to the worker's ``inspect stats`` reply.

    A StartStopStep although it starts nothing: only those are listed in the worker's
    ``steps``, whose ``info`` the ``stats`` reply merges.
    """

    name = "tasks_admin.poolmemory"
    requires = ("celery.worker.components:Pool",)

    # celery-types says Step.info returns None; Blueprint.info merges whatever dict it gets.
    def info(self, obj: Any) -> dict[str, Any]:  # type: ignore[override]
        pool = getattr(obj, "pool", None)
        processes = [m for m in map(process_memory, task_pids(pool)) if m]
        return {KEY: {"processes": processes}} if processes else {}
