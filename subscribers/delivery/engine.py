"""The delivery engine: works through an alert's audience with a bounded worker pool.

A pass leases audience batches (:mod:`subscribers.delivery.batchstore`), at most
:func:`~subscribers.delivery.batching.batches_in_flight` at once, and feeds their
subscribers to ``concurrency`` workers through a small queue; each worker encrypts, POSTs
on the shared session and hands the answer to :func:`subscribers.delivery.policy.decide`.
When a batch's last answer is in, its result is written in one transaction. Then the
pass works through due delivery rows (retries), each claimed durably before it is sent
(:mod:`subscribers.delivery.store`). Nothing here decides what a status means, and nothing
sleeps on the wall clock: the clock is a parameter, so tests drive Retry-After and backoff
by moving time.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from subscribers import alerts
from subscribers.crypto.encryptor import Encryptor, HelperExited, InlineEncryptor
from subscribers.crypto.vapid import JwtCache, KeyRing
from subscribers.delivery import batchstore
from subscribers.delivery import store as deliveries
from subscribers.delivery.batching import Tally, batches_in_flight
from subscribers.delivery.batchstore import Batch
from subscribers.delivery.payload import alert_topic
from subscribers.delivery.policy import Decision, decide
from subscribers.delivery.sender import Reply, Sender
from subscribers.delivery.store import DeliveryWriter, Due, Result
from subscribers.metrics import PushMetrics
from ticker.storage.database import Database

log = logging.getLogger("ticker.push")

PAGE = 500
# A pass that could not encrypt (the helper is being replaced) leaves those rows due; the
# alert waits this long before its next pass instead of spinning.
DEFERRED_PAUSE = 1.0


class Clock(Protocol):
    def now(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class SendSummary:
    """What one pass (or a whole alert) did: outcomes per attempt, states rows ended in."""

    alert_id: int
    outcomes: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def merge(self, other: SendSummary) -> None:
        self.outcomes.update(other.outcomes)
        self.states.update(other.states)
        self.seconds += other.seconds


@dataclass
class _Open:
    """A leased batch being sent: what is left of it and what it did."""

    batch: Batch
    tally: Tally
    left: int
    cancelled: int = 0

    def record(self, result: Result) -> None:
        self.tally.add(result.subscription_id, result.state, result.attempts,
                       result.next_attempt_at, result.last_status,
                       result.delete_subscription)


Record = Callable[[Result], None]
Claim = Callable[[int], Awaitable[bool]]


def node_name() -> str:
    """This process as a lease owner: host and pid for people, a random part for uniqueness
    (a restarted process may get its predecessor's pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class _Job:
    alert_id: int
    payload: bytes
    headers: dict[str, str]  # the same for every message of the alert: built once
    deadline: float  # when the alert's TTL runs out


def _key_bytes(text: str) -> bytes:
    # Stored keys passed validation at subscribe time (subscribers.validate.b64url_decode);
    # here only the padding browsers leave off is put back.
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def origin_of(endpoint: str) -> str:
    """``https://host[:port]``: the VAPID ``aud`` and the unit a push service throttles."""
    scheme, _, rest = endpoint.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


class Engine:
    def __init__(self, db: Database, sender: Sender, keys: KeyRing, jwts: JwtCache,
                 clock: Clock, *, metrics: PushMetrics | None = None, concurrency: int = 64,
                 max_attempts: int = 6, rand: Callable[[], float] = random.random,
                 encryptor: Encryptor | None = None, batch_size: int = 200,
                 lease_seconds: float = 30.0,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.db, self.sender, self.keys, self.jwts, self.clock = db, sender, keys, jwts, clock
        self.encryptor: Encryptor = encryptor or InlineEncryptor()
        self.metrics = metrics
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.rand = rand
        self.batch_size, self.lease_seconds = batch_size, lease_seconds
        self.owner = node_name()
        # Called with the alert id after each batch result and when an alert finishes.
        self.on_progress = on_progress
        self.pauses: dict[str, float] = {}  # push-service origin -> paused until
        # Told each pause this process decides (shared with the others through Redis).
        self.on_pause: Callable[[str, float], None] | None = None
        self._cancelled: set[int] = set()
        # Push-service origins whose last word on our VAPID credentials was 401/403; shown
        # on /healthz until that origin accepts a message again.
        self.vapid_rejected_by: set[str] = set()

    def cancel(self, alert_id: int) -> None:
        """Stop sending this alert: no more leases or claims, and a batch being sent stops
        at its next subscriber (rows and free batches are cancelled in SQL)."""
        self._cancelled.add(alert_id)

    def progress(self, alert_id: int) -> None:
        if self.on_progress is not None:
            try:
                self.on_progress(alert_id)
            except Exception:  # a listener's bug must not stop a send
                log.exception("progress listener failed", extra={"alert": alert_id})

    async def _job(self, alert_id: int) -> _Job | None:
        row = await alerts.get(self.db, alert_id)
        if row is None or row["status"] != "sending":
            return None
        alert = alerts.alert_from_row(row)
        headers = {"Urgency": alert.urgency, "Content-Encoding": "aes128gcm",
                   "Content-Type": "application/octet-stream"}
        # One Topic for every push of the alert (a second copy replaces the first at the
        # push service): its collapse topic, else its own.
        headers["Topic"] = alert_topic(alert_id, alert.collapse)
        # A scheduled alert's TTL counts from its send_at, not from when it was written.
        start = alert.send_at if alert.send_at is not None else float(row["created_at"])
        return _Job(alert_id, alert.notification(alert_id).encode(), headers,
                    start + alert.ttl)

    async def run_pass(self, alert_id: int) -> SendSummary:
        """Send the alert's audience batches that are free, then its due delivery rows;
        returns what happened."""
        summary = SendSummary(alert_id)
        job = await self._job(alert_id)
        if job is None:
            return summary
        started = time.perf_counter()
        await batchstore.release_own(self.db, alert_id, self.owner, self.clock.now())
        batches = await self._batches_pass(job, summary)
        transactions = await self._rows_pass(job, summary)
        summary.seconds = time.perf_counter() - started
        if summary.states:
            log.info("push pass", extra={"alert": alert_id, "outcomes": dict(summary.outcomes),
                                         "states": dict(summary.states),
                                         "seconds": round(summary.seconds, 3),
                                         "batches": batches, "transactions": transactions})
        return summary

    async def run_alert(self, alert_id: int) -> SendSummary:
        """Passes until nothing is left, sleeping (on the clock) until retries are due."""
        total = SendSummary(alert_id)
        while alert_id not in self._cancelled:
            done = await self.run_pass(alert_id)
            total.merge(done)
            if done.states.get("deferred"):
                await self.clock.sleep(DEFERRED_PAUSE)
            due = await self.next_due(alert_id)
            if due is None:
                if await alerts.finish_if_done(self.db, alert_id, self.clock.now()):
                    self.progress(alert_id)
                break
            await self.clock.sleep(max(0.0, due - self.clock.now()))
        return total

    async def next_due(self, alert_id: int) -> float | None:
        """When this alert next has work: a batch to cut or whose lease ran out, a row due."""
        times = [t for t in (await batchstore.next_due(self.db, alert_id, self.clock.now()),
                             await deliveries.next_due(self.db, alert_id)) if t is not None]
        return min(times) if times else None

    # -- batches -----------------------------------------------------------------------

    async def _batches_pass(self, job: _Job, summary: SendSummary) -> int:
        """Lease, send and write batches until none is free; how many were sent."""
        slots = asyncio.Semaphore(batches_in_flight(self.concurrency, self.batch_size))
        queue: asyncio.Queue[tuple[_Open, Due] | None] = asyncio.Queue(
            maxsize=2 * self.concurrency)
        leased: list[int] = []
        tasks = [asyncio.create_task(self._lease_batches(job, queue, slots, leased))]
        tasks += [asyncio.create_task(self._send_batches(job, queue, slots, summary))
                  for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return len(leased)

    async def _lease_batches(self, job: _Job, queue: asyncio.Queue[tuple[_Open, Due] | None],
                             slots: asyncio.Semaphore, leased: list[int]) -> None:
        while job.alert_id not in self._cancelled:
            await slots.acquire()
            now = self.clock.now()
            batch = await batchstore.lease(self.db, job.alert_id, self.owner, now,
                                           now + self.lease_seconds, self.batch_size)
            if batch is None:
                slots.release()
                break
            leased.append(batch.first_id)
            dues = await batchstore.load(self.db, batch, now)
            sending = _Open(batch, Tally(batch.targeted), len(dues))
            if not dues:
                await self._finish_batch(job, sending, slots)
            for due in dues:
                await queue.put((sending, due))
        for _ in range(self.concurrency):
            await queue.put(None)

    async def _send_batches(self, job: _Job, queue: asyncio.Queue[tuple[_Open, Due] | None],
                            slots: asyncio.Semaphore, summary: SendSummary) -> None:
        while (item := await queue.get()) is not None:
            sending, due = item
            if job.alert_id in self._cancelled:
                sending.cancelled += 1
            else:
                await self._deliver(job, due, sending.record, None, summary)
            sending.left -= 1
            if sending.left == 0:
                await self._finish_batch(job, sending, slots)

    async def _finish_batch(self, job: _Job, sending: _Open, slots: asyncio.Semaphore) -> None:
        try:
            if not await batchstore.finish(self.db, sending.batch, self.owner, sending.tally,
                                           sending.cancelled, self.clock.now()):
                log.warning("batch lease lost before its result was written; its new holder "
                            "sends it again", extra={"alert": job.alert_id,
                                                     "batch": sending.batch.first_id})
        finally:
            slots.release()
        self.progress(job.alert_id)

    # -- delivery rows (retries) ---------------------------------------------------------

    async def _rows_pass(self, job: _Job, summary: SendSummary) -> int:
        """Send every due delivery row; the writer's transactions."""
        queue: asyncio.Queue[Due | None] = asyncio.Queue(maxsize=2 * self.concurrency)
        writer = DeliveryWriter(self.db, job.alert_id, self.clock, self.owner,
                                self.lease_seconds)
        before = sum(summary.states.values())
        tasks = [asyncio.create_task(self._produce(job, queue))]
        tasks += [asyncio.create_task(self._work(job, queue, writer, summary))
                  for _ in range(self.concurrency)]
        try:
            await asyncio.gather(*tasks)
            await writer.drain()
        finally:
            for task in tasks:
                task.cancel()
            await writer.close()
        if sum(summary.states.values()) != before:
            self.progress(job.alert_id)
        return writer.transactions

    async def _produce(self, job: _Job, queue: asyncio.Queue[Due | None]) -> None:
        after, now = 0, self.clock.now()
        while job.alert_id not in self._cancelled:
            page = await deliveries.due_page(self.db, job.alert_id, now, after, PAGE)
            for due in page:
                await queue.put(due)
            if len(page) < PAGE:
                break
            after = page[-1].subscription_id
        for _ in range(self.concurrency):
            await queue.put(None)

    async def _work(self, job: _Job, queue: asyncio.Queue[Due | None], writer: DeliveryWriter,
                    summary: SendSummary) -> None:
        while (due := await queue.get()) is not None:
            if job.alert_id not in self._cancelled:
                await self._deliver(job, due, writer.result, writer.claim, summary)

    async def _deliver(self, job: _Job, due: Due, record: Record, claim: Claim | None,
                       summary: SendSummary) -> None:
        """Send one delivery (``claim``: a row must be claimed first; a batch's subscriber
        is covered by its lease) and ``record`` the result."""
        origin = origin_of(due.endpoint)
        now = self.clock.now()
        paused = self.pauses.get(origin, 0.0)
        if paused > now:  # the service asked us to wait: not an attempt
            state = "expired" if paused >= job.deadline else "retry"
            record(Result(due.subscription_id, state, due.attempts, paused, None,
                          claimed=False))
            summary.states[state] += 1
            return
        key = await self.keys.get(due.vapid_key_id)
        headers = {"Authorization": self.jwts.authorization(origin, key),
                   "TTL": str(max(1, int(job.deadline - now))), **job.headers}
        # Encrypt first, then wait for the claim: the CPU-heavy step overlaps the claim's
        # group commit instead of following it. The request still leaves only once its
        # claim is durable; a claim lost to another node costs one wasted encryption.
        body = await self._encrypt(job, due, record, summary)
        if body is None:
            return
        if claim is not None and not await claim(due.subscription_id):
            return  # not ours to send (another node, cancelled, or no longer due)
        reply = await self.sender.post(due.endpoint, headers, body)
        attempts = due.attempts + 1
        decision = decide(reply.status, reply.retry_after, attempts=attempts,
                          now=self.clock.now(), max_attempts=self.max_attempts,
                          deadline=job.deadline, rand=self.rand)
        self._apply(origin, due, reply, decision)
        record(Result(due.subscription_id, decision.state, attempts,
                      decision.retry_at or self.clock.now(), reply.status,
                      decision.delete_subscription))
        summary.outcomes[decision.outcome] += 1
        summary.states[decision.state] += 1

    async def _encrypt(self, job: _Job, due: Due, record: Record,
                       summary: SendSummary) -> bytes | None:
        """The encrypted body, or None with the delivery's result recorded."""
        now = self.clock.now()
        try:
            return await self.encryptor.encrypt(job.payload, _key_bytes(due.p256dh),
                                                _key_bytes(due.auth))
        except ValueError as exc:
            # Stored keys that are not a P-256 point: no message can ever reach this
            # subscriber, so it fails (once) rather than failing the pass for everyone.
            log.warning("subscription keys unusable", extra={
                "subscription": due.subscription_id, "error": str(exc)})
            record(Result(due.subscription_id, "failed", due.attempts, now, None,
                          claimed=False))
            summary.states["failed"] += 1
        except HelperExited as exc:
            # The encryption helper died (and is being replaced). Nothing was sent: the
            # delivery is due again a moment later (not an attempt). Logged once a pass,
            # not once for each of the thousands of deliveries behind it.
            if not summary.states["deferred"]:
                log.warning("encryption unavailable; deliveries left for the next pass",
                            extra={"alert": job.alert_id, "error": str(exc)})
            summary.states["deferred"] += 1
            record(Result(due.subscription_id, "retry", due.attempts, now + DEFERRED_PAUSE,
                          None, claimed=False))
        return None

    def _apply(self, origin: str, due: Due, reply: Reply, decision: Decision) -> None:
        if decision.pause_host_until is not None:
            self.pauses[origin] = max(self.pauses.get(origin, 0.0), decision.pause_host_until)
            if self.on_pause is not None:
                self.on_pause(origin, self.pauses[origin])
        if self.metrics is not None:
            self.metrics.outcomes.inc(decision.outcome)
        if decision.state == "sent":
            self.vapid_rejected_by.discard(origin)
        if decision.vapid_problem and origin not in self.vapid_rejected_by:
            self.vapid_rejected_by.add(origin)  # log once per origin: one problem, not 100,000
            log.error("push service refused our VAPID credentials; check the VAPID subject "
                      "and keys", extra={"origin": origin, "status": reply.status,
                                         "vapid_key": due.vapid_key_id, "answer": reply.text})
        elif decision.log_body:
            log.warning("push service refused a message", extra={
                "origin": origin, "status": reply.status, "answer": reply.text})

