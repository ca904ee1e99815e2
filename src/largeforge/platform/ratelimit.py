"""Rate limits per API key: requests per minute (every authenticated request) and model tokens per
minute (the serving gateway).

Owns the policy (whose budget, which limit, the 429 message) and two interchangeable window counters:
in-process (the embedded default, one API process) and Redis (``LARGEFORGE_REDIS_URL``), which every
API replica shares so that N replicas still grant a key its limit once, not N times. It does not own
token counting: the gateway reports what it served through :meth:`RateLimiter.charge_tokens`.

Both counters keep a sliding 60 s window in one-second buckets: exact to the second, O(60) memory per
key, and free of the fixed-window flaw that lets a client burst twice its limit across a minute's
boundary. A browser session has no key, so its budget is its user's (``user:<id>``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from largeforge.errors import Overloaded, Unavailable
from largeforge.platform.auth.principal import Principal

if TYPE_CHECKING:
    from largeforge.settings import Settings

WINDOW_SECONDS = 60


class WindowCounter(Protocol):
    """A sliding-window counter shared by whoever must agree on a limit."""

    def hit(self, key: str, *, cost: int, limit: int, need: int) -> float | None:
        """Atomically: if ``limit`` is 0 or the window's count plus ``need`` fits in ``limit``, add
        ``cost`` to the window and return None; otherwise add nothing and return the seconds until it
        would fit."""
        ...

    def close(self) -> None: ...


def _retry_after(buckets: list[tuple[int, int]], count: int, need: int, limit: int, now: float) -> float:
    """Seconds until enough of the oldest buckets leave the window for ``need`` more to fit."""
    excess = count + need - limit
    for second, amount in sorted(buckets):
        excess -= amount
        if excess <= 0:
            return max(second + WINDOW_SECONDS - now, 0.0)
    return float(WINDOW_SECONDS)  # need alone exceeds the limit: nothing frees up sooner


class MemoryWindowCounter:
    """The in-process counter: a dict of per-second buckets under one lock (API routes run in threads)."""

    # Keys whose window emptied are dropped every this many hits, so idle keys do not pile up.
    _SWEEP_EVERY = 10_000

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, dict[int, int]] = {}
        self._hits = 0

    def hit(self, key: str, *, cost: int, limit: int, need: int) -> float | None:
        now = self._clock()
        second = int(now)
        with self._lock:
            self._hits += 1
            if self._hits % self._SWEEP_EVERY == 0:
                self._sweep(second)
            window = self._windows.setdefault(key, {})
            for old in [s for s in window if s <= second - WINDOW_SECONDS]:
                del window[old]
            count = sum(window.values())
            if limit > 0 and count + need > limit:
                return _retry_after(list(window.items()), count, need, limit, now)
            if cost > 0:
                window[second] = window.get(second, 0) + cost
            return None

    def _sweep(self, second: int) -> None:
        for key in [k for k, w in self._windows.items() if all(s <= second - WINDOW_SECONDS for s in w)]:
            del self._windows[key]

    def close(self) -> None:
        with self._lock:
            self._windows.clear()


# One round trip per hit, atomic on the server, timed by the server's clock so that replicas with
# skewed clocks still agree. Returns {allowed (0/1), count, retry_after as a string: Lua numbers
# become integers on the way out}.
_HIT_SCRIPT = """
local cost = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local need = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local t = redis.call('TIME')
local second = tonumber(t[1])
local now = second + tonumber(t[2]) / 1000000
local flat = redis.call('HGETALL', KEYS[1])
local buckets = {}
local count = 0
for i = 1, #flat, 2 do
  local s = tonumber(flat[i])
  if s <= second - window then
    redis.call('HDEL', KEYS[1], flat[i])
  else
    local n = tonumber(flat[i + 1])
    count = count + n
    table.insert(buckets, {s, n})
  end
end
if limit > 0 and count + need > limit then
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  local excess = count + need - limit
  local retry = window
  for _, b in ipairs(buckets) do
    excess = excess - b[2]
    if excess <= 0 then
      retry = b[1] + window - now
      break
    end
  end
  return {0, count, tostring(retry)}
end
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], tostring(second), cost)
  redis.call('EXPIRE', KEYS[1], window + 1)
