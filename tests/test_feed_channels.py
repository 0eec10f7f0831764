"""The feed core without sockets: offsets, bounded history, resume and latest values."""

from __future__ import annotations

import json

import pytest

from ticker.feed import names, session
from ticker.feed.channels import Channel, Hub, Message, Position


class ListSink:
    def __init__(self) -> None:
        self.got: list[Message] = []

    def deliver(self, msg: Message) -> None:
        self.got.append(msg)


def stream(max_size: int = 5, max_age: float = 100.0) -> Channel:
    return Channel("headlines", latest=False, max_size=max_size, max_age=max_age, epoch="e1")


def test_offsets_rise_by_one_per_message_within_an_epoch() -> None:
    ch = stream()
    offsets = [ch.append({"n": i}, now=0).offset for i in range(3)]
    assert offsets == [1, 2, 3]
    assert ch.position == Position("e1", 3)


@pytest.mark.parametrize(
    ("since", "recovered", "offsets", "stands_at"),
    [
        (None, True, [], 7),  # a new subscriber of a stream starts at the head
        (Position("e1", 7), True, [], 7),  # up to date
        (Position("e1", 5), True, [6, 7], 5),  # missed two, both in history
        (Position("e1", 2), True, [3, 4, 5, 6, 7], 2),  # exactly the oldest kept
        (Position("e1", 1), False, [], 7),  # older than history reaches
        (Position("e0", 5), False, [], 7),  # another epoch (a restart)
        (Position("e1", 9), False, [], 7),  # from the future
        (Position("e1", -1), False, [], 7),
    ],
)
def test_resume_gives_exactly_the_missed_messages_or_says_it_cannot(
    since: Position | None, recovered: bool, offsets: list[int], stands_at: int
) -> None:
    ch = stream(max_size=5)
    for i in range(7):
        ch.append({"n": i}, now=0)
    rec = ch.since(since, now=0)
    assert rec.recovered is recovered
    assert [m.offset for m in rec.messages] == offsets
    assert rec.offset == stands_at


def test_history_is_bounded_by_age() -> None:
    ch = stream(max_size=100, max_age=10)
    ch.append({"n": 1}, now=0)
    ch.append({"n": 2}, now=5)
    ch.append({"n": 3}, now=12)
    assert [m.offset for m in ch.recent(10)] == [2, 3]
    assert ch.since(Position("e1", 1), now=12).recovered is True
    assert ch.since(Position("e1", 0), now=12).recovered is False


def test_latest_channel_keeps_and_hands_out_its_current_value_even_when_old() -> None:
    ch = Channel("clock", latest=True, max_size=3, max_age=1, epoch="c")
    ch.append({"t": 1}, now=0)
    ch.append({"t": 2}, now=0)
    fresh = ch.since(None, now=1000)
    assert [m.data for m in fresh.messages] == [{"t": 2}]
    assert fresh.offset == 1  # the value that follows is offset 2
    stale = ch.since(Position("other", 1), now=1000)
    assert stale.recovered is False and [m.offset for m in stale.messages] == [2]


def test_hub_broadcast_reaches_every_subscriber_once_and_encodes_once() -> None:
    hub = Hub(["headlines", "clock"], max_size=10, max_age=60, clock=lambda: 0.0)
    sinks = [ListSink() for _ in range(3)]
    for sink in sinks:
        hub.subscribe("headlines", sink, None)
    msg, count = hub.publish("headlines", {"title": "A"})
    assert count == 3
    assert all(s.got == [msg] for s in sinks)
    assert msg.ws_frame is msg.ws_frame  # cached: one serialisation per broadcast
    assert json.loads(msg.json) == {"type": "message", "channel": "headlines",
                                    "epoch": msg.epoch, "offset": 1, "data": {"title": "A"}}
    hub.unsubscribe("headlines", sinks[0])
    hub.publish("headlines", {"title": "B"})
    assert len(sinks[0].got) == 1 and len(sinks[1].got) == 2


def test_ws_frame_header_encodes_payload_length_for_every_size_class() -> None:
    from ticker.feed.wire import ws_text_frame

    assert ws_text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert ws_text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert ws_text_frame(b"x" * 70000)[:2] == b"\x81\x7f"
    assert len(ws_text_frame(b"x" * 70000)) == 70000 + 10


