"""Encryption in helper processes: same bodies as inline, batched, errors per message."""

from __future__ import annotations

import asyncio
import base64

import pytest

from subscribers.crypto.encryptor import HelperExited, InlineEncryptor, ProcessEncryptor
from subscribers.testing import BrowserSubscriber


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
