"""Where RFC 8291 encryption runs: on the event loop, or batched in helper processes.

Encryption is about half of a push's CPU (one ECDH and one key generation per message,
inside ``cryptography`` holding the GIL, so threads do not help). With one helper process
the event loop keeps sending while another core encrypts: measured in bench/README.md,
"Web Push throughput". Requests queue up during one turn of the event loop and go to a
helper as one batch (one plaintext per alert, many key pairs), so the cost of crossing
the process boundary is paid per batch, not per message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from subscribers.encrypt import encrypt

Keys = tuple[bytes, bytes]  # (p256dh, auth)

BATCH = 64  # messages per trip to a helper; larger batches add latency, not throughput


class Encryptor(Protocol):
    async def encrypt(self, plaintext: bytes, ua_public: bytes, auth_secret: bytes) -> bytes: ...
    async def close(self) -> None: ...


class InlineEncryptor:
    """Encrypts on the event loop (tests, one-core machines, ``push_encrypt_processes = 0``)."""

    async def encrypt(self, plaintext: bytes, ua_public: bytes, auth_secret: bytes) -> bytes:
        return encrypt(plaintext, ua_public, auth_secret)

    async def close(self) -> None:
        return None


def encrypt_batch(plaintext: bytes, keys: Sequence[Keys]) -> list[bytes | ValueError]:
    """Runs in a helper process: one body per key pair, or the error for that one."""
    out: list[bytes | ValueError] = []
    for ua_public, auth_secret in keys:
        try:
            out.append(encrypt(plaintext, ua_public, auth_secret))
        except ValueError as exc:  # a malformed stored key spoils one message, not the batch
            out.append(exc)
    return out


def _exit_with_parent(parent: int) -> None:
    """Initializer of each helper: end when the server does, even if it was killed.

    A pool worker holds both ends of its own task queue, so a killed parent never shows up
    as end-of-file; a daemon thread watching the parent id does."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm() -> None:
    """Imports done and one key generated in the helper before the first alert needs it."""
    encrypt(b"{}", bytes.fromhex(
        "04" "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"), b"\0" * 16)


class ProcessEncryptor:
    """Batches encryptions to ``processes`` helper processes."""

    def __init__(self, processes: int, batch: int = BATCH) -> None:
        # spawn, not fork: the server runs threads (SQLite, resolver) that fork would copy
        # mid-flight.
        self._pool = concurrent.futures.ProcessPoolExecutor(
            processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent, initargs=(os.getpid(),))
        self._processes = processes
        self._batch = batch
        self._pending: dict[bytes, list[tuple[Keys, asyncio.Future[bytes]]]] = {}
        self._size = 0
        self._flush_handle: asyncio.Handle | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _warm)
                               for _ in range(self._processes)))

    async def encrypt(self, plaintext: bytes, ua_public: bytes, auth_secret: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending.setdefault(plaintext, []).append(((ua_public, auth_secret), future))
        self._size += 1
        if self._size >= self._batch:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending, self._size = self._pending, {}, 0
        loop = asyncio.get_running_loop()
        for plaintext, waiting in pending.items():
            for start in range(0, len(waiting), self._batch):
                part = waiting[start:start + self._batch]
                done = loop.run_in_executor(self._pool, encrypt_batch, plaintext,
                                            [keys for keys, _ in part])
                done.add_done_callback(lambda f, part=part: _deliver(f, part))  # type: ignore[misc]

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)


def _deliver(done: asyncio.Future[list[bytes | ValueError]],
             part: list[tuple[Keys, asyncio.Future[bytes]]]) -> None:
    if done.cancelled() or done.exception() is not None:
        exc = done.exception() if not done.cancelled() else asyncio.CancelledError()
        for _, future in part:
            if not future.done():
                future.set_exception(exc or RuntimeError("encryption failed"))
        return
    for (_, future), body in zip(part, done.result(), strict=True):
        if future.done():
            continue
        if isinstance(body, ValueError):
            future.set_exception(body)
        else:
            future.set_result(body)
