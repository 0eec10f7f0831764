"""``/openapi.json`` is generated from the models that validate requests, and held to what
the server does: a real ``ticker serve`` is driven with requests generated from the served
document; each answer must be a status the document lists for that operation, a body the
document allows must never be refused with 400, and a body it forbids gets a listed 4xx
with the JSON error shape."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from subscribers.validate import b64url_encode, known_zones
from tests.schemagen import strategy
from tests.support import ServerProcess, free_port
from ticker.app import create_app
from ticker.settings import load_settings
from ticker.web.openapi import described

# Routes that are pages or scripts for browsers (or the document itself), not API.
NOT_API = {("GET", "/"), ("GET", "/widget.js"), ("GET", "/push.js"), ("GET", "/sw.js"),
           ("GET", "/openapi.json"), ("GET", "/editor"), ("GET", "/editor/editor.js"),
           ("GET", "/editor/editor.css")}
TOPICS = ("breaking", "news", "sport", "business", "culture")  # the default push_topics
EXAMPLES = 30


async def test_every_api_route_is_described(tmp_path: Any) -> None:
    app = create_app(load_settings(environ={"TICKER_DATA_DIR": str(tmp_path)}))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD"}
    assert routes, "no /api routes registered"
    assert routes <= described(app), routes - described(app)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/openapi.json")
        doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/channels/{channel}/messages" in doc["paths"]


async def test_every_route_is_in_the_document_or_listed_as_a_page(tmp_path: Any) -> None:
    app = create_app(load_settings(environ={"TICKER_DATA_DIR": str(tmp_path)}))
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.method != "HEAD"}
    async with TestClient(TestServer(app)) as client:
        doc = await (await client.get("/openapi.json")).json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert routes - NOT_API == documented, (routes - NOT_API) ^ documented
    assert not NOT_API & documented


# --------------------------------------------------------------------------- the live server


@dataclass
class Live:
    server: ServerProcess
    token: str
    doc: dict[str, Any]
    allowed: str  # the http://host:port origin push endpoints may use

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
        req = urllib.request.Request(self.server.url + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers.get_content_type(), resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.headers.get_content_type(), err.read()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    allowed = f"http://127.0.0.1:{free_port()}"  # nothing listens: sends fail, are retried
    server = ServerProcess(tmp_path_factory.mktemp("openapi"), env={
        "TICKER_VAPID_SUBJECT": "mailto:desk@example.org", "TICKER_MODE": "production",
        "TICKER_PUSH_ALLOWED_HOSTS": allowed, "TICKER_LOG_LEVEL": "ERROR",
        "TICKER_PUSH_SUBSCRIBE_RATE_PER_MINUTE": "100000"})
    token = server.create_token()
    server.start()
    try:
        with urllib.request.urlopen(server.url + "/openapi.json", timeout=10) as resp:
            doc = json.loads(resp.read())
        yield Live(server, token, doc, allowed)
    finally:
        server.stop()


def test_the_served_document_is_valid_openapi(live: Live) -> None:
    validate(live.doc)


def inline(schema: Any, doc: dict[str, Any]) -> Any:
    """``schema`` with every ``#/components/schemas/X`` reference replaced by X itself."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return inline(doc["components"]["schemas"][ref.rsplit("/", 1)[1]], doc)
        return {k: inline(v, doc) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inline(v, doc) for v in schema]
    return schema


def operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.upper(), p) for p, ops in doc["paths"].items() for m in ops
            if p.startswith("/api/")]


