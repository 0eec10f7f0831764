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
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # (tokens, t)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.attempts), now))
        return min(float(self.attempts), tokens + (now - last) * self.attempts / self.window)

    def take(self, key: str, now: float) -> bool:
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            return False
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._buckets.clear()  # a flood of keys: forgetting beats growing without bound
        self._buckets[key] = (tokens - 1.0, now)
        return True

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
