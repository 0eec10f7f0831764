"""The breaking policy and the approval queue, on a real app and port with a recording
article -> alert hook in place of Web Push: auto alerts at once, approve queues for an
editor's click, off does nothing; every decision is audit-logged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ticker import appkeys, audit
from ticker.app import create_app
from ticker.newsroom.articles import Article
from ticker.settings import Settings
from ticker.web.tokens import create_token

ARTICLE = {"guid": "b-1", "url": "https://news.example/b1", "title": "Quake", "breaking": True,
           "category": "world", "language": "en"}


class Hook:
    """Records each call; answers alert ids 100, 101, ... or raises ``fail``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail: Exception | None = None

    async def __call__(self, article: Article, actor: str) -> int:
        if self.fail is not None:
            raise self.fail
        self.calls.append((article.guid, actor))
        return 99 + len(self.calls)


class Desk:
    def __init__(self, client: TestClient[Any, Any], hook: Hook, token: str) -> None:
        self.client, self.hook, self.token = client, hook, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = await self.client.request(method, path, data=json.dumps(body) if body else None,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        return resp.status, await resp.json()

    async def audit(self) -> list[tuple[str, str, str]]:
        rows = await audit.recent(self.client.app[appkeys.database])  # type: ignore[index]
        return [(r["actor"], r["action"], r["target"]) for r in reversed(rows)]


@pytest.fixture
def desk_for(tmp_path: Path) -> Callable[..., Any]:
    def make(policy: str, with_hook: bool = True) -> Any:
        async def start() -> AsyncIterator[Desk]:
            app = create_app(Settings(data_dir=tmp_path, breaking_policy=policy))
            hook = Hook()
            if with_hook:
                app[appkeys.article_alerts] = hook
            else:  # as when push is not part of the app
                app.pop(appkeys.article_alerts, None)
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                token = await create_token(app[appkeys.database], "desk", "editor")
                yield Desk(client, hook, token)
        return start()
    return make


async def test_auto_alerts_a_new_breaking_article_at_once_and_only_once(
        desk_for: Callable[..., Any]) -> None:
    async for desk in desk_for("auto"):
        status, answer = await desk.call("POST", "/api/articles", ARTICLE)
        assert status == 201 and answer["article"]["approval"] == "sent"
        assert desk.hook.calls == [("b-1", "system")]
        await desk.call("POST", "/api/articles", {**ARTICLE, "title": "Quake: 6.1"})
        assert desk.hook.calls == [("b-1", "system")]  # an edit is not a second alert
        await desk.call("POST", "/api/articles", {**ARTICLE, "guid": "n-1", "breaking": False})
        assert len(desk.hook.calls) == 1
        assert (await desk.call("GET", "/api/approvals"))[1] == {"articles": []}
        assert ("system", "approval.send", f"article:{answer['article']['id']}") in \
            await desk.audit()


async def test_auto_queues_the_article_when_the_alert_cannot_be_made(
        desk_for: Callable[..., Any]) -> None:
    async for desk in desk_for("auto"):
        desk.hook.fail = RuntimeError("push service down")
        status, answer = await desk.call("POST", "/api/articles", ARTICLE)
        assert status == 201 and answer["article"]["approval"] == "pending"
        _, queue = await desk.call("GET", "/api/approvals")
        assert [a["guid"] for a in queue["articles"]] == ["b-1"]


async def test_approve_queues_until_an_editor_sends_or_dismisses(
        desk_for: Callable[..., Any]) -> None:
    async for desk in desk_for("approve"):
        _, first = await desk.call("POST", "/api/articles", ARTICLE)
        _, second = await desk.call("POST", "/api/articles", {**ARTICLE, "guid": "b-2"})
        assert desk.hook.calls == []
        _, queue = await desk.call("GET", "/api/approvals")
        assert [a["guid"] for a in queue["articles"]] == ["b-2", "b-1"]
        assert all(a["approval"] == "pending" for a in queue["articles"])

        one, two = first["article"]["id"], second["article"]["id"]
        status, sent = await desk.call("POST", f"/api/approvals/{one}", {"action": "send"})
        assert status == 200 and sent["alert"] == 100 and sent["article"]["approval"] == "sent"
        assert desk.hook.calls == [("b-1", "token:desk")]
        status, again = await desk.call("POST", f"/api/approvals/{one}", {"action": "send"})
        assert (status, again["error"]["code"]) == (409, "not_pending")
        status, dropped = await desk.call("POST", f"/api/approvals/{two}",
                                          {"action": "dismiss"})
        assert (status, dropped["alert"], dropped["article"]["approval"]) == (
            200, None, "dismissed")
        assert len(desk.hook.calls) == 1
        assert (await desk.call("GET", "/api/approvals"))[1] == {"articles": []}
        assert [e for e in await desk.audit() if e[1].startswith("approval.")] == [
            ("token:desk", "approval.send", f"article:{one}"),
            ("token:desk", "approval.dismiss", f"article:{two}")]
        status, missing = await desk.call("POST", "/api/approvals/999", {"action": "send"})
        assert (status, missing["error"]["code"]) == (404, "unknown_article")
        status, bad = await desk.call("POST", f"/api/approvals/{two}", {"action": "shout"})
        assert status == 400, bad


async def test_approve_send_says_alerts_are_unavailable_without_push(
        desk_for: Callable[..., Any]) -> None:
    async for desk in desk_for("approve", with_hook=False):
        _, first = await desk.call("POST", "/api/articles", ARTICLE)
        status, answer = await desk.call(
            "POST", f"/api/approvals/{first['article']['id']}", {"action": "send"})
        assert status == 503 and answer["error"]["code"] in ("alerts_unavailable",
                                                             "push_unavailable")
        _, queue = await desk.call("GET", "/api/approvals")
        assert [a["guid"] for a in queue["articles"]] == ["b-1"]  # still waiting


async def test_off_leaves_breaking_as_a_flag_only(desk_for: Callable[..., Any]) -> None:
    async for desk in desk_for("off"):
        status, answer = await desk.call("POST", "/api/articles", ARTICLE)
        assert status == 201 and answer["article"]["approval"] is None
        assert answer["article"]["breaking"] is True
        assert desk.hook.calls == []
        assert (await desk.call("GET", "/api/approvals"))[1] == {"articles": []}
