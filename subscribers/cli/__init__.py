"""Web Push's commands (``ticker vapid``, ``ticker alerts``, ``ticker worker``),
registered by ``ticker.cli``."""

from __future__ import annotations

from typing import Any

from subscribers.cli import alerts, vapid, worker


def register(sub: Any) -> None:
    vapid.register(sub)
    alerts.register(sub)
    worker.register(sub)
