"""A/B: what validating a publish body costs with pydantic (what ticker uses) and msgspec.

``python -m bench.models`` prints µs per body for three items of the publish path
(``POST /api/channels/{channel}/messages``), from raw bytes to the dict that is published:

* ``hand-written``: ``json.loads`` and the checks ticker had before the models (the floor);
* ``pydantic``: ``ticker.feed.items.publish_body`` (``model_validate_json``, strict) and
  ``model_dump(exclude_unset=True)``: exactly what the handler runs;
* ``msgspec``: ``msgspec.json.decode`` to a dict, then ``msgspec.convert`` into an
  equivalent ``Struct`` for the checks (a Struct drops unknown keys, and an item's extra
  keys must reach the widgets, so the dict is what gets published).

and, for scale, the whole request through aiohttp (an in-process server and client, the
token check on SQLite included) per publish.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from ticker.feed.items import publish_body

ITEMS = {
    "small": {"data": {"title": "Flood warning for the city centre"}},
    "typical": {"data": {"title": "Iraqi PM says US combat troops have got to go",
                         "summary": "The prime minister spoke after talks in Washington. " * 3,
                         "url": "https://news.example/world/2021/07/iraq-us-troops",
                         "image": "https://cdn.news.example/img/iraq.jpg", "label": "LIVE",
                         "section": "world", "id": "a-2021-07-26-001"}},
    "large": {"data": {"title": "T" * 300, "summary": "s" * 1000, "body": "b" * 1000,
                       "url": "https://news.example/" + "p" * 2000, "extra": list(range(200))}},
}

Text = Annotated[str, msgspec.Meta(max_length=300)]
Link = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^(https?://|/)")]


class MsgItem(msgspec.Struct):
    title: Text | None = None
    summary: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    body: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    text: Text | None = None
    label: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    url: Link | None = None
    image: Link | None = None
    clear: bool | None = None

    def __post_init__(self) -> None:
        if self.clear is not True and (self.title is None or not self.title.strip()):
            raise ValueError("A headlines item needs a non-empty 'title'.")


class MsgBody(msgspec.Struct, forbid_unknown_fields=True):
    data: dict[str, Any]


_decode_body = msgspec.json.Decoder(MsgBody).decode


def with_msgspec(raw: bytes) -> dict[str, Any]:
    data = _decode_body(raw).data
    msgspec.convert(data, MsgItem)
    return data


def with_pydantic(raw: bytes) -> dict[str, Any]:
    return publish_body("headlines", raw).data.model_dump(exclude_unset=True)


_LIMITS = {"title": 300, "summary": 1000, "body": 1000, "text": 300, "label": 40}


def by_hand(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw)
    if not isinstance(body, dict) or set(body) - {"data"} or not isinstance(body.get("data"),
                                                                          dict):
        raise ValueError("shape")
    data: dict[str, Any] = body["data"]
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title")
    for key, limit in _LIMITS.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise ValueError(key)
    for key in ("url", "image"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and len(value) <= 2048
                                      and value.startswith(("https://", "http://", "/"))):
            raise ValueError(key)
    return data


def per_call_us(fn: Callable[[bytes], Any], raw: bytes) -> float:
    """The best of five runs of ``fn(raw)``, in µs per call."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.05:  # size a batch to about 50 ms
        fn(raw)
        n += 1
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(raw)
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


async def http_publish_us(requests: int) -> float:
    """µs per publish through aiohttp: an in-process server, its client, a real token."""
    from aiohttp.test_utils import TestClient, TestServer

    from ticker.app import create_app
    from ticker.settings import load_settings
    from ticker.web.tokens import create_token

    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(load_settings(environ={"TICKER_DATA_DIR": data_dir}))
        async with TestClient(TestServer(app)) as client:
            from ticker import appkeys

            token = await create_token(app[appkeys.database], "bench", "editor")
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            raw = json.dumps(ITEMS["typical"]).encode()
            for _ in range(50):
                await client.post("/api/channels/headlines/messages", data=raw, headers=headers)
            t0 = time.perf_counter()
            for _ in range(requests):
                resp = await client.post("/api/channels/headlines/messages", data=raw,
                                         headers=headers)
                assert resp.status == 201
                resp.release()
            return (time.perf_counter() - t0) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="for the HTTP figure")
    args = parser.parse_args()
    print(f"{'body':<9}{'bytes':>7}{'hand-written':>14}{'pydantic':>10}{'msgspec':>9}  (µs)")
    for name, doc in ITEMS.items():
        raw = json.dumps(doc).encode()
        assert with_pydantic(raw) == with_msgspec(raw) == by_hand(raw)
        figures = [per_call_us(fn, raw) for fn in (by_hand, with_pydantic, with_msgspec)]
        print(f"{name:<9}{len(raw):>7}" + "".join(f"{f:>{w}.1f}" for f, w in
                                                   zip(figures, (14, 10, 9), strict=True)))
    print(f"whole publish request through aiohttp: "
          f"{asyncio.run(http_publish_us(args.requests)):.0f} µs")


if __name__ == "__main__":
    main()