end
return {1, count + cost, '0'}
"""


class RedisWindowCounter:
    """The shared counter: one Redis hash of per-second buckets per key, updated by a Lua script."""

    def __init__(self, url: str, *, namespace: str = "largeforge:ratelimit") -> None:
        import redis

        self._url = url
        self._namespace = namespace
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_HIT_SCRIPT)

    def hit(self, key: str, *, cost: int, limit: int, need: int) -> float | None:
        import redis

        try:
            allowed, _count, retry = self._script(
                keys=[f"{self._namespace}:{key}"], args=[cost, limit, need, WINDOW_SECONDS]
            )
        except redis.RedisError as exc:
            # Fail closed: without the shared count a limit would silently become N times itself.
            raise Unavailable(
                f"rate limiter: Redis at {self._url} did not answer ({exc}); "
                "check that it runs and that LARGEFORGE_REDIS_URL points at it"
            ) from exc
        return None if int(allowed) else max(float(retry), 0.0)

    def close(self) -> None:
        self._client.close()


class RateLimiter:
    """Per-key limits over a :class:`WindowCounter`.

    Args:
        counter: where the windows live (in-process or Redis).
        default_rpm: requests/min for keys (and sessions) that set none; 0 = unlimited.
        default_tpm: tokens/min for keys that set none; 0 = unlimited.
    """

    def __init__(self, counter: WindowCounter, *, default_rpm: int, default_tpm: int) -> None:
        self.counter = counter
        self.default_rpm = default_rpm
        self.default_tpm = default_tpm

    @staticmethod
    def _subject(principal: Principal) -> tuple[str, str]:
        """The budget's key and how the message names it."""
        if principal.api_key_prefix:
            return principal.api_key_prefix, f"key {principal.api_key_prefix}"
        return f"user:{principal.user_id}", f"user {principal.email}"

    def _limits(self, principal: Principal) -> tuple[int, int]:
        rpm = principal.requests_per_minute
        tpm = principal.tokens_per_minute
        return (self.default_rpm if rpm is None else rpm, self.default_tpm if tpm is None else tpm)

    def check_request(self, principal: Principal) -> None:
        """Count one request against the caller's requests/min.

        Raises:
            Overloaded: the caller used its limit in the last 60 s (429 with Retry-After).
            Unavailable: the shared counter (Redis) is unreachable.
        """
        rpm, _ = self._limits(principal)
        if rpm == 0:
            return
        key, who = self._subject(principal)
        retry = self.counter.hit(f"req:{key}", cost=1, limit=rpm, need=1)
        if retry is not None:
            seconds = max(1, math.ceil(retry))
            raise Overloaded(
                f"rate limit of {rpm} requests/min for {who}; retry after {seconds} s",
                retry_after=seconds,
            )

    def check_tokens(self, principal: Principal) -> None:
        """Refuse a generation request when the caller has no tokens left in the window.

        The request's own size is unknown until it is served, so it is charged afterwards with
        :meth:`charge_tokens`; one request may overshoot the limit, the next one waits.

        Raises:
            Overloaded: the caller used its tokens/min (429 with Retry-After).
            Unavailable: the shared counter (Redis) is unreachable.
        """
        _, tpm = self._limits(principal)
        if tpm == 0:
            return
        key, who = self._subject(principal)
        retry = self.counter.hit(f"tok:{key}", cost=0, limit=tpm, need=1)
        if retry is not None:
            seconds = max(1, math.ceil(retry))
            raise Overloaded(
                f"token limit of {tpm} tokens/min for {who} is used up; retry after {seconds} s",
                retry_after=seconds,
            )

    def charge_tokens(self, principal: Principal, tokens: int) -> None:
        """Record ``tokens`` served to the caller (prompt + completion), whatever its limit."""
        if tokens <= 0:
            return
        _, tpm = self._limits(principal)
        if tpm == 0:
            return  # unlimited keys are not counted: nothing would ever read the count
        key, _ = self._subject(principal)
        self.counter.hit(f"tok:{key}", cost=tokens, limit=0, need=0)

    def close(self) -> None:
        self.counter.close()


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Redis when ``settings.redis_url`` is set (shared by replicas), else in-process."""
    counter: WindowCounter = (
        RedisWindowCounter(settings.redis_url) if settings.redis_url else MemoryWindowCounter()
    )
    return RateLimiter(counter, default_rpm=settings.rate_limit_rpm, default_tpm=settings.rate_limit_tpm)


__all__ = [
    "WINDOW_SECONDS",
    "MemoryWindowCounter",
    "RateLimiter",
    "RedisWindowCounter",
    "WindowCounter",
    "build_rate_limiter",
]
