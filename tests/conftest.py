from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import CHROMIUM, CHROMIUM_ARGS, ServerProcess, chromium_available, need


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
async def browser() -> AsyncIterator[Any]:
    """Real Chromium (Debian's), driven by Playwright; never a downloaded browser."""
    need(chromium_available(), f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()
