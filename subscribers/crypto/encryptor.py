"""Where RFC 8291 encryption runs: on the event loop, or batched in helper processes.

Encryption is about half of a push's CPU (one ECDH and one key generation per message,
inside ``cryptography`` holding the GIL, so threads do not help). With one helper process
the event loop keeps sending while another core encrypts: measured in bench/README.md,
"Web Push throughput". Requests queue up during one turn of the event loop and go to a
helper as one batch (one plaintext per alert, many key pairs), so the cost of crossing
the process boundary is paid per batch, not per message.

The helpers are plain processes on a socket each, read by the event loop like any other
stream, rather than a ``ProcessPoolExecutor``: the pool's manager and queue-feeder threads,
pickling and cross-thread wake-ups cost about 20 µs per push on a two-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
import socket
import struct
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Protocol

from subscribers.crypto.encrypt import encrypt

log = logging.getLogger("subscribers.crypto.encryptor")

Keys = tuple[bytes, bytes]  # (p256dh, auth)


class HelperExited(RuntimeError):
    """Encryption is unavailable for now: the helper died (another is being started)."""

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


def _warm() -> None:
    """Imports done and one key generated in the helper before the first alert needs it."""
    encrypt(b"{}", bytes.fromhex(
        "04" "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"), b"\0" * 16)


# Frames between the server and a helper: a header (body length, batch id), then the body.
# Request body: plaintext, then each subscriber's two keys; response body: per message a
# status (0: the encrypted body follows, 1: a ValueError's message follows). Every string is
# preceded by its length. Plain bytes rather than pickle: nothing to import or execute.
_HEAD = struct.Struct("!II")
_LEN = struct.Struct("!H")
_OK, _ERROR = 0, 1
READY = 0  # the batch id of the helper's first frame; batches count from 1
MAX_KEY_BYTES = 255  # far above the 65-byte key and 16-byte secret RFC 8291 uses


def _strings(body: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(body):
        (size,) = _LEN.unpack_from(body, at)
        out.append(body[at + 2:at + 2 + size])
        at += 2 + size
    return out


def encode_request(batch_id: int, plaintext: bytes, keys: Sequence[Keys]) -> bytes:
    parts = [plaintext, *(k for pair in keys for k in pair)]
    body = b"".join(_LEN.pack(len(x)) + x for x in parts)
    return _HEAD.pack(len(body), batch_id) + body


def decode_request(body: bytes) -> tuple[bytes, list[Keys]]:
    plaintext, *flat = _strings(body)
    return plaintext, list(zip(flat[::2], flat[1::2], strict=True))


def encode_response(batch_id: int, results: Sequence[bytes | ValueError]) -> bytes:
    parts: list[bytes] = []
    for result in results:
        if isinstance(result, ValueError):
            parts += (bytes((_ERROR,)), str(result).encode()[:1000])
        else:
            parts += (bytes((_OK,)), result)
    body = b"".join(_LEN.pack(len(x)) + x for x in parts)
    return _HEAD.pack(len(body), batch_id) + body


def decode_response(body: bytes) -> list[bytes | ValueError]:
    strings = _strings(body)
    return [value if status == bytes((_OK,)) else ValueError(value.decode(errors="replace"))
            for status, value in zip(strings[::2], strings[1::2], strict=True)]


def helper_main(sock: socket.socket) -> None:
    """A helper process: answer batches until the server closes its end (or dies, which
    closes it too: no watchdog needed). An empty frame with id 0 first says it is warm."""
    # Ctrl-C in a terminal reaches the whole process group: the server shuts down and
    # closes our socket, which is how we learn to stop, without a KeyboardInterrupt here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _warm()
    # A server that dies (SIGKILL, OOM) with answers it never read or requests still queued
    # resets the socket or breaks the pipe instead of closing it cleanly. Either way the
    # work is moot and the server's log (our inherited stderr) should not get a traceback.
    with contextlib.suppress(ConnectionError), sock, sock.makefile("rb") as stream:
        sock.sendall(_HEAD.pack(0, READY))
        while len(head := stream.read(_HEAD.size)) == _HEAD.size:
            size, batch_id = _HEAD.unpack(head)
            body = stream.read(size)
            if len(body) != size:
                return  # the server went away mid-request
            plaintext, keys = decode_request(body)
            sock.sendall(encode_response(batch_id, encrypt_batch(plaintext, keys)))


Waiting = list[tuple[Keys, "asyncio.Future[bytes]"]]


class _Helper:
    """One helper process, the stream to it, and the batches it has not answered yet."""

    def __init__(self, process: BaseProcess, writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.writer = writer
        self.waiting: dict[int, Waiting] = {}
        self.reading: asyncio.Task[None] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class ProcessEncryptor:
    """Batches encryptions to ``processes`` helper processes over a socket each."""

    def __init__(self, processes: int, batch: int = BATCH) -> None:
        self._processes = processes
        self._batch = batch
        self._helpers: list[_Helper] = []
        self._turn = 0
        self._ids = itertools.count(1)
        self._pending: dict[bytes, Waiting] = {}
        self._size = 0
        self._flush_handle: asyncio.Handle | None = None
        self._closing = False

    async def start(self) -> None:
        self._helpers = [await self._spawn() for _ in range(self._processes)]
        await asyncio.gather(*(helper.ready for helper in self._helpers))

    async def _spawn(self) -> _Helper:
        ours, theirs = socket.socketpair()
        # spawn, not fork: the server runs threads (SQLite, resolver) that fork would copy
        # mid-flight. daemon: ended with the server's interpreter.
        process = multiprocessing.get_context("spawn").Process(
            target=helper_main, args=(theirs,), name="ticker-encrypt", daemon=True)
        await asyncio.to_thread(process.start)
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        helper = _Helper(process, writer)
        helper.reading = asyncio.create_task(self._read(helper, reader))
        return helper

    async def encrypt(self, plaintext: bytes, ua_public: bytes, auth_secret: bytes) -> bytes:
        if max(len(ua_public), len(auth_secret)) > MAX_KEY_BYTES:
            # Not a P-256 key or an auth secret (65 and 16 bytes), and too long for a frame.
            raise ValueError("subscriber keys of an impossible length")
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
        for plaintext, waiting in pending.items():
            for start in range(0, len(waiting), self._batch):
                self._turn = (self._turn + 1) % len(self._helpers)
                self._send(self._helpers[self._turn], plaintext,
                           waiting[start:start + self._batch])

    def _send(self, helper: _Helper, plaintext: bytes, part: Waiting) -> None:
        if helper.writer.is_closing():
            _fail(part, HelperExited("the encryption helper has exited"))
            return
        batch_id = next(self._ids)
        helper.waiting[batch_id] = part
        helper.writer.write(encode_request(batch_id, plaintext, [keys for keys, _ in part]))

    async def _read(self, helper: _Helper, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size, batch_id = _HEAD.unpack(await reader.readexactly(_HEAD.size))
                if batch_id == READY:
                    helper.ready.set_result(None)
                    continue
                results = decode_response(await reader.readexactly(size))
                for (_, future), body in zip(helper.waiting.pop(batch_id), results, strict=True):
                    if future.done():
                        continue
                    if isinstance(body, ValueError):
                        future.set_exception(body)
                    else:
                        future.set_result(body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the helper exited
        except Exception:  # a frame that makes no sense: treat the helper as broken
            log.exception("unreadable answer from an encryption helper")
            helper.process.kill()
        helper.writer.close()
        started = helper.ready.done()
        if not started:  # it never worked: starting another would only loop
            helper.ready.set_exception(RuntimeError("the encryption helper did not start"))
        for part in helper.waiting.values():
            _fail(part, HelperExited("the encryption helper has exited"))
        helper.waiting.clear()
        if started and not self._closing:
            log.error("encryption helper exited; starting another",
                      extra={"exitcode": helper.process.exitcode})
            index = self._helpers.index(helper)
            self._helpers[index] = await self._spawn()

    async def close(self) -> None:
        self._closing = True
        for helper in self._helpers:
            helper.writer.close()  # the helper reads end-of-file and exits
        for helper in self._helpers:
            if helper.reading is not None:
                # ends when the helper's end closes; a helper stuck past this is killed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(helper.reading, 5)
            await asyncio.to_thread(helper.process.join, 5)
            if helper.process.is_alive():
                helper.process.kill()


def _fail(part: Waiting, exc: Exception) -> None:
    for _, future in part:
        if not future.done():
            future.set_exception(exc)
