"""The API throttle's counts, in Redis (settings.REDIS_URL), shared by every web process.

Each bucket is a sorted set of the requests let through in the last window (DRF's sliding
window, kept server-side). One Lua script prunes, counts and records in one round trip and
runs atomically, so concurrent requests from several processes cannot both take the last
slot the way a get-then-set on a shared cache can. Members are random strings; nothing is
pickled.

Redis unreachable: ``hit`` answers None (let the request through) and warns at most once
per WARN_EVERY seconds; after a failure Redis is not asked again for RETRY_AFTER seconds,
so a hung server costs one request a timeout, not every request.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 0.5
RETRY_AFTER = 5.0
WARN_EVERY = 60.0

# KEYS[1]: the bucket. ARGV: limit, window in microseconds, this request's member.
# Returns 0 when the request is let through (and recorded), else the microseconds until
# one would be. Time is Redis's own (TIME): every process, on any host, shares one clock.
_HIT = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 0
end
-- Refused: a slot frees when the (count - limit + 1)th oldest leaves the window.
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
if #oldest == 0 then
  return window
end
return math.max(1, tonumber(oldest[2]) + window - now)
"""

_lock = threading.Lock()
_client: tuple[str, redis.Redis, Script] | None = None  # (url, client, script)
_failed_at = float("-inf")
_warned_at = float("-inf")


def key(scope: str, ident: str) -> str:
    """A bucket's Redis key, under the console's prefix: consoles sharing a Redis don't
    share buckets."""
    return f"{settings.CHANNEL_LAYER_PREFIX}:api-throttle:{scope}:{ident}"


def _script() -> Script:
    """The hit script on this process's client, made anew if REDIS_URL changed."""
    global _client
    url = settings.REDIS_URL
    current = _client
    if current is None or current[0] != url:
        with _lock:
            current = _client
            if current is None or current[0] != url:
                client = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=SOCKET_TIMEOUT,
                    socket_timeout=SOCKET_TIMEOUT,
                    retry=Retry(NoBackoff(), 0),
                )
                current = _client = (url, client, client.register_script(_HIT))
    return current[2]


def hit(bucket: str, limit: int, window: int) -> float | None:
    """Count a request against ``bucket`` (``limit`` per ``window`` seconds).

    Returns 0.0 if it is let through, the seconds to wait if it is refused, and None if
    Redis could not be asked (the caller lets it through).
    """
    global _failed_at, _warned_at
    now = time.monotonic()
    if now - _failed_at < RETRY_AFTER:
        return None
    member = os.urandom(8).hex()
    try:
        waited = _script()(keys=[bucket], args=[limit, window * 1_000_000, member])
    except redis.RedisError as exc:
        _failed_at = now
        if now - _warned_at >= WARN_EVERY:
            _warned_at = now
            log.warning(
                "API throttle off: Redis (REDIS_URL) did not answer (%s); requests are "
                "not counted until it does",
                exc,
            )
        return None
    return int(waited) / 1_000_000


def reset() -> None:
    """Forget this process's client and failure state (tests)."""
    global _client, _failed_at, _warned_at
    with _lock:
        _client = None
        _failed_at = _warned_at = float("-inf")
