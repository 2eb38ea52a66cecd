"""Marketo API limits, enforced before each call so workers slow down instead of collecting errors.

Marketo allows per instance (Munchkin ID): 100 calls in any 20 s window (else 606), 10 calls in
flight (else 615) and a daily quota (607, 50,000 by default). All workers share one budget, so the
Redis limiter keeps the state in Redis and changes it atomically in one Lua script. Concurrency
slots expire after ``slot_ttl`` seconds, so a killed worker cannot hold a slot for ever. Without
Redis (embedded mode) a process-local limiter applies the same rules.

``acquire()`` waits (with the injectable ``sleep``/``clock``) until the call is allowed; it only
raises ``MarketoQuotaExceeded`` when the day's quota is used up, because waiting would take hours.
"""

import atexit
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings

from connectors.marketo.errors import MarketoQuotaExceeded

RATE_LIMIT = 100
RATE_WINDOW = 20.0
MAX_CONCURRENT = 10
DAILY_QUOTA = 50_000
SLOT_TTL = 120.0
# How often a call waiting for a free concurrency slot looks again.
SLOT_POLL = 0.1

_ALLOWED, _WAIT, _QUOTA = 0, 1, 2


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")


def next_utc_midnight(ts: float) -> datetime:
    day = datetime.fromtimestamp(ts, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def state_prefix() -> str:
    """Namespace of the shared state (tokens, limits); tests give each test its own."""
    return getattr(settings, "MARKETO_STATE_PREFIX", "quorum:marketo")


class BaseLimiter:
    def __init__(
        self,
        munchkin_id: str,
        *,
        rate: int = RATE_LIMIT,
        window: float = RATE_WINDOW,
        concurrency: int = MAX_CONCURRENT,
        daily_quota: int = DAILY_QUOTA,
        slot_ttl: float = SLOT_TTL,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.munchkin_id = munchkin_id
        self.rate, self.window, self.concurrency = rate, window, concurrency
        self.daily_quota, self.slot_ttl = daily_quota, slot_ttl
        self.clock, self.sleep = clock, sleep

    def acquire(self) -> str:
        """Wait for a free place in the window and a concurrency slot; return the slot id."""
        slot = uuid.uuid4().hex
        while True:
            now = self.clock()
            status, wait = self._try_acquire(slot, now)
            if status == _ALLOWED:
                return slot
            if status == _QUOTA:
                raise self._quota_error(now)
            self.sleep(wait if wait > 0 else SLOT_POLL)

    @contextmanager
    def call(self) -> Iterator[None]:
        slot = self.acquire()
        try:
            yield
        finally:
            self.release(slot)

    def check_quota(self) -> None:
        """Raise ``MarketoQuotaExceeded`` if no call may be made today (used before token calls)."""
        now = self.clock()
        if self.quota_blocked(now):
            raise self._quota_error(now)

    def _quota_error(self, now: float) -> MarketoQuotaExceeded:
        return MarketoQuotaExceeded(
            f"The daily API quota of Marketo instance {self.munchkin_id} is used up.",
            resets_at=next_utc_midnight(now),
        )

    # Implemented by the backends.
    def _try_acquire(self, slot: str, now: float) -> tuple[int, float]:
        raise NotImplementedError

    def release(self, slot: str) -> None:
        """Free the concurrency slot. The call stays in the rate window from its end on: Marketo
        counts a call when it arrives, which is after we started it and before it ended."""
        raise NotImplementedError

    def mark_quota_exhausted(self) -> None:
        """Marketo said 607: make no further call until UTC midnight."""
        raise NotImplementedError

    def quota_blocked(self, now: float) -> bool:
        raise NotImplementedError

    def calls_today(self) -> int:
        raise NotImplementedError


class _LocalState:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls: dict[str, float] = {}  # call id -> when it started, or ended once released
        self.slots: dict[str, float] = {}
        self.daily: dict[str, int] = {}
        self.blocked_days: set[str] = set()


_local_states: dict[str, _LocalState] = {}
_local_states_lock = threading.Lock()


class LocalLimiter(BaseLimiter):
    """Process-local limiter (embedded mode): same rules, state shared by the threads of one process."""

    def __init__(self, munchkin_id: str, **kwargs):
        super().__init__(munchkin_id, **kwargs)
        key = f"{state_prefix()}:{munchkin_id}"
        with _local_states_lock:
            self._state = _local_states.setdefault(key, _LocalState())

    def _try_acquire(self, slot, now):
        state, day = self._state, utc_day(now)
        with state.lock:
            if day in state.blocked_days or state.daily.get(day, 0) >= self.daily_quota:
                return _QUOTA, 0.0
            for other, at in list(state.calls.items()):
                if at <= now - self.window:
                    del state.calls[other]
            if len(state.calls) >= self.rate:
                return _WAIT, min(state.calls.values()) + self.window - now
            for other, expires in list(state.slots.items()):
                if expires <= now:
                    del state.slots[other]
            if len(state.slots) >= self.concurrency:
                return _WAIT, 0.0
            state.calls[slot] = now
            state.slots[slot] = now + self.slot_ttl
            state.daily = {day: state.daily.get(day, 0) + 1}
            return _ALLOWED, 0.0

    def release(self, slot):
        with self._state.lock:
            self._state.slots.pop(slot, None)
            if slot in self._state.calls:
                self._state.calls[slot] = self.clock()

    def mark_quota_exhausted(self):
        with self._state.lock:
            self._state.blocked_days.add(utc_day(self.clock()))

    def quota_blocked(self, now):
        with self._state.lock:
            day = utc_day(now)
            return day in self._state.blocked_days or self._state.daily.get(day, 0) >= self.daily_quota

    def calls_today(self):
        with self._state.lock:
            return self._state.daily.get(utc_day(self.clock()), 0)


# KEYS: calls window (zset), slots (zset: slot -> expiry), daily counter, daily block flag.
# ARGV: now, window, rate, concurrency, quota, slot_ttl, slot id, daily ttl.
# Floats travel as strings: Lua numbers returned to Redis are truncated to integers.
_ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[4]) == 1 then return {2, '0'} end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[5]) then return {2, '0'} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, tostring(tonumber(oldest[2]) + window - now)}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {1, '0'} end
redis.call('ZADD', KEYS[1], now, ARGV[7])
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[7])
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[6])) + 1)
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
return {0, '0'}
"""

_redis_clients: dict[str, object] = {}
# Dropped while the interpreter is whole: a client collected during shutdown fails in __del__.
atexit.register(_redis_clients.clear)


def redis_client(url: str):
    import redis

    if url not in _redis_clients:
        _redis_clients[url] = redis.Redis.from_url(url)
    return _redis_clients[url]


class RedisLimiter(BaseLimiter):
    """Limiter shared by every worker through Redis."""

    DAY_TTL = 2 * 24 * 3600

    def __init__(self, munchkin_id: str, *, redis_url: str | None = None, **kwargs):
        super().__init__(munchkin_id, **kwargs)
        self.redis = redis_client(redis_url or settings.REDIS_URL)
        self.key = f"{state_prefix()}:{munchkin_id}"
        self._script = self.redis.register_script(_ACQUIRE_LUA)

    def _day_keys(self, now: float) -> tuple[str, str]:
        day = utc_day(now)
        return f"{self.key}:daily:{day}", f"{self.key}:blocked:{day}"

    def _try_acquire(self, slot, now):
        daily, blocked = self._day_keys(now)
        status, wait = self._script(
            keys=[f"{self.key}:calls", f"{self.key}:slots", daily, blocked],
            args=[repr(now), self.window, self.rate, self.concurrency, self.daily_quota, self.slot_ttl, slot,
                  self.DAY_TTL],
        )
        return int(status), float(wait)

    def release(self, slot):
        pipe = self.redis.pipeline()
        pipe.zadd(f"{self.key}:calls", {slot: self.clock()}, xx=True)
        pipe.expire(f"{self.key}:calls", int(self.window) + 2)
        pipe.zrem(f"{self.key}:slots", slot)
        pipe.execute()

    def mark_quota_exhausted(self):
        now = self.clock()
        _, blocked = self._day_keys(now)
        self.redis.set(blocked, 1, ex=max(1, int(next_utc_midnight(now).timestamp() - now) + 1))

    def quota_blocked(self, now):
        daily, blocked = self._day_keys(now)
        used, is_blocked = self.redis.mget(daily, blocked)
        return is_blocked is not None or int(used or 0) >= self.daily_quota

    def calls_today(self):
        daily, _ = self._day_keys(self.clock())
        return int(self.redis.get(daily) or 0)

    def clear(self) -> None:
        """Forget this instance's state (tests)."""
        keys = list(self.redis.scan_iter(f"{self.key}:*"))
        if keys:
            self.redis.delete(*keys)


def limiter_for(munchkin_id: str, *, redis_url: str | None = None, **kwargs) -> BaseLimiter:
    """The shared limiter of a Marketo instance: Redis-backed when ``redis_url`` (default
    ``settings.REDIS_URL``) is set, process-local otherwise."""
    redis_url = getattr(settings, "REDIS_URL", "") if redis_url is None else redis_url
    if redis_url:
        return RedisLimiter(munchkin_id, redis_url=redis_url, **kwargs)
    return LocalLimiter(munchkin_id, **kwargs)
