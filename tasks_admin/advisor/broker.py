"""Redis broker checks: eviction policy, memory headroom, databases shared with others."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis

from tasks_admin.advisor.base import CRITICAL, WARNING, Context, Finding, inspected, setting


def is_redis(url: str | None) -> bool:
    return bool(url) and str(url).split("://", 1)[0] in {"redis", "rediss"}


def redis_location(url: str) -> tuple[str, int, int]:
    """(host, port, db) a Redis URL points at; ``?db=`` wins over the path, as in redis-py."""
    parts = urlsplit(url)
    db = 0
    path = (parts.path or "/").strip("/")
    if path.isdigit():
        db = int(path)
    for pair in (parts.query or "").split("&"):
        key, _, value = pair.partition("=")
        if key == "db" and value.isdigit():
            db = int(value)
    host = (parts.hostname or "localhost").lower()
    if host in {"localhost", "::1"}:
        host = "127.0.0.1"
    return host, parts.port or 6379, db


def where(url: str) -> str:
    host, port, db = redis_location(url)
    return f"{host}:{port}/{db}"


def _client(url: str) -> Any:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def eviction_policy(ctx: Context) -> list[Finding]:
    if not is_redis(ctx.broker_url):
        return []
    client = _client(ctx.broker_url)
    try:
        policy = str(client.config_get("maxmemory-policy").get("maxmemory-policy", ""))
    finally:
        client.close()
    if policy in {"noeviction", ""}:
        return []
    return [
        Finding(
            check="redis_eviction_policy",
            subject=where(ctx.broker_url),
            severity=CRITICAL,
            title=f"The Redis broker may evict keys (maxmemory-policy {policy})",
            evidence=f"CONFIG GET maxmemory-policy on {where(ctx.broker_url)} says {policy!r}.",
            why=(
                "Queues are Redis lists. Under memory pressure Redis deletes keys by this "
                "policy, whole queues included, and nobody gets an error: tasks just vanish."
            ),
            fix=(
                "Set maxmemory-policy noeviction on the broker (CONFIG SET maxmemory-policy "
                "noeviction, and in redis.conf) and give it enough memory; keep caches on "
                "another Redis server that may evict."
            ),
        )
    ]


def memory_usage(ctx: Context) -> list[Finding]:
    if not is_redis(ctx.broker_url):
        return []
    client = _client(ctx.broker_url)
    try:
        info = client.info("memory")
    finally:
        client.close()
    used = int(info.get("used_memory") or 0)
    limit = int(info.get("maxmemory") or 0)
    if not limit or used < limit * ctx.memory_usage_ratio:
        return []
    ratio = used / limit
    return [
        Finding(
            check="redis_memory",
            subject=where(ctx.broker_url),
            severity=CRITICAL if ratio >= 0.95 else WARNING,
            title=f"The Redis broker uses {ratio:.0%} of its maxmemory",
            evidence=(
                f"INFO memory on {where(ctx.broker_url)}: used_memory {used:,} bytes of "
                f"maxmemory {limit:,} ({info.get('used_memory_human', '?')} of "
                f"{info.get('maxmemory_human', '?')})."
            ),
            why=(
                "At maxmemory Redis either evicts keys (queued tasks lost) or, with "
                "noeviction, refuses writes: publishing tasks fails with OOM errors."
            ),
            fix=(
                "Find what fills it (a queue nobody consumes, results without expiry: "
                "result_expires), drain or purge it, or raise maxmemory."
            ),
        )
    ]


def shared_database(ctx: Context) -> list[Finding]:
    """The broker's Redis database also used as result backend, cache or channel layer."""
    if not is_redis(ctx.broker_url):
        return []
    broker_at = redis_location(ctx.broker_url)
    users: dict[str, str] = {
        label: url for label, url in ctx.other_redis_urls.items() if is_redis(url)
    }
    for worker in ctx.online_workers():
        if not inspected(worker):
            continue
        backend = setting(worker, "result_backend")
        if isinstance(backend, str) and is_redis(backend):
            users[f"the result backend of {worker.hostname}"] = backend
    sharing = sorted(label for label, url in users.items() if redis_location(url) == broker_at)
    if not sharing:
        return []
    return [
        Finding(
            check="redis_shared_db",
            subject=where(ctx.broker_url),
            severity=WARNING,
            title="The broker's Redis database is shared with results or a cache",
            evidence=f"Redis {where(ctx.broker_url)} is the broker and also "
            + "; ".join(sharing)
            + ".",
            why=(
                "Results and cache entries grow the broker's memory (towards eviction or OOM), "
                "a cache flush (FLUSHDB) deletes the queues with it, and one slow workload "
                "slows the other."
            ),
            fix=(
                "Give the result backend and caches their own database number, better their "
                "own Redis server (a cache may evict, a broker must not)."
            ),
        )
    ]


CHECKS = [eviction_policy, memory_usage, shared_database]
