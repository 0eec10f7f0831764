"""The delivery engine: works through an alert's due deliveries with a bounded worker pool.

A pass reads due rows page by page into a small queue; ``concurrency`` workers each claim a
row (durably, see :mod:`subscribers.delivery.store`), encrypt, POST on the shared session and
hand the answer to :func:`subscribers.delivery.policy.decide`. Nothing here decides what a status
means, and nothing sleeps on the wall clock: the clock is a parameter, so tests drive
Retry-After and backoff by moving time.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from subscribers import alerts
from subscribers.crypto.encryptor import Encryptor, HelperExited, InlineEncryptor
from subscribers.crypto.vapid import JwtCache, KeyRing
from subscribers.delivery import store as deliveries
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
                 encryptor: Encryptor | None = None) -> None:
        self.db, self.sender, self.keys, self.jwts, self.clock = db, sender, keys, jwts, clock
        self.encryptor: Encryptor = encryptor or InlineEncryptor()
        self.metrics = metrics
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.rand = rand
        self.pauses: dict[str, float] = {}  # push-service origin -> paused until
        self._cancelled: set[int] = set()
        # Push-service origins whose last word on our VAPID credentials was 401/403; shown
        # on /healthz until that origin accepts a message again.
        self.vapid_rejected_by: set[str] = set()

    def cancel(self, alert_id: int) -> None:
        """Stop claiming rows for this alert (the rows themselves are cancelled in SQL)."""
        self._cancelled.add(alert_id)

    async def _job(self, alert_id: int) -> _Job | None:
        row = await alerts.get(self.db, alert_id)
        if row is None or row["status"] != "sending":
            return None
        alert = alerts.alert_from_row(row)
        headers = {"Urgency": alert.urgency, "Content-Encoding": "aes128gcm",
                   "Content-Type": "application/octet-stream"}
        topic = alert.topic()
        if topic:
            headers["Topic"] = topic
        # A scheduled alert's TTL counts from its send_at, not from when it was written.
        start = alert.send_at if alert.send_at is not None else float(row["created_at"])
        return _Job(alert_id, alert.notification(alert_id).encode(), headers,
                    start + alert.ttl)

    async def run_pass(self, alert_id: int) -> SendSummary:
        """Send every delivery of the alert that is due now; returns what happened."""
        summary = SendSummary(alert_id)
        job = await self._job(alert_id)
        if job is None:
            return summary
        started = time.perf_counter()
        queue: asyncio.Queue[Due | None] = asyncio.Queue(maxsize=2 * self.concurrency)
        writer = DeliveryWriter(self.db, alert_id, self.clock)
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
        summary.seconds = time.perf_counter() - started
        if summary.states:
            log.info("push pass", extra={"alert": alert_id, "outcomes": dict(summary.outcomes),
                                         "states": dict(summary.states),
                                         "seconds": round(summary.seconds, 3),
                                         "transactions": writer.transactions})
        return summary

    async def run_alert(self, alert_id: int) -> SendSummary:
        """Passes until nothing is left, sleeping (on the clock) until retries are due."""
        total = SendSummary(alert_id)
        while alert_id not in self._cancelled:
            done = await self.run_pass(alert_id)
            total.merge(done)
            if done.states.get("deferred"):
                await self.clock.sleep(DEFERRED_PAUSE)
            due = await deliveries.next_due(self.db, alert_id)
            if due is None:
                await alerts.finish_if_done(self.db, alert_id, self.clock.now())
                break
            await self.clock.sleep(max(0.0, due - self.clock.now()))
        return total

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
                await self._deliver(job, due, writer, summary)

    async def _deliver(self, job: _Job, due: Due, writer: DeliveryWriter,
                       summary: SendSummary) -> None:
        origin = origin_of(due.endpoint)
        now = self.clock.now()
        paused = self.pauses.get(origin, 0.0)
        if paused > now:  # the service asked us to wait: not an attempt
            state = "expired" if paused >= job.deadline else "retry"
            writer.result(Result(due.subscription_id, state, due.attempts, paused, None,
                                 claimed=False))
            summary.states[state] += 1
            return
        key = await self.keys.get(due.vapid_key_id)
        headers = {"Authorization": self.jwts.authorization(origin, key),
                   "TTL": str(max(1, int(job.deadline - now))), **job.headers}
        # Encrypt first, then wait for the claim: the CPU-heavy step overlaps the claim's
        # group commit instead of following it. The request still leaves only once its
        # claim is durable; a claim lost to another node costs one wasted encryption.
        try:
            body = await self.encryptor.encrypt(job.payload, _key_bytes(due.p256dh),
                                                _key_bytes(due.auth))
        except ValueError as exc:
            # Stored keys that are not a P-256 point: no message can ever reach this
            # subscriber, so it fails (once) rather than failing the pass for everyone.
            log.warning("subscription keys unusable", extra={
                "subscription": due.subscription_id, "error": str(exc)})
            writer.result(Result(due.subscription_id, "failed", due.attempts, now, None,
                                 claimed=False))
            summary.states["failed"] += 1
            return
        except HelperExited as exc:
            # The encryption helper died (and is being replaced). Nothing was claimed or
            # sent: the delivery stays due and the next pass takes it. Logged once a pass,
            # not once for each of the thousands of deliveries behind it.
            if not summary.states["deferred"]:
                log.warning("encryption unavailable; deliveries left for the next pass",
                            extra={"alert": job.alert_id, "error": str(exc)})
            summary.states["deferred"] += 1
            return
        if not await writer.claim(due.subscription_id):
            return  # not ours to send (another node, cancelled, or no longer due)
        reply = await self.sender.post(due.endpoint, headers, body)
        attempts = due.attempts + 1
        decision = decide(reply.status, reply.retry_after, attempts=attempts,
                          now=self.clock.now(), max_attempts=self.max_attempts,
                          deadline=job.deadline, rand=self.rand)
        self._apply(origin, due, reply, decision)
        writer.result(Result(due.subscription_id, decision.state, attempts,
                             decision.retry_at or self.clock.now(), reply.status,
                             decision.delete_subscription))
        summary.outcomes[decision.outcome] += 1
        summary.states[decision.state] += 1

    def _apply(self, origin: str, due: Due, reply: Reply, decision: Decision) -> None:
        if decision.pause_host_until is not None:
            self.pauses[origin] = max(self.pauses.get(origin, 0.0), decision.pause_host_until)
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
