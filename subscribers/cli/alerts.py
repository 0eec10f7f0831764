"""``ticker alerts send``: send a push alert through the server's API, optionally following
its progress (a bar on stderr, the outcome counts on stdout at the end)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from typing import Any

import aiohttp

from ticker.cli.errors import reaching
from ticker.settings import Secret, Settings

BAR_WIDTH = 30
POLL_SECONDS = 0.5


def register(sub: Any) -> None:
    p = sub.add_parser("alerts", help="send push alerts", description="Web Push alerts.")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    s = asub.add_parser("send", help="send an alert to all subscribers or some topics",
                        description="Send an alert through POST /api/alerts.")
    s.add_argument("--title", required=True)
    s.add_argument("--url", required=True, dest="link", help="where a click leads")
    s.add_argument("--body", default="")
    s.add_argument("--topic", action="append", default=[], dest="topics",
                   help="only subscribers of this topic (repeatable; default: everyone)")
    s.add_argument("--language", action="append", default=[], dest="languages",
                   help="only subscribers with this language, e.g. en (repeatable)")
    s.add_argument("--send-at", metavar="TIME",
                   help="schedule: RFC 3339 with an offset (2026-12-02T14:00:00+01:00) or "
                        "Unix seconds")
    s.add_argument("--collapse", metavar="TOPIC",
                   help="RFC 8030 Topic: an undelivered push with the same one is replaced")
    s.add_argument("--tag", help="story tag: a later alert with the same tag replaces this one")
    s.add_argument("--urgency", choices=("very-low", "low", "normal", "high"))
    s.add_argument("--follow", action="store_true",
                   help="show progress until the send is done, then print the counts")
    s.add_argument("--server", metavar="URL", help="server URL (env TICKER_URL)")
    s.add_argument("--token", help="API token (env TICKER_API_TOKEN)")
    s.set_defaults(run=lambda a, st: asyncio.run(send(a, st)),
                   overrides=lambda a: {"url": a.server, "api_token": a.token})


def _alert(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"title": args.title, "url": args.link, "body": args.body,
                           "topics": args.topics, "languages": args.languages}
    for name in ("tag", "urgency", "collapse"):
        if getattr(args, name):
            doc[name] = getattr(args, name)
    if args.send_at:
        at = args.send_at
        doc["send_at"] = float(at) if at.replace(".", "", 1).isdigit() else at
    return doc


async def _call(session: aiohttp.ClientSession, method: str, url: str,
                **kwargs: Any) -> dict[str, Any]:
    async with session.request(method, url, **kwargs) as resp:
        body = await resp.json(content_type=None)
    if resp.status >= 400:
        err = body.get("error", {}) if isinstance(body, dict) else {}
        raise ValueError(f"{resp.status} {err.get('code', '')}: {err.get('message', body)}")
    return dict(body)


def progress_line(status: dict[str, Any]) -> str:
    total, remaining = int(status["total"]), int(status["remaining"])
    done = total - remaining
    # the total grows while the audience is cut: an empty bar until the first batch
    filled = (BAR_WIDTH * done // total if total
              else 0 if status["status"] == "sending" else BAR_WIDTH)
    counts = " ".join(f"{k}={v}" for k, v in sorted(status["counts"].items())
                      if k not in ("pending", "sending", "retry"))
    return f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} {counts}"


async def send(args: argparse.Namespace, settings: Settings) -> int:
    token = settings.client.api_token
    if not isinstance(token, Secret) or not token:
        raise ValueError("an API token is needed: --token or TICKER_API_TOKEN "
                         "(create one with 'ticker tokens create')")
    headers = {"Authorization": f"Bearer {token.reveal()}",
               # a retried command must not send twice
               "Idempotency-Key": f"cli-{uuid.uuid4()}"}
    base = settings.server_url
    async with aiohttp.ClientSession(headers=headers) as session:
        with reaching(base):
            status = await _call(session, "POST", f"{base}/api/alerts", json=_alert(args))
        if not args.follow:
            print(json.dumps(status))
            return 0
        while status["status"] in ("scheduled", "sending"):
            print(progress_line(status), end="", file=sys.stderr, flush=True)
            await asyncio.sleep(POLL_SECONDS)
            with reaching(base):
                status = await _call(session, "GET", f"{base}/api/alerts/{status['id']}")
        print(progress_line(status), file=sys.stderr, flush=True)
    print(json.dumps({"id": status["id"], "status": status["status"],
                      "total": status["total"], "counts": status["counts"]}))
    return 0
