"""What a push service's answer means for a subscription (pure): the outcome table.

``decide`` takes the status (None for a timeout or connection error), the ``Retry-After``
header, the attempts made so far and the time, and returns a :class:`Decision`: the delivery
row's next state, when to retry, whether to delete the subscription or pause the host.
No I/O: the engine applies decisions, the tests read the table.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Action(Enum):
    DONE = "done"  # accepted
    DELETE = "delete"  # the subscription is gone for good
    FAIL = "fail"  # this message will never be accepted; keep the subscription
    RETRY = "retry"  # try again later


@dataclass(frozen=True)
class Rule:
    outcome: str  # metric label for this attempt
    action: Action
    pause_host: bool = False  # the whole push service asked us to slow down
    vapid_problem: bool = False  # our credentials were refused: an operator must look
    log_body: bool = False  # the service's answer explains a problem worth logging


RULES: dict[int, Rule] = {
    201: Rule("accepted", Action.DONE),
    202: Rule("accepted", Action.DONE),
    400: Rule("rejected", Action.FAIL, log_body=True),
    401: Rule("vapid_rejected", Action.FAIL, vapid_problem=True, log_body=True),
    403: Rule("vapid_rejected", Action.FAIL, vapid_problem=True, log_body=True),
    404: Rule("gone", Action.DELETE),
    406: Rule("throttled", Action.RETRY, pause_host=True),  # WNS: throttle limit exceeded
    410: Rule("gone", Action.DELETE),
    413: Rule("rejected", Action.FAIL, log_body=True),
    429: Rule("throttled", Action.RETRY, pause_host=True),
    503: Rule("throttled", Action.RETRY, pause_host=True),
}
OTHER_2XX = Rule("accepted", Action.DONE)
OTHER_4XX = Rule("rejected", Action.FAIL, log_body=True)
OTHER_5XX = Rule("server_error", Action.RETRY)
TRANSPORT_ERROR = Rule("network_error", Action.RETRY)

# Final states of a delivery row (besides the outcome names above that end one).
STATE_FOR_ACTION = {Action.DONE: "sent", Action.DELETE: "gone", Action.FAIL: "failed"}

BACKOFF_BASE = 10.0  # seconds before the first retry (before jitter)
BACKOFF_CAP = 1800.0
RETRY_AFTER_CAP = 6 * 3600.0  # a longer wait than this is treated as this


def rule_for(status: int | None) -> Rule:
    if status is None:
        return TRANSPORT_ERROR
    rule = RULES.get(status)
    if rule is not None:
        return rule
    if 200 <= status < 300:
        return OTHER_2XX
    if status >= 500:
        return OTHER_5XX
    return OTHER_4XX


@dataclass(frozen=True)
class Decision:
    outcome: str  # this attempt, for metrics
    state: str  # the delivery row's next state: sent|gone|failed|retry|gave_up|expired
    retry_at: float | None = None
    pause_host_until: float | None = None
    delete_subscription: bool = False
    vapid_problem: bool = False
    log_body: bool = False


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, float(when.timestamp()) - now), RETRY_AFTER_CAP)


def backoff(attempts: int, rand: float) -> float:
    """Exponential backoff with jitter: between half and all of base * 2^(attempts-1)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(0, attempts - 1))
    return ceiling * (0.5 + rand / 2)


def decide(status: int | None, retry_after: str | None, *, attempts: int, now: float,
           max_attempts: int, deadline: float, rand: Callable[[], float]) -> Decision:
    """The decision after attempt number ``attempts`` (1 for the first send) got ``status``.

    ``deadline`` is when the message's TTL runs out: retrying after it is pointless.
    """
    rule = rule_for(status)
    if rule.action is not Action.RETRY:
        return Decision(rule.outcome, STATE_FOR_ACTION[rule.action],
                        delete_subscription=rule.action is Action.DELETE,
                        vapid_problem=rule.vapid_problem, log_body=rule.log_body)
    told = parse_retry_after(retry_after, now) if status is not None else None
    wait = told if told is not None else backoff(attempts, rand())
    retry_at = now + wait
    pause = retry_at if rule.pause_host else None
    if retry_at >= deadline:
        return Decision(rule.outcome, "expired", pause_host_until=pause)
    # A push service that names its own wait is obeyed however many times it asks;
    # our own guesses (5xx, network) are bounded.
    if told is None and attempts >= max_attempts:
        return Decision(rule.outcome, "gave_up", pause_host_until=pause)
    return Decision(rule.outcome, "retry", retry_at=retry_at, pause_host_until=pause)
