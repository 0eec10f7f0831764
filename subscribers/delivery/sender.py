"""The HTTP side of a push: one POST on a pooled connection, the answer as values.

Connections are kept alive and pooled per push-service origin
(``connections_per_host``), so a 100,000-reader alert rides a few dozen connections.
The client is :class:`subscribers.pushclient.client.HttpClient`, which also refuses, at every
connect, a host that resolves to a non-public address (DNS rebinding), except the
``http://host:port`` allow-list entries (test stand-ins).
"""

from __future__ import annotations

from dataclasses import dataclass

from subscribers.pushclient.client import HttpClient
from subscribers.pushclient.http11 import ProtocolError

LOG_BODY_CHARS = 500


def make_session(connections_per_host: int, connections: int,
                 allowed_private_hosts: frozenset[str] = frozenset(),
                 timeout: float = 30.0) -> HttpClient:
    return HttpClient(connections_per_host=connections_per_host, connections=connections,
                      allowed_private_hosts=allowed_private_hosts, timeout=timeout,
                      connect_timeout=min(10.0, timeout), max_body=4 * LOG_BODY_CHARS)


@dataclass(frozen=True)
class Reply:
    """A push service's answer; ``status`` None means no answer (timeout, connection)."""

    status: int | None
    retry_after: str | None = None
    text: str = ""


class Sender:
    def __init__(self, session: HttpClient) -> None:
        self._session = session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Reply:
        try:
            resp = await self._session.post(url, headers, body)
        except (TimeoutError, OSError, ProtocolError, ValueError) as exc:
            return Reply(None, None, f"{type(exc).__name__}: {exc}"[:LOG_BODY_CHARS])
        text = resp.body[:LOG_BODY_CHARS].decode("utf-8", "replace") if resp.body else ""
        return Reply(resp.status, resp.retry_after, text)
