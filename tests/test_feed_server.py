"""The live feed through a real ``ticker serve`` process and real sockets."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
import pytest
import websockets
from yarl import URL

from tests.origin import VALUES, Origin
from tests.support import ServerProcess


async def recv_json(ws: Any, wait: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))  # type: ignore[no-any-return]


async def publish(server: ServerProcess, data: dict[str, Any], channel: str = "headlines",
                  token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token or server.token}"}  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http, http.post(
        f"{server.url}/api/channels/{channel}/messages", json={"data": data}, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def until_type(ws: Any, kind: str, channel: str | None = None) -> dict[str, Any]:
    while True:
        frame = await recv_json(ws)
        if frame["type"] == kind and (channel is None or frame.get("channel") == channel):
            return frame


async def test_subscriber_gets_latest_values_then_a_published_headline_within_a_second(
    server_factory: Any, origin: Origin
) -> None:
    config = (f'feeds_allow_private = ["{URL(origin.url).origin()}"]\n'  # a loopback origin
              f'[[sources]]\nname = "covid19"\nurl = "{origin.url}"\n'
              'format = "jhu-csse-daily"\nattribution = "JHU CSSE"\n')
    server = server_factory(config=config)
    server.token = server.create_token()
    await asyncio.to_thread(server.start)  # the origin answers on this loop meanwhile
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe",
                                  "channels": ["clock", "headlines", "data:covid19"]}))
        sub_clock, clock, sub_headlines, sub_data, data = [await recv_json(ws) for _ in range(5)]
        assert sub_clock["type"] == "subscribed" and sub_clock["channel"] == "clock"
        assert clock["type"] == "message" and clock["data"]["zone"] == "GMT"
        assert abs(clock["data"]["ms"] - time.time() * 1000) < 65_000
        assert clock["data"]["iso"].endswith("Z")
        assert sub_headlines["channel"] == "headlines" and sub_headlines["recovered"] is True
        assert sub_data["channel"] == data["channel"] == "data:covid19"
        assert data["data"]["values"] == VALUES
        assert (data["data"]["attribution"], data["data"]["stale"]) == ("JHU CSSE", False)

        started = time.monotonic()
        status, body = await publish(server, {"title": "Flood warning", "url": "https://n.example/1"})
        assert status == 201
        msg = await until_type(ws, "message", "headlines")
        assert time.monotonic() - started < 1.0
        assert msg["data"]["title"] == "Flood warning"
        assert msg["offset"] == body["offset"] == sub_headlines["offset"] + 1


async def test_time_exchange_reports_server_milliseconds(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "time", "t0": 5}))
        reply = await recv_json(ws)
    assert reply["t0"] == 5 and abs(reply["server"] - time.time() * 1000) < 5000


async def test_resume_after_disconnect_delivers_exactly_the_missed_messages_in_order(
    server: ServerProcess,
) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
        await publish(server, {"title": "seen"})
        await until_type(ws, "subscribed")
        seen = await until_type(ws, "message")
    for n in range(5):
        await publish(server, {"title": f"missed {n}"})
    since = {"headlines": {"epoch": seen["epoch"], "offset": seen["offset"]}}
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"], "since": since}))
        sub = await recv_json(ws)
        replay = [await recv_json(ws) for _ in range(5)]
        await publish(server, {"title": "live"})
        live = await recv_json(ws)
    assert sub["recovered"] is True and sub["offset"] == seen["offset"]
    assert [m["data"]["title"] for m in replay] == [f"missed {n}" for n in range(5)]
    assert [m["offset"] for m in replay] == list(range(seen["offset"] + 1, seen["offset"] + 6))
    assert live["data"]["title"] == "live" and live["offset"] == seen["offset"] + 6


async def test_resume_from_before_history_says_recovered_false(server_factory: Any) -> None:
    server = server_factory(env={"TICKER_HISTORY_SIZE": "3"})
    server.token = server.create_token()
    server.start()
    _, first = await publish(server, {"title": "0"})
    for n in range(5):
        await publish(server, {"title": str(n + 1)})
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"], "since": {
            "headlines": {"epoch": first["epoch"], "offset": first["offset"]}}}))
        sub = await recv_json(ws)
    assert sub["recovered"] is False and sub["offset"] == first["offset"] + 5
    async with aiohttp.ClientSession() as http, http.get(
        f"{server.url}/api/channels/headlines/messages?limit=10"
    ) as resp:
        history = await resp.json()
    assert [m["data"]["title"] for m in history["messages"]] == ["3", "4", "5"]


async def test_a_restarted_server_resumes_a_client_with_recovered_true_and_what_it_missed(
    server: ServerProcess,
) -> None:
    _, seen = await publish(server, {"title": "seen before the restart"})
    _, _missed = await publish(server, {"title": "missed before the restart"})
    server.restart()
    _, after = await publish(server, {"title": "after the restart"})
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"], "since": {
            "headlines": {"epoch": seen["epoch"], "offset": seen["offset"]}}}))
        sub = await recv_json(ws)
        replay = [await recv_json(ws) for _ in range(2)]
    assert sub["recovered"] is True and sub["epoch"] == seen["epoch"]
    assert [m["data"]["title"] for m in replay] == ["missed before the restart",
                                                    "after the restart"]
    assert [m["offset"] for m in replay] == [seen["offset"] + 1, after["offset"]]


async def test_after_a_crash_clients_are_told_recovered_false_in_a_new_epoch(
    server: ServerProcess,
) -> None:
    _, body = await publish(server, {"title": "before the crash"})
    await asyncio.sleep(0.5)  # flushed: what a crash loses is only the last ~100 ms
    server.kill()
    server.start()
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"], "since": {
            "headlines": {"epoch": body["epoch"], "offset": body["offset"]}}}))
        sub = await recv_json(ws)
    # Messages published after the last flush may have reached clients and are gone: the new
    # numbering must not hand a client new messages under offsets it already saw.
    assert sub["recovered"] is False and sub["epoch"] != body["epoch"]
    async with aiohttp.ClientSession() as http, http.get(
        f"{server.url}/api/channels/headlines/messages?limit=10"
    ) as resp:
        history = await resp.json()
    assert [m["data"]["title"] for m in history["messages"]] == ["before the crash"]


# --------------------------------------------------------------------------- SSE


async def read_sse(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    """Parse ``count`` events (id + JSON data) from a text/event-stream response."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    while len(events) < count:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            events.append(current)
            current = {}
    return events