def p256_key() -> st.SearchStrategy[str]:
    """A real browser key: JSON Schema can say "65 bytes", not "on the curve"."""
    def make(_: int) -> str:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        return b64url_encode(key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    return st.integers().map(make)


def completed(live: Live, method: str, path: str, body: Any,
              draw: st.DataObject) -> Any:
    """Fill in what JSON Schema cannot express with values the server holds true."""
    if path == "/api/push/subscriptions" and method == "POST":
        body["subscription"]["endpoint"] = f"{live.allowed}/push/" + draw.draw(
            st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40))
        body["subscription"]["keys"]["p256dh"] = draw.draw(p256_key())
        if body.get("topics") is not None:
            body["topics"] = draw.draw(st.lists(st.sampled_from(TOPICS), max_size=5))
        if "timezone" in body:
            body["timezone"] = draw.draw(st.sampled_from(sorted(known_zones())))
        body.pop("vapidKey", None)  # a key this server holds: only the one it serves
    if path == "/api/articles":
        # JSON Schema says "date-time"; the generator knows patterns, not formats.
        for key in ("published", "updated"):
            if key in body:
                body[key] = draw.draw(st.one_of(
                    st.none(), st.integers(0, 4_000_000_000),
                    st.sampled_from(["2026-12-02T09:30:00+01:00", "2026-12-02T08:30:00Z"])))
    alert = body.get("alert") if path == "/api/alerts/test" else body
    if path.startswith("/api/alerts") and isinstance(alert, dict):
        if "topics" in alert:
            alert["topics"] = draw.draw(st.lists(st.sampled_from(TOPICS), max_size=5))
        if alert.get("send_at") is not None:  # a real date, neither long past nor far ahead
            ahead = draw.draw(st.integers(min_value=-30, max_value=30 * 86400))
            when = time.time() + ahead
            alert["send_at"] = draw.draw(st.sampled_from([
                when, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))]))
    return body


def parameters_for(op: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in op.get("parameters", []) if p["in"] == where]


def request_for(live: Live, method: str, path: str, draw: st.DataObject,
                ) -> tuple[str, bytes | None, dict[str, str]]:
    op = live.doc["paths"][path][method.lower()]
    url, headers = path, {"Content-Type": "application/json"}
    for param in parameters_for(op, "path"):
        if param["name"] == "channel":  # which channels exist is the server's, not a schema's
            value = draw.draw(st.sampled_from(["breaking", "headlines", "weather", "x.y-1"]))
        else:
            value = draw.draw(strategy(param["schema"]))
        url = url.replace("{" + param["name"] + "}", urllib.parse.quote(str(value), safe=""))
    query = {p["name"]: draw.draw(strategy(p["schema"])) for p in parameters_for(op, "query")
             if p["required"] or draw.draw(st.booleans())}
    if query:
        url += "?" + urllib.parse.urlencode(query)
    for param in parameters_for(op, "header"):
        value = draw.draw(strategy(param["schema"]))
        if value is not None:
            headers[param["name"]] = value
    if op.get("security"):
        headers["Authorization"] = f"Bearer {live.token}"
    body = None
    if "requestBody" in op:
        schema = inline(op["requestBody"]["content"]["application/json"]["schema"], live.doc)
        doc = completed(live, method, path, draw.draw(strategy(schema)), draw)
        if "/api/channels/headlines/" in url:  # headlines needs a title; breaking may clear
            assume(str((doc["data"] or {}).get("title") or "").strip())
        body = json.dumps(doc).encode()
    return url, body, headers


def check_answer(live: Live, method: str, path: str, status: int, ctype: str,
                 raw: bytes) -> None:
    responses = live.doc["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, (method, path, status, raw[:300])
    content = responses[str(status)].get("content", {})
    if status >= 400:
        assert ctype == "application/json", raw[:200]
        err = json.loads(raw)["error"]
        assert err["code"] and err["message"], err
    if "application/json" in content and raw:
        schema = inline(content["application/json"]["schema"], live.doc)
        Draft202012Validator(schema).validate(json.loads(raw))


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/channels/{channel}/messages"), ("GET", "/api/channels/{channel}/messages"),
    ("GET", "/api/push/vapid-public-key"), ("POST", "/api/push/subscriptions"),
    ("DELETE", "/api/push/subscriptions"), ("POST", "/api/push/events"),
    ("POST", "/api/alerts"), ("GET", "/api/alerts/{id}"), ("POST", "/api/alerts/{id}/cancel"),
    ("GET", "/api/alerts"), ("POST", "/api/alerts/preview"), ("POST", "/api/alerts/test"),
    ("POST", "/api/articles"), ("GET", "/api/articles"), ("GET", "/api/approvals"),
    ("POST", "/api/approvals/{id}"), ("POST", "/api/feeds"), ("DELETE", "/api/feeds/{name}"),
])
def test_requests_the_document_allows_are_answered_as_documented_and_never_refused(
        live: Live, method: str, path: str) -> None:
    assert (method, path) in operations(live.doc)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(st.data())
    def run(draw: st.DataObject) -> None:
        url, body, headers = request_for(live, method, path, draw)
        status, ctype, raw = live.call(method, url, body, headers)
        assert status != 400, (url, body, raw[:300])
        check_answer(live, method, path, status, ctype, raw)

    run()


