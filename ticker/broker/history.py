"""Channel history kept in the app's database, so a restarted embedded node resumes clients.

Messages are written in batches by one background task (every ``FLUSH_SECONDS`` or
``FLUSH_MESSAGES``, whichever comes first), never one transaction per message: a busy channel
costs one write a tenth of a second. Each channel keeps at most ``max_size`` rows, like the
in-memory history. A crash (not a clean stop, which flushes and says so) loses what was
published since the last flush. A client may have seen those messages, and the restarted node
would number new ones with the same offsets, so after a crash every channel restarts under a
new epoch: its clients are told ``recovered: false`` (and refetch) rather than skip what they
never saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass, field

from ticker.feed import wire
from ticker.feed.channels import Message
from ticker.storage.database import Database
from ticker.storage.migrations import Migration

log = logging.getLogger("ticker.broker")

FLUSH_SECONDS = 0.1
FLUSH_MESSAGES = 500

MIGRATION = Migration(8, "feed history", (
    """CREATE TABLE feed_channels (
        name TEXT PRIMARY KEY,
        epoch TEXT NOT NULL,
        last_offset {bigint} NOT NULL
    )""",
    """CREATE TABLE feed_history (
        channel TEXT NOT NULL,
        seq {bigint} NOT NULL,
        ts {float} NOT NULL,
        data {json} NOT NULL,
        PRIMARY KEY (channel, seq)
    )""",
    # One row: whether the last run flushed everything on its way out.
    "CREATE TABLE feed_runs (id {bigint} PRIMARY KEY, clean {bigint} NOT NULL)",
))


@dataclass
class Stored:
    """One channel as the database holds it."""

    epoch: str
    offset: int
    messages: list[Message] = field(default_factory=list)


class HistoryStore:
    def __init__(self, db: Database, max_size: int) -> None:
        self._db = db
        self._max_size = max(1, max_size)
        self._pending: list[Message] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def load(self) -> dict[str, Stored]:
        """Every stored channel: its numbering and its last ``max_size`` messages (under a new
        epoch when the last run did not stop cleanly). Marks this run as not stopped yet."""
        run = await self._db.fetchone("SELECT clean FROM feed_runs WHERE id = 1")
        clean = run is None or bool(run["clean"])
        out = {r["name"]: Stored(r["epoch"] if clean else secrets.token_hex(4),
                                 int(r["last_offset"])) for r in
               await self._db.fetchall("SELECT name, epoch, last_offset FROM feed_channels")}
        rows = await self._db.fetchall(
            "SELECT channel, seq, ts, data FROM feed_history ORDER BY channel, seq")
        for row in rows:
            stored = out.get(row["channel"])
            if stored is None:
                continue
            try:
                data = json.loads(row["data"])
            except ValueError:
                log.warning("stored feed message skipped: not JSON",
                            extra={"channel": row["channel"], "offset": row["seq"]})
                continue
            offset = int(row["seq"])
            stored.messages.append(Message(row["channel"], stored.epoch, offset, data,
                                           float(row["ts"])))
            # Rows may be ahead of the channel's row (a crash between the two writes).
            stored.offset = max(stored.offset, offset)
        for stored in out.values():
            del stored.messages[:-self._max_size]
        if not clean:
            log.warning("the feed's last run did not stop cleanly: channels start new epochs",
                        extra={"channels": len(out)})
            await self._db.executemany("UPDATE feed_channels SET epoch = ? WHERE name = ?",
                                       [(st.epoch, name) for name, st in out.items()])
        await self._mark_clean(False)
        return out

    async def _mark_clean(self, clean: bool) -> None:
        await self._db.execute(
            "INSERT INTO feed_runs (id, clean) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET clean = excluded.clean", (int(clean),))

    def add(self, msg: Message) -> None:
        # A copy without the message's wire encodings (WebSocket frame, SSE event, JSON),
        # which are twice or three times its data: kept here, they would hold every large
        # message's frames for another flush interval (measured: a 12 MB burst of 30 KB
        # messages grew the server by 10 MB; with the copy it stays under the 6 MB bound).
        self._pending.append(Message(msg.channel, msg.epoch, msg.offset, msg.data, msg.ts))
        if len(self._pending) >= FLUSH_MESSAGES:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # the database is down or full: keep serving
                log.warning("feed history not saved", extra={"error": type(exc).__name__,
                                                             "messages": len(self._pending)})
                if not self._closing:
                    await asyncio.sleep(1.0)

    async def flush(self) -> None:
        """Write what waits, in three statements whatever its size."""
        batch = self._pending
        if not batch:
            return
        self._pending = []
        try:
            await self._write(batch)
        except BaseException:
            # Not lost yet: kept (bounded) for the next attempt, before what came since.
            self._pending = (batch + self._pending)[-FLUSH_MESSAGES * 20:]
            raise

    async def _write(self, batch: list[Message]) -> None:
        heads: dict[str, Message] = {}
        for msg in batch:
            heads[msg.channel] = msg
        # A burst's older messages would be deleted by this very flush: never written.
        batch = [m for m in batch if m.offset > heads[m.channel].offset - self._max_size]
        await self._db.executemany(
            "INSERT INTO feed_history (channel, seq, ts, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (channel, seq) DO UPDATE SET ts = excluded.ts, data = excluded.data",
            [(m.channel, m.offset, m.ts, wire.dumps(m.data).decode()) for m in batch])
        await self._db.executemany(
            "INSERT INTO feed_channels (name, epoch, last_offset) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, "
            "last_offset = excluded.last_offset",
            [(name, m.epoch, m.offset) for name, m in heads.items()])
        await self._db.executemany(
            "DELETE FROM feed_history WHERE channel = ? AND seq <= ?",
            [(name, m.offset - self._max_size) for name, m in heads.items()])

    async def close(self) -> None:
        """Stop the writer and save what is left (a clean stop loses nothing). The writer
        is asked to stop, not cancelled: a write cancelled halfway would leave the database's
        transaction open for the writes that follow."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        await self.flush()
        await self._mark_clean(True)
