"""``memory://``: one process, whose Hub numbers and holds every channel.

The Hub's history is also written to the app's database (:mod:`ticker.broker.history`) and
read back at start, so a restarted node keeps each channel's epoch and offsets and resumes
its clients with ``recovered: true``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ticker.broker.history import HistoryStore
from ticker.feed.channels import Hub, Message, Position, Recovery
from ticker.storage.database import Database


class MemoryBroker:
    url = "memory://"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._store: HistoryStore | None = None

    async def start(self, db: Database) -> None:
        store = HistoryStore(db, self.hub.max_size)
        for name, stored in (await store.load()).items():
            channel = self.hub.channel_for(name)
            if channel is not None:
                channel.restore(stored.epoch, stored.offset, stored.messages)
        store.start()
        self._store = store

    async def publish(self, channel: str, data: Mapping[str, Any]) -> Message:
        msg, _count = self.hub.publish(channel, data)
        if self._store is not None:
            self._store.add(msg)
        return msg

    async def history(self, channel: str, since: Position | None) -> Recovery:
        return self.hub.channels[channel].since(since, time.time())

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "url": self.url}

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
            self._store = None
