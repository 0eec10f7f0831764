"""The error tree has one root, every error answers with a row of the table, and one
middleware turns errors (domain ones, pydantic's, aiohttp's) into the JSON shape."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pydantic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import subscribers.errors
import ticker.errors
from subscribers.testing import BrowserSubscriber
from subscribers.validate import AlertBody, SubscribeBody, parse_subscription
from ticker.errors import ERRORS, ApiError, TickerError, error_middleware, read_body

KEY = BrowserSubscriber("https://fcm.googleapis.com/x", "k").p256dh


def error_classes() -> list[type[TickerError]]:
    found: list[type[TickerError]] = []
    for module in (ticker.errors, subscribers.errors):
        found += [c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, TickerError) and c.__module__ == module.__name__]
    return found


def test_every_error_class_answers_with_a_row_of_the_table() -> None:
    for cls in error_classes():
        assert cls.code in ERRORS, cls
        assert issubclass(cls, TickerError)


def test_the_tree_drawn_in_the_docstring_names_every_error_class() -> None:
    drawing = ticker.errors.__doc__ or ""
    missing = [c.__name__ for c in error_classes() if f" {c.__name__} " not in drawing]
    assert missing == []
    for cls in error_classes():  # and each row of the drawing shows the class's own code
        line = next(x for x in drawing.splitlines() if f" {cls.__name__} " in x)
        assert cls.code in line or cls is ApiError, line


def test_push_codes_belong_to_web_push_and_the_old_name_keeps_working() -> None:
    alone = subprocess.run([sys.executable, "-c", "from ticker.errors import ERRORS; "
                            "print(sorted(ERRORS))"], capture_output=True, text=True, check=True)
    assert "'invalid_request'" in alone.stdout and "push" not in alone.stdout
    err = ApiError("unknown_alert", "There is no alert 7.")
    assert (err.status, err.body()) == (404, {"error": {"code": "unknown_alert",
                                                        "message": "There is no alert 7."}})
    assert isinstance(subscribers.errors.IdempotencyConflict(), ticker.errors.Conflict)
    assert subscribers.errors.AlreadyFinished().status == 409
    with pytest.raises(KeyError):
        ApiError("no_such_code")


def test_a_code_cannot_be_added_twice_with_another_meaning() -> None:
    with pytest.raises(ValueError, match="unknown_alert"):
        ticker.errors.add_kinds(ticker.errors.ErrorKind("unknown_alert", 400, "Other."))


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"subscription": {"endpoint": "https://fcm.googleapis.com/x",
                       "keys": {"p256dh": KEY, "auth": "short"}}},
     "invalid_subscription", "'subscription.keys.auth'"),
    ({"subscription": {"endpoint": "", "keys": {}}}, "invalid_subscription",
     "'subscription.endpoint'"),
    ({"subscription": {"endpoint": "https://fcm.googleapis.com/x",
                       "keys": {"p256dh": "BA" + "A" * 85, "auth": "A" * 22}}},
     "invalid_subscription", "'keys.p256dh'"),  # the right length, off the curve
])
def test_refusals_name_the_field_at_fault(body: Any, code: str, field: str) -> None:
    with pytest.raises(TickerError) as err:
        parse_subscription(body, ("news",))
    assert err.value.code == code and field in err.value.message, err.value.message


async def _raise_validation(request: web.Request) -> web.Response:
    AlertBody.model_validate({"title": "T", "url": "ftp://x"})
    raise AssertionError("unreachable")


async def _subscribe(request: web.Request) -> web.Response:
    await read_body(request, SubscribeBody, 4096, code="invalid_subscription",
                    context={"topics": ("news",)})
    return web.json_response({})


async def _crash(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/validation", _raise_validation)
    app.router.add_post("/subscribe", _subscribe)
    app.router.add_get("/crash", _crash)
    async with TestClient(TestServer(app)) as c:
        yield c


async def answer(resp: Any) -> tuple[int, str, str]:
    doc = await resp.json()
    return resp.status, doc["error"]["code"], doc["error"]["message"]


async def test_one_middleware_answers_every_kind_of_error_as_json(client: Any) -> None:
    status, code, message = await answer(await client.get("/validation"))
    assert (status, code) == (400, "invalid_request") and "'url'" in message
    status, code, message = await answer(await client.post(
        "/subscribe", json={"subscription": {"endpoint": "https://a/", "keys": {
            "p256dh": "B" * 87, "auth": "A" * 22}}, "topics": ["weather"]}))
    assert (status, code) == (400, "invalid_subscription")  # the first error: the key's form
    status, code, message = await answer(await client.post("/subscribe", data=b"{"))
    assert (status, code) == (400, "bad_json")
    status, code, _ = await answer(await client.post("/subscribe", data=b"x" * 5000))
    assert (status, code) == (413, "body_too_large")
    status, code, _ = await answer(await client.post(
        "/subscribe", data=b"{}", headers={"Content-Type": "application/xml"}))
    assert (status, code) == (415, "unsupported_media_type")
    resp = await client.delete("/validation")
    assert (await answer(resp))[:2] == (405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]
    assert (await answer(await client.get("/nowhere")))[:2] == (404, "not_found")
    status, code, message = await answer(await client.get("/crash"))
    assert (status, code) == (500, "internal") and "a bug" not in message


def test_a_validator_that_speaks_in_the_tables_words_keeps_its_code() -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        AlertBody.model_validate({"title": "T", "url": "/a", "topics": ["weather"]},
                                 context={"topics": ("news",)})
    err = ticker.errors.from_validation(exc.value, "invalid_alert")
    assert (err.code, err.status) == ("unknown_topic", 400)
    with pytest.raises(pydantic.ValidationError) as exc:
        AlertBody.model_validate({"title": "T", "url": "/a", "body": "é" * 2000})
    err = ticker.errors.from_validation(exc.value, "invalid_alert")
    assert (err.code, err.status) == ("payload_too_large", 413)
