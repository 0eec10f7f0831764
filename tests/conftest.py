from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.origin import Origin, start_origin
from tests.support import CHROMIUM_ARGS, ServerProcess, find_chromium, need


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start real ``ticker serve`` processes: ``server_factory(env=..., config=...)``."""
    started: list[ServerProcess] = []

    def make(name: str = "node", **kwargs: Any) -> ServerProcess:
        server = ServerProcess(tmp_path / name, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory: Any) -> ServerProcess:
    """A started server with default settings; ``server.token`` is an editor token."""
    srv: ServerProcess = server_factory()
    srv.token = srv.create_token()  # type: ignore[attr-defined]
    return srv.start()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    """A local HTTP origin serving a JHU CSSE daily report (``origin.body`` is settable)."""
    o, srv = await start_origin()
    yield o
    await srv.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Real Chromium (Debian's), driven by Playwright; never a downloaded browser."""
    executable = find_chromium()
    need(executable is not None, "Chromium is not installed (not $TICKER_CHROMIUM, "
                                 "/usr/bin/chromium, nor chromium or chromium-browser on PATH)")
    assert executable is not None
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield b
        finally:
            await b.close()


PG_DSN = "postgresql://127.0.0.1:5432/test"


def postgres_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    import secrets
    import subprocess

    schema = "t_" + secrets.token_hex(6)
    made = subprocess.run(["psql", "-h", "127.0.0.1", "-d", "test", "-qc",
                           f"CREATE SCHEMA {schema}"], capture_output=True, text=True)
    need(made.returncode == 0, f"PostgreSQL at 127.0.0.1:5432/test is not usable: "
                               f"{made.stderr.strip()[:200]}")
    try:
        yield f"{PG_DSN}?search_path={schema}"
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-d", "test", "-qc",
                        f"DROP SCHEMA {schema} CASCADE"], capture_output=True)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every database backend in turn: the same tests run against each."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ticker.db'}"
    else:
        yield from postgres_schema_url()


REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_prefix_url() -> Iterator[str]:
    """The machine's Redis under a key prefix of one test's own, its keys deleted afterwards."""
    import secrets

    import redis

    prefix = f"t_{secrets.token_hex(6)}:"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        need(False, f"Redis at 127.0.0.1:6379 is not usable: {exc}")
    try:
        yield f"{REDIS_URL}?key_prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    yield from redis_prefix_url()
