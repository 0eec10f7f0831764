"""Encryption in helper processes: same bodies as inline, batched, errors per message."""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from subscribers.crypto.encryptor import (
    HelperExited,
    InlineEncryptor,
    ProcessEncryptor,
    encode_request,
    helper_main,
)
from subscribers.testing import BrowserSubscriber, PushServiceStandIn
from tests.pushhelpers import Api, server_env
from tests.support import ServerProcess


def raw(b64: str) -> bytes:
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))


def browsers(n: int) -> list[BrowserSubscriber]:
    return [BrowserSubscriber(f"https://push.example/{i}", "k") for i in range(n)]


async def test_helper_processes_encrypt_what_each_browser_decrypts_in_batches() -> None:
    encryptor = ProcessEncryptor(1, batch=16)
    await encryptor.start()
    try:
        subs = browsers(40)  # three batches: 16 + 16 + 8
        plain = [b'{"title":"one"}', b'{"title":"two"}']
        bodies = await asyncio.gather(*(
            encryptor.encrypt(plain[i % 2], raw(s.p256dh), raw(s.auth))
            for i, s in enumerate(subs)))
    finally:
        await encryptor.close()
    assert [s.decrypt(b) for s, b in zip(subs, bodies, strict=True)] == [
        plain[i % 2] for i in range(40)]
    assert len(set(bodies)) == 40  # a fresh key and salt for every message


async def test_a_bad_key_fails_its_own_message_only() -> None:
    encryptor = ProcessEncryptor(1)
    await encryptor.start()
    try:
        good = browsers(1)[0]
        results = await asyncio.gather(
            encryptor.encrypt(b"{}", b"\x04" + b"\x01" * 64, raw(good.auth)),  # not on the curve
            encryptor.encrypt(b"{}", raw(good.p256dh), raw(good.auth)),
            encryptor.encrypt(b"{}", b"\x04" * 70_000, raw(good.auth)),  # longer than a frame
            return_exceptions=True)
    finally:
        await encryptor.close()
    assert isinstance(results[0], ValueError)
    assert isinstance(results[1], bytes) and good.decrypt(results[1]) == b"{}"
    assert isinstance(results[2], ValueError)


async def test_inline_and_process_encryptors_agree_on_the_format() -> None:
    sub = browsers(1)[0]
    inline = await InlineEncryptor().encrypt(b"x", raw(sub.p256dh), raw(sub.auth))
    assert sub.decrypt(inline) == b"x"
    with pytest.raises(ValueError):
        await InlineEncryptor().encrypt(b"x" * 5000, raw(sub.p256dh), raw(sub.auth))


async def test_a_killed_helper_fails_its_batches_and_another_takes_over() -> None:
    encryptor = ProcessEncryptor(1)
    await encryptor.start()
    try:
        sub = browsers(1)[0]
        helper = encryptor._helpers[0]
        helper.process.kill()
        with pytest.raises(HelperExited, match="helper has exited"):
            await encryptor.encrypt(b"{}", raw(sub.p256dh), raw(sub.auth))
        for _ in range(100):  # the replacement is spawned in the background
            if encryptor._helpers[0] is not helper:
                break
            await asyncio.sleep(0.05)
        body = await encryptor.encrypt(b"again", raw(sub.p256dh), raw(sub.auth))
    finally:
        await encryptor.close()
    assert sub.decrypt(body) == b"again"
    assert not any(h.process.is_alive() for h in encryptor._helpers)


def encryption_helpers(pid: int) -> list[int]:
    """The server's children started by multiprocessing's spawn (not its resource tracker)."""
    children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def wait_gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def test_the_helper_of_a_server_killed_mid_alert_exits_without_a_traceback(
        server_factory: Any) -> None:
    async with PushServiceStandIn() as ps, aiohttp.ClientSession() as http:
        srv: ServerProcess = server_factory(env=server_env(ps, TICKER_PUSH_ENCRYPT_PROCESSES="1"))
        srv.token = await asyncio.to_thread(srv.create_token)  # type: ignore[attr-defined]
        await asyncio.to_thread(srv.start)
        helpers = encryption_helpers(srv.pid)
        assert len(helpers) == 1
        api = Api(http, srv.url, srv.token)  # type: ignore[attr-defined]
        key = await api.public_key()
        subs = [ps.subscribe(key) for _ in range(600)]
        for sub in subs:
            assert (await api.subscribe(sub))[0] == 201
        status, _ = await api.send({"title": "t", "url": "https://news.example/a"})
        assert status == 201
        async with asyncio.timeout(30):
            while len(ps.arrivals) < 50:  # noqa: ASYNC110 (the helper is mid-flight now)
                await asyncio.sleep(0.001)
        os.kill(srv.pid, signal.SIGKILL)
        srv.kill()
        # The orphan reads end-of-file (or a reset) and must just end.
        assert await asyncio.to_thread(wait_gone, helpers[0]), "the helper outlived its server"
    # The helper inherits the server's stderr, which ServerProcess writes to its log.
    assert "Traceback" not in srv.log(), srv.log()


def test_a_helper_whose_server_vanishes_mid_batch_or_gets_ctrl_c_exits_quietly(
        capfd: pytest.CaptureFixture[str]) -> None:
    """What a SIGKILLed server leaves behind: requests the helper has not answered and
    answers the server never read, so the helper's next read is reset or its write breaks."""
    ours, theirs = socket.socketpair()
    helper = multiprocessing.get_context("spawn").Process(target=helper_main, args=(theirs,))
    helper.start()
    theirs.close()
    with ours:
        assert ours.recv(8) == bytes(8)  # the empty READY frame: warm
        os.kill(helper.pid, signal.SIGINT)  # Ctrl-C reaches the server's process group
        sub = browsers(1)[0]
        batch = [(raw(sub.p256dh), raw(sub.auth))] * 64
        ours.sendall(encode_request(1, b"{}", batch))
        time.sleep(0.3)  # answered, and the answer left unread
        ours.sendall(encode_request(2, b"{}", batch) + encode_request(3, b"{}", batch))
    helper.join(10)
    err = capfd.readouterr().err
    assert helper.exitcode == 0, err
    assert "Traceback" not in err and "Error" not in err, err