def wrong_values(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """One way to break each property of an object schema, and dropping each required one."""
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        yield f"without {name}", None
    for name, prop in props.items():
        kinds = {prop.get("type")} | {s.get("type") for s in prop.get("anyOf", [])}
        yield name, [] if "string" in kinds or "integer" in kinds else "not this"


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/channels/{channel}/messages"), ("POST", "/api/push/subscriptions"),
    ("DELETE", "/api/push/subscriptions"), ("POST", "/api/push/events"),
    ("POST", "/api/alerts"), ("POST", "/api/alerts/preview"), ("POST", "/api/alerts/test"),
    ("POST", "/api/articles"), ("POST", "/api/approvals/{id}"),
])
def test_bodies_the_document_forbids_get_a_documented_error(
        live: Live, method: str, path: str) -> None:
    op = live.doc["paths"][path][method.lower()]
    schema = inline(op["requestBody"]["content"]["application/json"]["schema"], live.doc)
    url = path.replace("{channel}", "breaking").replace("{id}", "1")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {live.token}"}
    valid = {"data": {"title": "A"}} if "channels" in path else {}
    cases: list[tuple[str, bytes]] = [("not JSON", b"{nope"), ("an array", b"[]"),
                                      ("too large", b'{"x": "' + b"y" * 70_000 + b'"}')]
    for name, value in wrong_values(schema):
        doc = dict(valid)
        if value is None:
            doc.pop(name.removeprefix("without "), None)
        else:
            doc[name] = value
        cases.append((name, json.dumps(doc).encode()))
    for name, body in cases:
        status, ctype, raw = live.call(method, url, body, headers)
        assert 400 <= status < 500, (name, status, raw[:200])
        check_answer(live, method, path, status, ctype, raw)


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("GET", "/ws", {}, 426),
    ("GET", "/ws", {"Connection": "Upgrade", "Upgrade": "websocket"}, 400),  # no key
    ("GET", "/sse", {}, 400),
    ("GET", "/sse?channels=weather", {}, 404),
    ("GET", "/sse?channels=UP", {}, 400),
    ("GET", "/healthz", {}, 200),
    ("GET", "/metrics", {}, 200),
    ("GET", "/api/channels/Bad!/messages", {}, 400),
    ("GET", "/api/channels/headlines/messages?limit=201", {}, 400),
    ("GET", "/api/alerts/abc", {}, 401),
])
def test_feed_and_operations_routes_answer_only_documented_statuses(
        live: Live, method: str, path: str, headers: dict[str, str], status: int) -> None:
    got, ctype, raw = live.call(method, path, None, headers)
    assert got == status, raw[:300]
    template = {"/api/channels/Bad!/messages": "/api/channels/{channel}/messages",
                "/api/channels/headlines/messages": "/api/channels/{channel}/messages",
                "/api/alerts/abc": "/api/alerts/{id}"}
    bare = path.partition("?")[0]
    check_answer(live, method, template.get(bare, bare), got, ctype, raw)


def test_an_idempotency_key_the_document_allows_survives_http_and_is_honoured(
        live: Live) -> None:
    # HTTP trims a header's ends: the document must not allow a key that arrives empty.
    (param,) = parameters_for(live.doc["paths"]["/api/alerts"]["post"], "header")
    pattern = re.compile(param["schema"]["pattern"].replace("$", r"\Z"))
    assert not pattern.search(" ") and not pattern.search(" desk") and pattern.search("d 4")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {live.token}",
               "Idempotency-Key": "desk 42"}
    body = json.dumps({"title": "Storm", "url": "/storm"}).encode()
    first = live.call("POST", "/api/alerts", body, headers)
    again = live.call("POST", "/api/alerts", body, headers)
    assert (first[0], again[0]) == (201, 200)
    assert json.loads(first[2])["id"] == json.loads(again[2])["id"]
