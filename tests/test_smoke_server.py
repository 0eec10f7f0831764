"""The real server process starts, answers health checks and stops gracefully."""

from __future__ import annotations

import json
import urllib.request

from tests.support import ServerProcess


def test_server_process_serves_healthz_and_stops_cleanly(server: ServerProcess) -> None:
    with urllib.request.urlopen(server.url + "/healthz") as resp:
        body = json.load(resp)
    assert body["status"] == "ok"
    assert server.stop() == 0
