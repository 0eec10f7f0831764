"""One client's session without sockets: the protocol's answers to good and bad frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ticker.feed import wire
from ticker.feed.channels import Hub, Message, Position
from ticker.feed.session import Reply, Session


class ListSink:
    def __init__(self) -> None:
        self.got: list[Message] = []

    def deliver(self, msg: Message) -> None:
        self.got.append(msg)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def make(rate: float = 20.0) -> tuple[Hub, Session, ListSink, FakeClock]:
    hub = Hub(["clock", "headlines"], max_size=10, max_age=60, clock=lambda: 0.0)
    sink = ListSink()
    clock = FakeClock()
    return hub, Session(hub, sink, rate=rate, now=clock, wall_ms=lambda: 1234), sink, clock


def frames(reply: Reply) -> list[dict[str, Any]]:
    return [json.loads(x if isinstance(x, bytes) else x.json) for x in reply.out]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "invalid_request"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe"}', "invalid_request"),
        ('{"type": "subscribe", "channels": []}', "invalid_request"),
        ('{"type": "subscribe", "channels": [1]}', "invalid_request"),
        ('{"type": "subscribe", "channels": ["Nope!"]}', "invalid_channel"),
        ('{"type": "subscribe", "channels": ["weather"]}', "unknown_channel"),
        ('{"type": "subscribe", "channels": ["headlines"], "since": []}', "invalid_request"),
        ('{"type": "subscribe", "channels": ["headlines"], "since": {"headlines": 3}}',
         "invalid_request"),
    ],
)
def test_bad_frames_get_an_error_message_and_the_session_stays_open(text: str, code: str) -> None:
    _hub, session, _sink, _clock = make()
    reply = session.handle(text)
    assert reply.close is None
    assert [f["code"] for f in frames(reply)] == [code]
    assert all(f["type"] == "error" for f in frames(reply))


def test_subscribe_to_a_latest_channel_sends_subscribed_then_the_current_value() -> None:
    hub, session, _sink, _clock = make()
    hub.publish("clock", {"iso": "x"})
    out = frames(session.handle('{"type":"subscribe","channels":["clock","headlines"]}'))
    assert [(f["type"], f["channel"]) for f in out] == [
        ("subscribed", "clock"), ("message", "clock"), ("subscribed", "headlines")]
    assert out[0]["offset"] == 0 and out[1]["offset"] == 1 and out[0]["recovered"] is True


def test_one_bad_channel_does_not_spoil_the_good_ones_in_the_same_frame() -> None:
    hub, session, sink, _clock = make()
    out = frames(session.handle('{"type":"subscribe","channels":["weather","headlines"]}'))
    assert [f["type"] for f in out] == ["error", "subscribed"]
    hub.publish("headlines", {"title": "A"})
    assert len(sink.got) == 1


def test_resume_replays_missed_messages_in_order_with_recovered_true() -> None:
    hub, session, _sink, _clock = make()
    first, _ = hub.publish("headlines", {"n": 1})
    for n in (2, 3):
        hub.publish("headlines", {"n": n})
    since = {"headlines": {"epoch": first.epoch, "offset": 1}}
    out = frames(session.handle(json.dumps(
        {"type": "subscribe", "channels": ["headlines"], "since": since})))
    assert out[0] == {"type": "subscribed", "channel": "headlines", "epoch": first.epoch,
                      "offset": 1, "recovered": True}
    assert [f["data"]["n"] for f in out[1:]] == [2, 3]


def test_unsubscribe_stops_delivery() -> None:
    hub, session, sink, _clock = make()
    session.handle('{"type":"subscribe","channels":["headlines"]}')
    out = frames(session.handle('{"type":"unsubscribe","channels":["headlines"]}'))
    assert out == [{"type": "unsubscribed", "channel": "headlines"}]
    hub.publish("headlines", {"n": 1})
    assert sink.got == []


def test_time_exchange_echoes_t0_with_server_milliseconds() -> None:
    _hub, session, _sink, _clock = make()
    assert frames(session.handle('{"type":"time","t0":99}')) == [
        {"type": "time", "t0": 99, "server": 1234}]


def test_a_flood_of_frames_closes_with_policy_violation_but_a_steady_rate_does_not() -> None:
    _hub, session, _sink, clock = make(rate=10)
    for _ in range(200):  # 10/s for 20 s: always within the rate
        clock.t += 0.1
        assert session.handle('{"type":"ping"}').close is None
    closes = [session.handle('{"type":"ping"}').close for _ in range(50)]  # all at once
    assert wire.CLOSE_POLICY in closes


def test_closing_the_session_unsubscribes_everywhere() -> None:
    hub, session, _sink, _clock = make()
    session.handle('{"type":"subscribe","channels":["clock","headlines"]}')
    assert hub.subscriber_count() == 2
    session.close()
    assert hub.subscriber_count() == 0


@pytest.mark.parametrize("kind", ["binary", "control"])
def test_binary_and_control_frames_count_against_the_rate(kind: str) -> None:
    _hub, session, _sink, _clock = make(rate=10)
    handle = session.handle_binary if kind == "binary" else session.handle_control
    closes = [handle().close for _ in range(50)]  # all at once
    assert closes[:20] == [None] * 20 and wire.CLOSE_POLICY in closes


def test_a_frame_naming_more_channels_than_a_session_holds_gets_one_error() -> None:
    _hub, session, _sink, _clock = make()
    reply = session.handle(json.dumps({"type": "subscribe",
                                       "channels": [f"n{i}" for i in range(65)]}))
    assert [f["code"] for f in frames(reply)] == ["invalid_request"]


def test_errors_of_one_frame_are_capped_and_the_rest_counted_in_one_more() -> None:
    _hub, session, _sink, _clock = make()
    reply = session.handle(json.dumps({"type": "subscribe",
                                       "channels": [f"n{i}" for i in range(10)]}))
    out = frames(reply)
    assert [f["code"] for f in out] == ["unknown_channel"] * 3 + ["too_many_errors"]
    assert out[-1]["count"] == 7
    assert reply.errors == ["unknown_channel"] * 10  # all counted for the metrics


def test_errors_per_second_are_capped_and_come_back_with_time() -> None:
    _hub, session, _sink, clock = make(rate=1000)
    sent = [len(frames(session.handle('{"type":"dance"}'))) for _ in range(30)]
    assert sum(sent) == 10  # the burst, then nothing until time passes
    clock.t += 1.0
    assert len(frames(session.handle('{"type":"dance"}'))) == 1


def test_a_subscribe_reports_where_each_channel_stands_for_the_sse_event_ids() -> None:
    hub, session, _sink, _clock = make()
    first, _ = hub.publish("headlines", {"n": 1})
    hub.publish("headlines", {"n": 2})
    reply = session.dispatch({"type": "subscribe", "channels": ["clock", "headlines"],
                              "since": {"headlines": {"epoch": first.epoch, "offset": 1}}})
    assert reply.positions == {"clock": Position(hub.channels["clock"].epoch, 0),
                               "headlines": Position(first.epoch, 1)}
