"""Audience batches, the pure part: what a batch's result holds, which outcomes need a
delivery row, when a lease is free, how many batches one node holds, and an alert's counts.

A batch is a keyset range of subscription ids (``first_id < id <= last_id``) cut from an
alert's audience as sending advances. A node leases it, sends it, then writes in one
transaction the batch's result counts and a delivery row for each subscriber that needs
one. Storage is :mod:`subscribers.delivery.batchstore`; this module has no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

# Delivery states after a send that keep a row: a retry must be found again, and a final
# failure is kept for the editor to see. "sent" is only counted. "gone" is only counted
# too: its subscription is deleted with every row that names it.
ROW_STATES = frozenset({"retry", "failed", "gave_up", "expired"})
# Row states that end in a failure, for the ``failed`` count.
FAILED_STATES = ("failed", "gave_up", "expired")
OPEN_ROW_STATES = ("pending", "retry", "sending")
COUNT_KEYS = ("targeted", "accepted", "failed", "pruned", "retried")


def needs_row(state: str) -> bool:
    """Whether a delivery that ended a send in ``state`` gets an ``alert_deliveries`` row."""
    return state in ROW_STATES


def lease_is_free(state: str, lease_until: float | None, now: float) -> bool:
    """Whether a node may lease this cut batch now (batchstore's lease SQL says the same).

    Never while another node's lease runs: a live node renews its leases, so only a node
    that stopped (a crash, a kill) lets one run out, and then its batch is sent again.
    """
    return state == "leased" and lease_until is not None and lease_until <= now


def batches_in_flight(concurrency: int, batch_size: int) -> int:
    """Batches one node holds at once for an alert: enough to keep ``concurrency`` requests
    busy while the last one's slowest answers come back, one more to refill early."""
    return -(-concurrency // batch_size) + 1


def in_flight_window(concurrency: int, batch_size: int) -> int:
    """At most this many subscribers of one alert get a second copy when a node dies: every
    subscriber of the batches it holds (their results are written when a batch ends)."""
    return batches_in_flight(concurrency, batch_size) * batch_size


@dataclass
class Tally:
    """What one send of a batch did, subscriber by subscriber, until it is written."""

    targeted: int
    states: Counter[str] = field(default_factory=Counter)
    rows: dict[int, tuple[str, int, float, int | None]] = field(default_factory=dict)
    pruned_ids: list[int] = field(default_factory=list)

    def add(self, subscription_id: int, state: str, attempts: int, next_attempt_at: float,
            last_status: int | None, delete_subscription: bool = False) -> None:
        self.states[state] += 1
        if delete_subscription:
            self.pruned_ids.append(subscription_id)
        elif needs_row(state):
            self.rows[subscription_id] = (state, attempts, next_attempt_at, last_status)

    def result(self, cancelled: int = 0) -> dict[str, int]:
        """The batch's counts as stored: every targeted subscriber lands in one of them,
        except those that left between the cut and the send (and, for a batch sent again,
        those whose row a former send wrote, counted by their rows)."""
        return {"accepted": self.states["sent"], "pruned": self.states["gone"],
                "retried": self.states["retry"],
                "failed": sum(self.states[s] for s in FAILED_STATES), "cancelled": cancelled}


def alert_counts(batches: Mapping[str, int], rows: Mapping[str, int], pending: int,
                 targeted: int) -> dict[str, int]:
    """An alert's ``counts``: the legacy per-state keys and the exact totals (pure).

    ``batches``: sums over its batches (targeted, accepted, pruned, retried, failed,
    cancelled); ``rows``: delivery rows (and outcomes of removed subscriptions) by state;
    ``pending``: targeted subscribers of batches not yet written; ``targeted``: the
    audience cut so far (with the rows of an alert from before batches). A delivery that went to
    ``retry`` in its batch has a row whose state says how it ended; the batch's ``failed``
    counted rows too, so the totals take failures from the rows only.
    """
    states: Counter[str] = Counter({k: v for k, v in rows.items() if v})
    states["sent"] += batches.get("accepted", 0)
    states["gone"] += batches.get("pruned", 0)
    states["cancelled"] += batches.get("cancelled", 0)
    states["pending"] += pending
    counts = {k: v for k, v in states.items() if v}
    counts.update({
        "targeted": targeted,
        "accepted": states["sent"], "pruned": states["gone"],
        "failed": sum(states[s] for s in FAILED_STATES),
        "retried": batches.get("retried", 0)})
    return counts
