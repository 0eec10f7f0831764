"""Micro-benchmark: CPU per response of the push client's HTTP/1.1 response parser.

``python -m bench.parsebench [--n 100000] [--rounds 5] [--rev REV]``

Feeds N typical push-service answers (``201 Created`` with a ``Location`` and an empty
body, as FCM, Mozilla's autopush and Apple's service answer) to
:class:`subscribers.pushclient.http11.ResponseParser`, one parser per response as the client uses
them, in three shapes:

* **whole**: each response in one ``feed``;
* **split**: each response cut into three pieces (inside the status line, inside a header,
  just before the blank line), as slow or segmented reads deliver them;
* **chunked**: a ``410 Gone`` with a two-chunk body, in three reads cut inside chunks;
* **pipelined**: each read holds the answer and a second response behind it (bytes after
  the answer: the client, which never pipelines, answers and does not reuse the
  connection). ``--rev`` parses with the push client's ``http11.py`` of a git revision
instead (e.g. the hand-written parser before httptools), for an A/B in one run. Prints µs
per response (``time.process_time``, best of the rounds).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

WHOLE = (b"HTTP/1.1 201 Created\r\n"
         b"Location: https://fcm.googleapis.com/0:1700000000000000%25abcdef0123456789\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n"
         b"Date: Wed, 02 Dec 2026 03:40:00 GMT\r\n"
         b"Content-Length: 0\r\n\r\n")
SPLIT = [WHOLE[:11], WHOLE[11:60], WHOLE[60:-2], WHOLE[-2:]]
CHUNKED = [b"HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Type: text/plain\r\n\r\n7\r\nexp",
           b"ired\r\n12\r\n: unsubscribed",
           b" now\r\n0\r\n\r\n"]


def load(rev: str | None) -> types.ModuleType:
    if rev is None:
        from subscribers.pushclient import http11

        return http11
    # The module moved to subscribers/pushclient/ (session 3); older revisions have it at
    # the package's top.
    for path in ("subscribers/pushclient/http11.py", "subscribers/http11.py"):
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT,
                               capture_output=True, text=True)
        if shown.returncode == 0:
            break
    shown.check_returncode()
    source = shown.stdout
    module = types.ModuleType(f"http11_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def per_response(parser_class: Any, pieces: list[bytes], n: int) -> None:
    for _ in range(n):
        parser = parser_class()
        for piece in pieces:
            got = parser.feed(piece)
        assert got is not None


def pipelined(parser_class: Any, n: int) -> None:
    pair = WHOLE + WHOLE  # the answer and the start of another in the same read
    for _ in range(n):
        got = parser_class().feed(pair)
        assert got is not None and not got.keep_alive


def best_us(run: Callable[[], None], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / n * 1e6


def measure(rev: str | None, n: int, rounds: int) -> dict[str, float]:
    parser_class = load(rev).ResponseParser
    shapes: dict[str, Callable[[], None]] = {
        "whole": lambda: per_response(parser_class, [WHOLE], n),
        "split": lambda: per_response(parser_class, SPLIT, n),
        "chunked": lambda: per_response(parser_class, CHUNKED, n),
        "pipelined": lambda: pipelined(parser_class, n),
    }
    return {name: best_us(run, n, rounds) for name, run in shapes.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="responses per shape")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rev", action="append", default=[],
                        help="also parse with the http11.py of this git revision")
    args = parser.parse_args(argv)
    print(f"{'parser':>16} {'whole':>8} {'split':>8} {'chunked':>8} {'pipelined':>10}  µs/response")
    for rev in [None, *args.rev]:
        got = measure(rev, args.n, args.rounds)
        print(f"{rev or 'working tree':>16} {got['whole']:>8.2f} {got['split']:>8.2f} "
              f"{got['chunked']:>8.2f} {got['pipelined']:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