@pytest.mark.parametrize(("name", "ok"), [
    ("clock", True), ("data:covid19", True), ("a" * 64, True), ("a" * 65, False),
    ("Headlines", False), ("-x", False), ("", False), ("headlines\n", False), ("a b", False),
])
def test_one_rule_decides_what_a_channel_name_is(name: str, ok: bool) -> None:
    assert names.is_channel_name(name) is ok
    assert (names.CHANNEL_RE.match(name) is not None) is ok
    assert session.CHANNEL_RE is names.CHANNEL_RE  # the old import path still works


def test_the_registry_knows_the_kinds_and_every_source_name_makes_a_channel_name() -> None:
    assert names.feed_channels(["covid19"]) == ["clock", "headlines", "breaking",
                                                "console:alerts", "data:covid19"]
    assert [names.is_latest(n) for n in names.feed_channels(["x"])] == [
        True, False, True, False, True]
    assert [names.is_private(n) for n in names.feed_channels(["x"])] == [
        False, False, False, True, False]
    longest = "s" * 59
    assert names.SOURCE_NAME_RE.match(longest) and not names.SOURCE_NAME_RE.match(longest + "s")
    assert names.is_channel_name(names.data_channel(longest))
    assert not names.SOURCE_NAME_RE.match("a:b")  # the colon separates kind from name


@pytest.mark.parametrize(
    ("epoch", "offset", "taken", "history", "resume_from_3"),
    [
        ("e1", 4, True, [1, 2, 3, 4], True),  # the next one: history grows
        ("e1", 3, False, [1, 2, 3], True),  # a duplicate (pub/sub and stream both gave it)
        ("e1", 1, False, [1, 2, 3], True),  # an old one
        ("e1", 6, True, [6], False),  # a hole (4, 5 never came): history restarts after it
        ("e2", 1, True, [1], False),  # a new numbering (the broker lost its data)
    ],
)
def test_a_broker_numbered_message_is_taken_once_and_a_hole_is_never_papered_over(
    epoch: str, offset: int, taken: bool, history: list[int], resume_from_3: bool
) -> None:
    ch = stream(max_size=10)
    for i in range(1, 4):
        assert ch.accept("e1", i, {"n": i}, ts=0) is not None
    msg = ch.accept(epoch, offset, {"n": offset}, ts=0)
    assert (msg is not None) is taken
    assert [m.offset for m in ch.recent(10)] == history
    assert ch.since(Position("e1", 3), now=0).recovered is resume_from_3


def test_a_channel_restored_from_storage_resumes_in_its_old_epoch() -> None:
    old = stream()
    for i in range(4):
        old.append({"n": i}, now=0)
    new = stream()
    new.epoch = "other"
    new.restore("e1", 4, old.recent(10))
    rec = new.since(Position("e1", 2), now=0)
    assert rec.recovered and [m.offset for m in rec.messages] == [3, 4]
    assert new.append({"n": 9}, now=0).offset == 5


def test_skipping_to_the_head_forgets_history_that_no_longer_leads_there() -> None:
    ch = stream()
    for i in range(1, 3):
        ch.accept("e1", i, {"n": i}, ts=0)
    ch.skip_to("e1", 9)
    assert ch.position == Position("e1", 9) and ch.recent(10) == []
    assert ch.since(Position("e1", 2), now=0).recovered is False
    assert ch.since(Position("e1", 9), now=0).recovered is True


def test_the_hub_hands_a_broker_message_to_subscribers_once() -> None:
    hub = Hub(["headlines"], max_size=10, max_age=100, clock=lambda: 0.0)
    sink = ListSink()
    hub.subscribe("headlines", sink, None)  # type: ignore[arg-type]
    epoch = hub.channels["headlines"].epoch
    hub.accept("headlines", epoch, 1, {"n": 1}, 0.0)
    hub.accept("headlines", epoch, 1, {"n": 1}, 0.0)
    hub.accept("headlines:en", epoch, 1, {"n": 1}, 0.0)  # made on first use, no subscriber
    assert hub.accept("nope", epoch, 1, {}, 0.0) is None  # a channel this node lacks
    assert [m.offset for m in sink.got] == [1]
    assert "headlines:en" in hub.channels
