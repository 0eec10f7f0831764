"""Stall probe: instruments a ``ticker serve`` process without changing ticker's code.

Loaded by Python at start-up when this directory is on ``PYTHONPATH`` (``sitecustomize``),
and active only when ``STALLPROBE_LOG`` names a file. It writes one JSON line per event,
with ``time.time()`` stamps comparable with the publish times in the benchmark:

* ``gc``: every garbage collection over 5 ms (generation, duration, objects collected);
* ``iter``: every event-loop iteration over 20 ms (duration, how many descriptors the
  selector returned, how many callbacks were ready);
* ``sweep``: each heartbeat sweep (start, duration, connections, dropped);
* ``broadcast``: each broadcast (how late it started after the publisher's ``t``, how long
  it took, subscribers).

Used by ``bench/stall.py``; see bench/README.md, "The stall".
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

_PATH = os.environ.get("STALLPROBE_LOG")


def _install(path: str) -> None:
    import asyncio.base_events
    import gc

    out = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def emit(kind: str, **fields: Any) -> None:
        out.write(json.dumps({"kind": kind, "at": time.time(), **fields}) + "\n")

    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - gc_started[0]) * 1000
        if ms > 5:
            emit("gc", generation=info["generation"], ms=ms, collected=info["collected"],
                 objects=len(gc.get_objects(info["generation"])) if ms > 50 else None)

    gc.callbacks.append(on_gc)

    base = asyncio.base_events.BaseEventLoop
    original_run_once = base._run_once  # type: ignore[attr-defined]
    state: dict[str, Any] = {"events": 0, "patched": False, "selected": 0.0}

    def run_once(self: Any) -> None:
        if not state["patched"]:
            state["patched"] = True
            select = self._selector.select

            def counting_select(timeout: float | None = None) -> Any:
                events = select(timeout)
                state["events"] = len(events)
                state["selected"] = time.perf_counter()
                return events

            self._selector.select = counting_select
            _patch_ticker(emit)
        original_run_once(self)
        ms = (time.perf_counter() - state["selected"]) * 1000  # after the selector's wait
        if ms > 20:
            emit("iter", ms=ms, events=state["events"], ready_after=len(self._ready))

    base._run_once = run_once  # type: ignore[attr-defined]


def _patch_ticker(emit: Any) -> None:
    import sys

    # ticker.feed.* since the layout change; ticker.* before it (bench/README.md's older runs)
    ws = sys.modules.get("ticker.feed.ws") or sys.modules.get("ticker.ws")
    if ws is not None:
        sweep = ws.sweep

        def timed_sweep(conns: Any, *args: Any) -> int:
            started = time.perf_counter()
            n = len(conns.ws) if hasattr(conns, "ws") else \
                len(conns) if hasattr(conns, "__len__") else None
            dropped: int = sweep(conns, *args)
            emit("sweep", ms=(time.perf_counter() - started) * 1000, conns=n, dropped=dropped)
            return dropped

        setattr(ws, "sweep", timed_sweep)  # noqa: B010 - a module, not a known type
    fanout = sys.modules.get("ticker.feed.fanout") or sys.modules.get("ticker.fanout")
    if fanout is not None:
        call = fanout.Fanout.__call__

        def timed_call(self: Any, msg: Any, sinks: list[Any]) -> None:
            started = time.perf_counter()
            now_ns = time.time_ns()
            t = msg.data.get("t") if isinstance(msg.data, dict) else None
            call(self, msg, sinks)
            emit("broadcast", seq=msg.data.get("seq") if isinstance(msg.data, dict) else None,
                 late_ms=(now_ns - t) / 1e6 if isinstance(t, int) else None,
                 ms=(time.perf_counter() - started) * 1000, sinks=len(sinks))

        setattr(fanout.Fanout, "__call__", timed_call)  # noqa: B010


def _is_ticker_server() -> bool:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    return b"ticker" in args and b"serve" in args


if _PATH and _is_ticker_server():
    _install(_PATH)
