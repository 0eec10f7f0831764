"""The servers under test, started as real processes, and how to publish to each."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from websockets.sync.client import ClientConnection, connect

from tests.support import ServerProcess, free_port
from ticker.newsroom.signature import sign

ROOT = Path(__file__).resolve().parent.parent


def post_json(conn: http.client.HTTPConnection, path: str, token: str,
              doc: dict[str, Any]) -> bytes:
    """POST ``doc`` with a bearer token on a kept-alive connection; the body of a 201."""
    conn.request("POST", path, body=json.dumps(doc), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 201:
        raise RuntimeError(f"POST {path} refused: {resp.status} {body[:300]!r}")
    return body


class ServerUnderTest(Protocol):
    name: str
    ws_url: str

    @property
    def pid(self) -> int: ...

    def publish(self, data: dict[str, Any]) -> None: ...

    def stop(self) -> None: ...


class TickerServer:
    """``python -m ticker serve`` (default settings, its own data dir); publishes through
    ``POST /api/channels/{channel}/messages`` with an editor token, as an integration would."""

    name = "ticker"

    def __init__(self, data_dir: Path, channel: str = "headlines",
                 env: dict[str, str] | None = None) -> None:
        self.proc = ServerProcess(data_dir, env=env).start()
        self.ws_url = self.proc.ws_url
        self.token = self.proc.create_token(name="bench")
        self.path = f"/api/channels/{channel}/messages"
        self.http = http.client.HTTPConnection("127.0.0.1", self.proc.port, timeout=30)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def publish(self, data: dict[str, Any]) -> None:
        post_json(self.http, self.path, self.token, {"data": data})

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


class ArticleServer(TickerServer):
    """``ticker serve`` fed through the CMS webhook: each message becomes an article,
    ``POST /api/articles`` signed with ``X-Ticker-Signature``, which the server stores and
    publishes on ``headlines``, ``headlines:<language>`` and ``headlines:<category>``. The
    time and sequence number travel in the guid (the headline's shape is fixed)."""

    name = "ticker-article"
    SECRET = "bench-webhook-secret"

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, env={**(env or {}), "TICKER_WEBHOOK_SECRET": self.SECRET})
        self.path = "/api/articles"

    def publish(self, data: dict[str, Any]) -> None:
        article = {"guid": f"bench:{data['seq']}:{data['t']}", "url": data.get(
            "url", "https://news.example/bench"), "title": data["title"],
            "summary": data.get("summary", ""), "image": data.get("image", ""),
            "category": "local", "language": "en"}
        body = json.dumps(article).encode()
        header = sign(self.SECRET, int(time.time()), body)
        self.http.request("POST", self.path, body=body, headers={
            "X-Ticker-Signature": header, "Content-Type": "application/json"})
        resp = self.http.getresponse()
        answer = resp.read()
        if resp.status != 201:
            raise RuntimeError(f"POST {self.path} refused: {resp.status} {answer[:300]!r}")


class MixedServer(ArticleServer):
    """Both paths on one server, alternating: even ``seq`` through the channel API, odd
    through the webhook. Both then meet the same clients, the same warm caches and the same
    noise from the rest of the machine, which two servers run one after the other do not."""

    name = "ticker-mixed"

    def publish(self, data: dict[str, Any]) -> None:
        if int(data["seq"]) % 2 == 0:
            post_json(self.http, "/api/channels/headlines/messages", self.token, {"data": data})
        else:
            super().publish(data)


class BaselineServer:
    """:mod:`bench.baseline_ws_server`; publishes over its ``/publish`` WebSocket."""

    name = "baseline"

    def __init__(self, log_path: Path) -> None:
        port = free_port()
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.baseline_ws_server", "--port", str(port)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"baseline server exited: {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.control: ClientConnection = connect(f"ws://127.0.0.1:{port}/publish",
                                                 compression=None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def publish(self, data: dict[str, Any]) -> None:
        self.control.send(json.dumps({"data": data}))

    def stop(self) -> None:
        self.control.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
