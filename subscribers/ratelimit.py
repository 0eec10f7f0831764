"""A token bucket per client address, in memory (pure: the caller passes the time).

Only counts live here, never stored: buckets that have refilled are forgotten, and the
table is bounded so a flood of addresses cannot grow it without limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_KEYS = 100_000


@dataclass
class RateLimiter:
    rate_per_minute: float
    burst: float = 0.0  # 0: the same as one minute's rate
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key: (tokens, t)

    def __post_init__(self) -> None:
        if self.burst <= 0:
            self.burst = max(1.0, self.rate_per_minute)

    def allow(self, key: str, now: float) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty."""
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_minute / 60.0)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._forget_full(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def retry_after(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_minute / 60.0)
        return max(0.0, (1.0 - tokens) * 60.0 / self.rate_per_minute)

    def _forget_full(self, now: float) -> None:
        per_second = self.rate_per_minute / 60.0
        full = [k for k, (t, last) in self._buckets.items()
                if t + (now - last) * per_second >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= MAX_KEYS:  # all busy: drop the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k][1])[:MAX_KEYS // 2]:
                del self._buckets[k]
