"""Calibration: what one Redis does for the feed's publish pattern, before any ticker code.

A publish on the Redis broker is one Lua script: the channel's next offset (``HINCRBY``),
the message appended to its capped history (``XADD … MAXLEN ~``) and sent to every node
(``PUBLISH``). This measures, on a private ``redis-server`` started here (so no other
test's traffic lands in its CPU):

* messages/s and Redis CPU per message with P publisher processes (redis-py, ``EVALSHA``,
  D scripts per round trip), and with ``redis-benchmark`` (C, no Python client cost);
* fan-out: the same publishes to K subscriber connections (one per server process in a
  deployment), Redis CPU per message and per delivered copy.

``python -m bench.redisfloor`` (~1 min) or ``--quick``. See docs/scaling.md.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import re
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from bench.common import cpu_ns, machine_busy_ns, table, write_json
from tests.support import free_port

# KEYS: the channel's meta hash, its history stream, its pub/sub name (one hash tag, so a
# Redis Cluster would keep them in one slot). ARGV: history length, message body.
PUBLISH_SCRIPT = """
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'o', offset, 'd', ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return offset
"""
HISTORY = 1000  # ticker's history_size default
PAYLOAD = b'{"title": "' + b"x" * 370 + b'", "url": "https://example.com/a"}'  # ~ a headline
CHANNELS = 10


def keys(channel: int) -> list[str]:
    return [f"ticker:{{c{channel}}}:meta", f"ticker:{{c{channel}}}:log", f"ticker:c{channel}"]


class RedisServer:
    """A private ``redis-server`` on a free port; ``aof`` as in docker-compose.yml."""

    def __init__(self, aof: bool) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if aof else "no", "--appendfsync", "everysec",
             "--dir", self.dir.name, "--maxclients", "10000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.sha = str(client.script_load(PUBLISH_SCRIPT))
        client.close()

    def cpu_ns(self) -> int:
        return cpu_ns(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.dir.cleanup()


def publisher(url: str, sha: str, count: int, depth: int, start: Any, offset: int) -> None:
    """One publishing process: ``count`` scripts, ``depth`` per round trip."""
    client = redis.Redis.from_url(url)
    start.wait()
    sent = 0
    while sent < count:
        pipe = client.pipeline(transaction=False)
        for i in range(min(depth, count - sent)):
            pipe.evalsha(sha, 3, *keys((offset + sent + i) % CHANNELS), HISTORY, PAYLOAD)
        pipe.execute()
        sent += depth
    client.close()


def publish(server: RedisServer, publishers: int, depth: int, count: int) -> dict[str, Any]:
    """``count`` messages from ``publishers`` processes; rate and Redis CPU per message."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    share = count // publishers
    procs = [ctx.Process(target=publisher, args=(server.url, server.sha, share, depth, start, i))
             for i in range(publishers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let the spawned interpreters import redis before the clock starts
    cpu0, busy0, t0 = server.cpu_ns(), machine_busy_ns(), time.monotonic_ns()
    start.set()
    for p in procs:
        p.join()
    t1, cpu1, busy1 = time.monotonic_ns(), server.cpu_ns(), machine_busy_ns()
    total = share * publishers
    return {"publishers": publishers, "depth": depth, "messages": total,
            "seconds": (t1 - t0) / 1e9, "msgs_per_s": total / ((t1 - t0) / 1e9),
            "redis_cpu_us_per_msg": (cpu1 - cpu0) / 1000 / total,
            "redis_core_share": (cpu1 - cpu0) / (t1 - t0),
            "machine_busy_cores": (busy1 - busy0) / (t1 - t0)}


def frame_bytes(channel: str, payload: bytes) -> int:
    """Bytes of one pub/sub message as RESP sends it to a subscriber."""
    ch = channel.encode()
    return len(b"*3\r\n$7\r\nmessage\r\n" + b"$%d\r\n%s\r\n" % (len(ch), ch)
               + b"$%d\r\n%s\r\n" % (len(payload), payload))


class Subscribers:
    """K raw subscriber connections read by one thread that only counts bytes, so the
    client side costs little next to Redis'."""

    def __init__(self, port: int, k: int) -> None:
        self.socks: list[socket.socket] = []
        self.sel = selectors.DefaultSelector()
        names = [keys(c)[2] for c in range(CHANNELS)]
        command = b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (len(names) + 1) + b"".join(
            b"$%d\r\n%s\r\n" % (len(n), n.encode()) for n in names)
        confirm = sum(len(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n"
                          % (len(n), n.encode(), i + 1)) for i, n in enumerate(names))
        for _ in range(k):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(command)
            got = 0
            while got < confirm:
                got += len(s.recv(65536))
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
        self.received = 0
        self.expected = 0
        self.done = threading.Event()

    def expect(self, total: int) -> threading.Thread:
        self.received, self.expected = 0, total
        self.done.clear()
        thread = threading.Thread(target=self._read, daemon=True)
        thread.start()
        return thread

    def _read(self) -> None:
        while self.received < self.expected:
            for key, _ in self.sel.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                with contextlib.suppress(BlockingIOError):
                    self.received += len(sock.recv(1 << 20))
        self.done.set()

    def close(self) -> None:
        for s in self.socks:
            self.sel.unregister(s)
            s.close()


def fanout(server: RedisServer, k: int, publishers: int, depth: int,
           count: int) -> dict[str, Any]:
    """Publishes as in :func:`publish` with K subscriber connections: until every copy
    has arrived."""
    subs = Subscribers(server.port, k)
    try:
        share = count // publishers
        total = share * publishers
        per_copy = sum(frame_bytes(keys(c)[2], PAYLOAD) for c in range(CHANNELS)) / CHANNELS
        reader = subs.expect(int(per_copy * total * k))
        result = publish(server, publishers, depth, count)
        t0 = time.monotonic()
        arrived = subs.done.wait(timeout=120)
        reader.join(timeout=1)
        tail = time.monotonic() - t0
    finally:
        subs.close()
    seconds = result["seconds"] + tail
    cpu_us = result["redis_cpu_us_per_msg"]
    return {**result, "subscribers": k, "all_arrived": arrived, "seconds": seconds,
            "msgs_per_s": total / seconds, "copies_per_s": total * k / seconds,
            "redis_cpu_us_per_copy": cpu_us / k}


def redis_benchmark(server: RedisServer, clients: int, depth: int, count: int,
                    command: Sequence[str]) -> dict[str, Any] | None:
    """``command`` from ``redis-benchmark`` (C): Redis' own limit, no Python client."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    cpu0, t0 = server.cpu_ns(), time.monotonic_ns()
    out = subprocess.run(
        [tool, "-p", str(server.port), "-n", str(count), "-c", str(clients), "-P", str(depth),
         "-r", str(CHANNELS), "--csv", *command],
        capture_output=True, text=True, check=True).stdout
    t1, cpu1 = time.monotonic_ns(), server.cpu_ns()
    rps = [float(m) for m in re.findall(r'^"[A-Z]+[^"]*","([\d.]+)"', out, re.M)]
    return {"command": command[0], "clients": clients, "depth": depth, "requests": count,
            "per_s": rps[0] if rps else count / ((t1 - t0) / 1e9),
            "redis_cpu_us": (cpu1 - cpu0) / 1000 / count}


def publish_command(server: RedisServer) -> list[str]:
    return ["EVALSHA", server.sha, "3", "ticker:{c__rand_int__}:meta",
            "ticker:{c__rand_int__}:log", "ticker:c__rand_int__", str(HISTORY),
            PAYLOAD.decode()]


# A resume: the last RESUME_COUNT messages of a channel's history (ticker answers a
# reconnect with what the client missed; after a deploy, every client asks at once).
RESUME_COUNT = 10
RESUME_COMMAND = ["XREVRANGE", "ticker:{c__rand_int__}:log", "+", "-", "COUNT",
                  str(RESUME_COUNT)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, fewer cases")
    parser.add_argument("--aof", action="store_true",
                        help="append-only file on (everysec), as docker-compose.yml runs it")
    parser.add_argument("--subscribers", default="1,8,32,128",
                        help="fan-out: subscriber connections, comma-separated")
    args = parser.parse_args(argv)
    count = 20_000 if args.quick else 100_000
    server = RedisServer(aof=args.aof)
    try:
        results: dict[str, Any] = {"aof": args.aof, "payload_bytes": len(PAYLOAD),
                                   "publish": [], "fanout": [], "redis_benchmark": []}
        for publishers, depth in ((1, 1), (2, 1), (1, 16), (2, 16)):
            results["publish"].append(publish(server, publishers, depth, count))
        for clients, depth in ((4, 1), (4, 16), (16, 16)):
            bench = redis_benchmark(server, clients, depth, count * 2, publish_command(server))
            if bench is not None:
                results["redis_benchmark"].append(bench)
        # the streams are full now (HISTORY entries each): resumes read real entries
        for clients, depth in ((4, 1), (16, 16)):
            bench = redis_benchmark(server, clients, depth, count, RESUME_COMMAND)
            if bench is not None:
                results["redis_benchmark"].append(bench)
        ks = [int(k) for k in args.subscribers.split(",")][: 2 if args.quick else None]
        for k in ks:
            results["fanout"].append(fanout(server, k, 2, 16, count // 2))
    finally:
        server.stop()
    print_tables(results)
    print(f"wrote {write_json('redisfloor.json', results)}")


def print_tables(results: dict[str, Any]) -> None:
    print(f"payload {results['payload_bytes']} bytes, {CHANNELS} channels, "
          f"append-only file {'on' if results['aof'] else 'off'}")
    print(table(["publishers", "per trip", "msgs/s", "Redis CPU us/msg", "Redis core",
                 "machine busy"],
                [[r["publishers"], r["depth"], r["msgs_per_s"], r["redis_cpu_us_per_msg"],
                  r["redis_core_share"], r["machine_busy_cores"]] for r in results["publish"]]))
    if results["redis_benchmark"]:
        print(f"redis-benchmark (resume: {RESUME_COUNT} newest entries of a channel's stream)")
        print(table(["command", "clients", "per trip", "requests/s", "Redis CPU us/request"],
                    [[r["command"], r["clients"], r["depth"], r["per_s"], r["redis_cpu_us"]]
                     for r in results["redis_benchmark"]]))
    print(table(["subscribers K", "msgs/s", "copies/s", "Redis CPU us/msg", "us/copy",
                 "all arrived"],
                [[r["subscribers"], r["msgs_per_s"], r["copies_per_s"],
                  r["redis_cpu_us_per_msg"], r["redis_cpu_us_per_copy"], r["all_arrived"]]
                 for r in results["fanout"]]))


if __name__ == "__main__":
    main()
