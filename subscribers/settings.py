"""Web Push's settings section (``settings.push``, read with ``settings.part(PushSettings)``).

The names stay flat like every other setting: ``push_ttl`` in the TOML file,
``TICKER_PUSH_TTL`` in the environment. The CLI passes this section to ``load_settings``.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from subscribers.pushclient.endpoints import AllowList
from ticker.settings import Part, StrList

# The public push services a browser may hand us an endpoint on. Anything else is refused
# so that a subscription cannot make the server send requests to arbitrary hosts.
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "web.push.apple.com",
    "*.notify.windows.com",
)


class PushSettings(Part):
    section: ClassVar[str] = "push"

    # The VAPID "sub" claim: mailto: or https:. Empty: invented in demo mode, push off in
    # production.
    vapid_subject: str = ""
    push_allowed_hosts: StrList = DEFAULT_PUSH_HOSTS
    # Topics readers can choose in the prompt; alerts target them.
    push_topics: StrList = Field(default=("breaking", "news", "sport", "business", "culture"),
                                 min_length=1, max_length=50)
    # Seconds a push service keeps an undelivered message. 0 makes it drop the message unless
    # the browser is online right now; 28 days is the most FCM accepts.
    push_ttl: int = Field(default=4 * 3600, ge=1, le=28 * 24 * 3600)
    # A refused prompt is not shown again for this many days (0: ask on the next visit).
    push_prompt_snooze_days: int = Field(default=30, ge=0, le=3650)
    # Subscriptions one client address may create per minute (token bucket, burst = rate).
    # A browser subscribes once; a few per minute covers retries and several devices behind
    # one NAT while stopping a script from filling the table.
    push_subscribe_rate_per_minute: float = Field(default=30.0, gt=0, le=100_000)
    # Requests in flight at once for one node, and open connections per push-service host:
    # enough to hide a push service's latency, few enough not to look like an attack to it.
    # 128 measured ~9% faster than 64 (bench/push.py: larger claim batches per commit);
    # 256 gained nothing more and delayed the first push past 50 ms.
    push_concurrency: int = Field(default=128, ge=1, le=10_000)
    push_connections_per_host: int = Field(default=32, ge=1, le=1024)
    # Helper processes that encrypt pushes (about half of a push's CPU) while the event loop
    # sends; 0 encrypts on the event loop. One roughly doubles throughput on two cores; more
    # than 64 only costs memory.
    push_encrypt_processes: int = Field(default=1, ge=0, le=64)
    # Attempts (first send included) before a 5xx/timeout is given up; never a deletion.
    # Backoff grows per attempt, so 50 already spans days.
    push_max_attempts: int = Field(default=6, ge=1, le=50)
    # Subscribers per audience batch, the unit a process leases and sends. A crash resends
    # the batches it held (at most push_concurrency / push_batch_size + 1 of them): smaller
    # batches mean fewer second copies after a crash, larger ones fewer database writes.
    push_batch_size: int = Field(default=200, ge=1, le=10_000)
    # Seconds a lease on a batch (or a claim on a retry) lasts; a live process renews it every
    # third of that. After a crash its batches are sent again once the lease has run out, so
    # this is how long a crash can delay the rest of an alert; renewal runs beside the sends,
    # so a slow push service never makes a live node lose its lease.
    push_lease_seconds: float = Field(default=30.0, ge=1, le=3600)

    @field_validator("vapid_subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if value and not value.startswith(("mailto:", "https:")):
            raise ValueError("must start with 'mailto:' or 'https:'")
        return value

    @field_validator("push_allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        AllowList.parse(value)
        return value