async def test_sse_streams_messages_and_resumes_with_last_event_id(server: ServerProcess) -> None:
    url = f"{server.url}/sse?channels=headlines"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            (sub,) = await read_sse(resp, 1)
            assert sub["data"]["type"] == "subscribed"
            await publish(server, {"title": "one"})
            (one,) = await read_sse(resp, 1)
        assert one["id"] == f"{one['data']['epoch']}:{one['data']['offset']}"
        for title in ("two", "three"):
            await publish(server, {"title": title})
        async with http.get(url, headers={"Last-Event-ID": one["id"]}) as resp:
            sub, two, three = await read_sse(resp, 3)
        assert sub["data"]["recovered"] is True
        assert [two["data"]["data"]["title"], three["data"]["data"]["title"]] == ["two", "three"]
        assert three["id"] == f"{one['data']['epoch']}:{one['data']['offset'] + 2}"

        async with http.get(url, headers={"Last-Event-ID": "deadbeef:3"}) as resp:
            (sub,) = await read_sse(resp, 1)
        assert sub["data"]["recovered"] is False


async def test_sse_id_carries_every_channel_position(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http, http.get(
        f"{server.url}/sse?channels=clock,headlines"
    ) as resp:
        events = await read_sse(resp, 3)  # subscribed clock, clock value, subscribed headlines
        await publish(server, {"title": "x"})
        (msg,) = await read_sse(resp, 1)
    clock = events[1]["data"]
    assert msg["id"] == f"{clock['epoch']}:{clock['offset']},{msg['data']['epoch']}:1"


async def test_sse_refuses_unknown_channels_with_a_json_error(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/sse?channels=weather") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "unknown_channel"
        async with http.get(f"{server.url}/sse") as resp:
            assert resp.status == 400


@pytest.mark.parametrize(("channels", "status", "code"), [
    ("UP", 400, "invalid_channel"),
    ("nope,weather", 404, "unknown_channel"),
    (",".join(f"n{i}" for i in range(65)), 400, "invalid_request"),
])
async def test_sse_refuses_what_the_websocket_session_refuses_with_the_same_code(
    server: ServerProcess, channels: str, status: int, code: str,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/sse?channels={channels}") as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
        # nothing stayed subscribed from the refused request
        assert await metric(server, 'ticker_connections{transport="sse"}') == 0


@pytest.mark.parametrize(("channels", "code"), [
    ("headlines,UP", "invalid_channel"),
    ("headlines,nope", "unknown_channel"),
])
async def test_sse_streams_the_channels_it_has_and_sends_the_refusals_as_error_events(
    server: ServerProcess, channels: str, code: str,
) -> None:
    # As on /ws: one channel this server lacks must not cost a widget the others (a 4xx
    # would end an EventSource for good).
    async with (aiohttp.ClientSession() as http,
                http.get(f"{server.url}/sse?channels={channels}") as resp):
        assert resp.status == 200
        subscribed, error = await read_sse(resp, 2)
        assert subscribed["data"]["type"] == "subscribed"
        assert subscribed["data"]["channel"] == "headlines"
        assert (error["data"]["type"], error["data"]["code"]) == ("error", code)
        status, _ = await publish(server, {"title": "still live"})
        assert status == 201
        (msg,) = await read_sse(resp, 1)
        assert msg["data"]["data"]["title"] == "still live"


async def test_sse_allows_any_origin_on_the_stream_and_answers_a_preflight(
    server: ServerProcess,
) -> None:
    origin = {"Origin": "https://news.example"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/sse?channels=clock", headers=origin) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            sub, clock = await read_sse(resp, 2)
        assert (sub["data"]["type"], clock["data"]["channel"]) == ("subscribed", "clock")
        async with http.options(f"{server.url}/sse?channels=clock", headers={
            **origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        }) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "last-event-id" in resp.headers["Access-Control-Allow-Headers"].lower()


async def test_sse_messages_published_while_the_stream_starts_follow_the_replay_in_order(
    server: ServerProcess,
) -> None:
    _, first = await publish(server, {"title": "0"})
    for n in range(1, 4):
        await publish(server, {"title": str(n)})
    url = f"{server.url}/sse?channels=headlines"
    async with aiohttp.ClientSession() as http, http.get(
        url, headers={"Last-Event-ID": f"{first['epoch']}:1"}
    ) as resp:
        publishing = asyncio.gather(*(publish(server, {"title": str(n)}) for n in range(4, 8)))
        sub, *events = await read_sse(resp, 8)
        await publishing
    assert sub["data"]["recovered"] is True
    assert [e["data"]["offset"] for e in events] == list(range(2, 9))


# --------------------------------------------------------------------------- bad input


async def test_bad_frames_get_documented_errors_and_the_server_keeps_serving(
    server: ServerProcess,
) -> None:
    async with websockets.connect(server.ws_url) as ws:
        for text, code in [("{oops", "bad_json"), ('{"type":"x"}', "unknown_type"),
                           ('{"type":"subscribe","channels":["nope"]}', "unknown_channel"),
                           ('{"type":"subscribe","channels":["UP"]}', "invalid_channel")]:
            await ws.send(text)
            frame = await recv_json(ws)
            assert (frame["type"], frame["code"]) == ("error", code)
        await ws.send(b"\x00binary")
        assert (await recv_json(ws))["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "time", "t0": 1}))
        assert (await recv_json(ws))["type"] == "time"  # still open after small mistakes


async def test_oversize_frame_closes_with_1009(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url, max_size=None) as ws:
        await ws.send("x" * (70 * 1024))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_flood_of_frames_closes_with_1008(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            for _ in range(500):
                await ws.send('{"type":"ping"}')
            while True:
                await recv_json(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008


@pytest.mark.parametrize("kind", ["binary", "ping", "pong"])
async def test_a_flood_of_binary_frames_pings_or_pongs_closes_with_1008(
    server: ServerProcess, kind: str,
) -> None:
    """Every client frame counts against the rate, not only text: with ``autoping=False``
    each ping reaches the handler, which would otherwise answer every one of them."""
    replies = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(
        server.ws_url, autoping=False, autoclose=False,
    ) as ws:
        send = {"binary": lambda: ws.send_bytes(b"\x00"), "ping": lambda: ws.ping(b"p"),
                "pong": lambda: ws.pong(b"p")}[kind]
        for _ in range(2000):
            await send()
        while True:
            msg = await asyncio.wait_for(ws.receive(), 10)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
            replies += 1
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008
    assert replies <= 60  # the burst allowance, not one reply per frame


async def frames_until_time_reply(ws: Any) -> list[bytes]:
    """Every frame the server sends until it answers a ``time`` request sent now."""
    await ws.send(json.dumps({"type": "time", "t0": "marker"}))
    got = []
    while True:
        raw = await asyncio.wait_for(ws.recv(), 5)
        frame = json.loads(raw)
        if frame.get("type") == "time" and frame.get("t0") == "marker":
            return got
        got.append(raw.encode() if isinstance(raw, str) else raw)


async def test_a_frame_naming_more_channels_than_a_session_holds_gets_one_error(
    server: ServerProcess,
) -> None:
    text = json.dumps({"type": "subscribe", "channels": [f"n{i}" for i in range(5000)]})
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(text)
        out = await frames_until_time_reply(ws)
    assert [json.loads(f)["code"] for f in out] == ["invalid_request"]
    assert sum(map(len, out)) < 300 < len(text)


async def test_errors_for_unknown_channels_are_capped_per_frame_and_per_second(
    server: ServerProcess,
) -> None:
    # 64 one-letter unknown names: within the session's limit, each one an error
    text = json.dumps({"type": "subscribe", "channels": [f"{c}" for c in
                                                          "abcdefghijklmnopqrstuvwxyz"] +
                       [f"z{i}" for i in range(38)]})
    sent = received = 0
    async with websockets.connect(server.ws_url) as ws:
        for _ in range(15):
            await ws.send(text)
            sent += len(text)
        out = await frames_until_time_reply(ws)
        received = sum(map(len, out))
    codes = {json.loads(f)["code"] for f in out}
    assert codes <= {"unknown_channel", "too_many_errors"}
    assert received <= sent, (received, sent)
    assert received < 15 * 1024  # a small constant, whatever the frames name


@pytest.mark.parametrize(
    ("channel", "body", "auth", "status", "code"),
    [
        ("headlines", {"data": {"title": "x"}}, None, 401, "unauthorized"),
        ("headlines", {"data": {"title": "x"}}, "tk_wrong", 401, "unauthorized"),
        ("headlines", {"data": {"title": ""}}, "good", 400, "invalid_message"),
        ("headlines", {"data": "text"}, "good", 400, "invalid_message"),
        ("headlines", {"title": "no data key"}, "good", 400, "invalid_message"),
        ("clock", {"data": {"iso": "1999"}}, "good", 400, "invalid_message"),
        ("weather", {"data": {"title": "x"}}, "good", 404, "unknown_channel"),
        ("Bad!", {"data": {"title": "x"}}, "good", 400, "invalid_channel"),
    ],
)
async def test_refused_publish_gets_its_error_and_publishes_nothing(
    server: ServerProcess, channel: str, body: Any, auth: str | None, status: int, code: str
) -> None:
    headers = {}
    if auth:
        headers["Authorization"] = "Bearer " + (server.token if auth == "good" else auth)  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/channels/{channel}/messages", json=body,
                             headers=headers) as resp:
            assert resp.status == status
            assert (await resp.json())["error"]["code"] == code
        async with http.get(f"{server.url}/api/channels/headlines/messages") as resp:
            assert (await resp.json())["offset"] == 0


async def test_bad_json_and_oversize_publish_bodies_are_refused(server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {server.token}",  # type: ignore[attr-defined]
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/channels/headlines/messages", data=b"{nope",
                             headers=headers) as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (400, "bad_json")
        big = json.dumps({"data": {"title": "x", "extra": "y" * 20000}})
        async with http.post(f"{server.url}/api/channels/headlines/messages", data=big,
                             headers=headers) as resp:
            assert (resp.status, (await resp.json())["error"]["code"]) == (413, "body_too_large")


# --------------------------------------------------------------------------- slow consumers


def stalled_client(port: int) -> socket.socket:
    """A WebSocket client that subscribes to headlines and then never reads again."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head.split(b"\r\n")[0]
    payload = json.dumps({"type": "subscribe", "channels": ["headlines"]}).encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


async def metric(server: ServerProcess, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


# Every broadcast through ticker/feed/fanout.py: split with writer threads, or its direct writes
# on the event loop alone. (Every other test here broadcasts to fewer subscribers than the
# default threshold, so they cover the plain per-connection path.)
WRITERS = {"writer-threads": {"TICKER_WS_WRITER_THREADS": "2",
                              "TICKER_WS_WRITER_MIN_SUBSCRIBERS": "1"},
           "loop-only": {"TICKER_WS_WRITER_THREADS": "0",
                         "TICKER_WS_WRITER_MIN_SUBSCRIBERS": "1"}}


@pytest.mark.parametrize("writers", WRITERS)
async def test_slow_consumer_is_dropped_while_others_get_everything_and_memory_stays_bounded(
    server_factory: Any, writers: str,
) -> None:
    server = server_factory(env={"TICKER_WS_SEND_BUFFER_BYTES": "65536",
                                 "TICKER_HISTORY_SIZE": "10",
                                 "TICKER_PUBLISH_MAX_BYTES": "65536", **WRITERS[writers]})
    server.token = server.create_token()
    server.start()
    stalled = stalled_client(server.port)
    count, size = 400, 30_000  # 12 MB: far beyond every buffer between server and client
    received: list[int] = []
    try:
        async with websockets.connect(server.ws_url, max_size=2**20) as ws:
            await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
            await until_type(ws, "subscribed")
            rss_before = server.rss_kib()

            async def reader() -> None:
                while len(received) < count:
                    frame = await recv_json(ws, wait=20)
                    if frame["type"] == "message":
                        received.append(frame["data"]["n"])

            task = asyncio.create_task(reader())
            filler = "z" * size
            async with aiohttp.ClientSession() as http:
                for n in range(count):
                    async with http.post(
                        f"{server.url}/api/channels/headlines/messages",
                        json={"data": {"title": "t", "n": n, "fill": filler}},
                        headers={"Authorization": f"Bearer {server.token}"},
                    ) as resp:
                        assert resp.status == 201
            await asyncio.wait_for(task, 30)
            rss_after = server.rss_kib()
    finally:
        stalled.close()
    assert received == list(range(count))
    assert await metric(server, 'ticker_slow_consumer_disconnects_total{transport="ws"}') == 1
    # 12 MB went to the stalled client's connection; the server kept at most its buffer.
    assert rss_after - rss_before < 6 * 1024, (rss_before, rss_after)


# --------------------------------------------------------------------------- operations


async def test_shutdown_tells_clients_going_away(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
        await until_type(ws, "subscribed")
        proc = server.proc
        assert proc is not None
        proc.terminate()
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await recv_json(ws, wait=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert await asyncio.to_thread(proc.wait, 10) == 0  # a clean exit, no lingering threads


async def test_metrics_count_connections_publishes_and_deliveries(server: ServerProcess) -> None:
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
        await until_type(ws, "subscribed")
        await publish(server, {"title": "counted"})
        await until_type(ws, "message")
        assert await metric(server, 'ticker_connections{transport="ws"}') == 1
        assert await metric(server, 'ticker_messages_published_total{channel="headlines"}') == 1
        assert await metric(server, 'ticker_messages_delivered_total{transport="ws"}') >= 1


async def test_dead_peers_are_dropped_by_the_heartbeat_while_live_ones_stay(
    server_factory: Any,
) -> None:
    server = server_factory(env={"TICKER_WS_HEARTBEAT_SECONDS": "0.5"})
    server.token = server.create_token()
    server.start()
    dead = stalled_client(server.port)  # never reads, so never answers a ping
    try:
        async with websockets.connect(server.ws_url, ping_interval=None) as live:
            await live.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
            await until_type(live, "subscribed")
            deadline = time.monotonic() + 10
            while await metric(server, 'ticker_connections{transport="ws"}') > 1:
                assert time.monotonic() < deadline, "the dead peer was never dropped"
                await asyncio.sleep(0.2)
            await publish(server, {"title": "still here"})
            assert (await until_type(live, "message"))["data"]["title"] == "still here"
    finally:
        dead.close()


@pytest.mark.parametrize("writers", WRITERS)
async def test_broadcast_gives_every_client_every_message_in_order(
    server_factory: Any, writers: str,
) -> None:
    server = server_factory(env=WRITERS[writers])
    server.token = server.create_token()
    server.start()
    clients = [await websockets.connect(server.ws_url) for _ in range(40)]
    try:
        for ws in clients:
            await ws.send(json.dumps({"type": "subscribe", "channels": ["headlines"]}))
            await until_type(ws, "subscribed")
        for n in range(30):
            await publish(server, {"title": f"story {n}"})
        for ws in clients:
            got = [(await until_type(ws, "message"))["offset"] for _ in range(30)]
            assert got == list(range(1, 31))
        # 30 messages to 40 clients, plus each client's "subscribed" reply
        assert await metric(server, 'ticker_messages_delivered_total{transport="ws"}') == 1240
    finally:
        for ws in clients:
            await ws.close()
