"""Login attempts, limited per account and per client address (pure: the caller passes the
time). Token buckets in memory: a restart forgets them, which costs an attacker nothing he
could not get by waiting one window, and keeps a failed login free of database writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_KEYS = 100_000


@dataclass
class Buckets:
    """``attempts`` per ``window`` seconds for each key, with bursts of ``attempts``."""

    attempts: int
    window: float
    max_keys: int = MAX_KEYS
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # (tokens, t)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.attempts), now))
        return min(float(self.attempts), tokens + (now - last) * self.attempts / self.window)

    def take(self, key: str, now: float) -> bool:
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            return False
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget(now)
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _forget(self, now: float) -> None:
        """Make room: buckets that have refilled hold nothing worth keeping; if a flood of
        names left none such, the least recently used half goes (bounded memory beats a
        perfect count; the per-address limit still holds the flood back)."""
        for key in [k for k in self._buckets if self._tokens(k, now) >= self.attempts]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for key in oldest[:len(oldest) // 2 + 1]:
                del self._buckets[key]

    def retry_after(self, key: str, now: float) -> float:
        return max(0.0, (1.0 - self._tokens(key, now)) * self.window / self.attempts)


@dataclass
class LoginLimits:
    per_account: Buckets
    per_address: Buckets

    def check(self, account: str, address: str, now: float) -> float | None:
        """Take an attempt from both; None if allowed, else seconds until one would be."""
        waits = []
        if not self.per_address.take(address, now):
            waits.append(self.per_address.retry_after(address, now))
        elif not self.per_account.take(account.lower(), now):
            waits.append(self.per_account.retry_after(account.lower(), now))
        return max(waits) if waits else None
