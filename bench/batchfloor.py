"""Calibration: what PostgreSQL does for push delivery's batches, before any push is sent.

A push worker's database work per audience batch is: lease it (one transaction: the
alert's row, a free batch ``FOR UPDATE SKIP LOCKED`` or the next keyset cut), load its
subscribers (two reads), and write its result (one transaction; no row per accepted
push). This runs exactly those functions (:mod:`subscribers.delivery.batchstore`) against
the local PostgreSQL, in P processes (each a worker with its own connection pool) holding
B batches at once, with every push "accepted" and no network in between: so the figure is
the database's ceiling, in batches and subscribers per second, and PostgreSQL's CPU per
batch (every ``postgres`` process on the machine, measured from /proc).

``python -m bench.batchfloor`` (~1 min) or ``--quick``; ``--dsn`` for another server.
A fresh schema is made and dropped. See docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import cpu_ns, machine_busy_ns, table, write_json
from subscribers import alerts
from subscribers.delivery import batchstore
from subscribers.delivery.batching import Tally, batches_in_flight
from subscribers.migrations import WITH_PLATFORM
from subscribers.validate import AlertIn
from ticker.storage import open_database

DSN = "postgresql://127.0.0.1:5432/test"
ALERT = AlertIn("Flood warning", "Roads near the river are closed.", "https://news.example/a",
                "", "", "flood", (), (), "normal", 3600)


SHARED = ("walwriter", "checkpointer", "background writer")


def postgres_cpu_ns(backends: Sequence[int]) -> int:
    """CPU of the workers' own backends and of the server's shared writers (WAL writer,
    checkpointer, background writer). Other sessions' backends (other tests on the same
    server) are left out: they come and go, and one that exits takes its CPU with it."""
    total = sum(cpu_ns(pid) for pid in backends)
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
            if text.startswith("postgres:") and any(name in text for name in SHARED):
                total += cpu_ns(int(cmdline.parent.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def psql(dsn: str, sql: str) -> None:
    subprocess.run(["psql", dsn, "-qc", sql], check=True, capture_output=True)


async def seed(url: str, subscribers: int) -> int:
    """The schema, a VAPID key and ``subscribers`` subscriptions; an alert to all of them."""
    db = await open_database(url, WITH_PLATFORM)
    try:
        now = time.time()
        key_id = await db.insert("INSERT INTO vapid_keys (public_key, private_key, created_at) "
                                 "VALUES (?, ?, ?)", ("pub", "priv", now))
        await db.execute(
            "INSERT INTO push_subscriptions (endpoint, p256dh, auth, expiration_time, language, "
            "timezone, vapid_key_id, created_at, updated_at) "
            "SELECT 'https://push.example/s/' || g, 'p256dh', 'auth', NULL, 'en', 'UTC', ?, ?, ? "
            "FROM generate_series(1, ?) g", (key_id, now, now, subscribers))
        await db.execute("ANALYZE push_subscriptions")
        alert_id, _ = await alerts.create(db, ALERT, idempotency_key=None, created_by=None,
                                          now=now)
        return alert_id
    finally:
        await db.close()


async def work(url: str, alert_id: int, owner: str, held: int, size: int, start: Any,
               stop: Any, out: Any) -> None:
    """One worker: ``held`` batch loops until the alert is all leased; puts (batches,
    pushes). Its connections open before ``start`` and close after ``stop``, so their
    backends live through the measurement (a backend that exits takes its CPU with it)."""
    db = await open_database(url, ())
    async with asyncio.timeout(60):  # the pool's connections, opened now
        rows = await asyncio.gather(*(db.fetchone("SELECT pg_backend_pid() AS pid, "
                                                  "pg_sleep(0.2)") for _ in range(held)))
    out.put(sorted({int(r["pid"]) for r in rows if r is not None}))
    done = [0, 0]

    async def loop() -> None:
        while True:
            now = time.time()
            batch = await batchstore.lease(db, alert_id, owner, now, now + 30, size)
            if batch is None:
                return
            dues = await batchstore.load(db, batch, now)
            tally = Tally(targeted=batch.targeted)
            for due in dues:
                tally.add(due.subscription_id, "sent", 1, now, 201)
            if await batchstore.finish(db, batch, owner, tally, 0, time.time()):
                done[0] += 1
                done[1] += len(dues)

    try:
        await asyncio.to_thread(start.wait)
        await asyncio.gather(*(loop() for _ in range(held)))
        out.put((done[0], done[1]))
        await asyncio.to_thread(stop.wait)
    finally:
        await db.close()


def worker_process(url: str, alert_id: int, owner: str, held: int, size: int,
                   start: Any, stop: Any, out: Any) -> None:
    asyncio.run(work(url, alert_id, owner, held, size, start, stop, out))


def run(dsn: str, subscribers: int, processes: int, held: int, size: int) -> dict[str, Any]:
    schema = "bench_" + secrets.token_hex(4)
    psql(dsn, f"CREATE SCHEMA {schema}")
    url = f"{dsn}?search_path={schema}"
    try:
        alert_id = asyncio.run(seed(url, subscribers))
        ctx = multiprocessing.get_context("spawn")
        start, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=worker_process,
                             args=(url, alert_id, f"w{i}", held, size, start, stop, out))
                 for i in range(processes)]
        for p in procs:
            p.start()
        backends = [pid for _ in procs for pid in out.get(timeout=120)]
        pg0, busy0, t0 = postgres_cpu_ns(backends), machine_busy_ns(), time.monotonic_ns()
        start.set()
        results = [out.get(timeout=600) for _ in procs]
        t1, pg1, busy1 = time.monotonic_ns(), postgres_cpu_ns(backends), machine_busy_ns()
        stop.set()
        for p in procs:
            p.join()
    finally:
        psql(dsn, f"DROP SCHEMA {schema} CASCADE")
    batches = sum(b for b, _ in results)
    pushes = sum(n for _, n in results)
    seconds = (t1 - t0) / 1e9
    return {"subscribers": subscribers, "backends": len(backends), "processes": processes,
            "held": held,
            "batch_size": size, "batches": batches, "pushes": pushes,
            "complete": pushes == subscribers, "seconds": seconds,
            "batches_per_s": batches / seconds, "pushes_per_s": pushes / seconds,
            "pg_cpu_us_per_batch": (pg1 - pg0) / 1000 / max(1, batches),
            "pg_cores": (pg1 - pg0) / (t1 - t0),
            "machine_busy_cores": (busy1 - busy0) / (t1 - t0)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 subscribers, two cases")
    parser.add_argument("--dsn", default=DSN, help=f"PostgreSQL to use (default {DSN})")
    parser.add_argument("--batch-size", type=int, default=200,
                        help="push_batch_size (default 200, ticker's default)")
    args = parser.parse_args(argv)
    subscribers = 20_000 if args.quick else 200_000
    held = batches_in_flight(128, args.batch_size)  # push_concurrency 128: ticker's default
    cases = [(1, held), (2, held)] if args.quick else [(1, held), (2, held), (4, held),
                                                       (4, 4 * held)]
    rows = [run(args.dsn, subscribers, p, h, args.batch_size) for p, h in cases]
    print(table(["processes", "batches held each", "batch", "batches/s", "subscribers/s",
                 "PG CPU us/batch", "PG cores", "machine busy", "complete"],
                [[r["processes"], r["held"], r["batch_size"], r["batches_per_s"],
                  r["pushes_per_s"], r["pg_cpu_us_per_batch"], r["pg_cores"],
                  r["machine_busy_cores"], r["complete"]] for r in rows]))
    print(f"wrote {write_json('batchfloor.json', {'runs': rows})}")


if __name__ == "__main__":
    main()
