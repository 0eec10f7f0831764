"""Web Push throughput: one alert to S subscribers, a real ``ticker serve`` against a lean
push-service stand-in, with pywebpush's two ways of sending as baselines in the same run.

``python -m bench.push`` (S = 1,000, 10,000 and 100,000) or ``--quick`` (S = 2,000, small
baselines). See bench/README.md, "How the push benchmark measures".
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench import cryptofloor
from bench.common import (
    RESULTS_DIR,
    Check,
    cpu_count,
    cpu_ns,
    machine_busy_ns,
    raise_nofile,
    table,
    tree_cpu_ns,
    user_sys_s,
    write_json,
)
from bench.servers import post_json
from subscribers.migrations import WITH_PLATFORM
from subscribers.validate import AlertIn, b64url_encode
from tests.support import ServerProcess, free_port
from ticker.storage import open_database

ROOT = Path(__file__).resolve().parent.parent
KEYS_FILE = RESULTS_DIR / "push-subscriber-keys.txt"  # cached: 100,000 keys take seconds
SUBJECT = "mailto:bench@example.org"
ALERT = {"title": "Flood warning for the city centre",
         "body": "Roads near the river are closed; avoid the area until further notice.",
         "url": "https://news.example/local/flood-warning", "tag": "flood-warning"}

# CPU per push as a ratio to the encryption floor measured in the same run
# (bench/cryptofloor.py: key generation + ECDH + HKDF + AES-GCM for one message).
TARGET_CPU_RATIO = 2.5
TARGET_VS_LOOP = 10.0
TARGET_VS_ASYNC = 3.5
TARGET_100K_S = 30.0
# alert -> first push at the largest S against the smallest, in the same run
TARGET_FIRST_PUSH_RATIO = 1.5


# -- subscribers and the stand-in ------------------------------------------------------

def subscriber_keys(n: int) -> list[tuple[str, str]]:
    """``(p256dh, auth)`` for n browser-like subscribers, generated once and cached.

    Only the public half is kept: the lean stand-in does not decrypt.
    """
    lines = KEYS_FILE.read_text().splitlines() if KEYS_FILE.exists() else []
    if len(lines) < n:
        print(f"generating {n - len(lines):,} subscriber keys (cached in {KEYS_FILE})",
              flush=True)
        for _ in range(n - len(lines)):
            public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint)
            lines.append(f"{b64url_encode(public)} {b64url_encode(os.urandom(16))}")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        KEYS_FILE.write_text("\n".join(lines) + "\n")
    return [(p, a) for p, a in (line.split() for line in lines[:n])]


class StandIn:
    """:mod:`bench.push_standin` in its own process."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.push_standin", "--port", str(self.port)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"stand-in did not start: {log_path.read_text()}") from None
                time.sleep(0.05)
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def _call(self, method: str, path: str) -> dict[str, Any]:
        self.http.request(method, path)
        return dict(json.loads(self.http.getresponse().read()))

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(10)


# -- the server under test -------------------------------------------------------------

@dataclass
class Vapid:
    public: str
    private: str  # base64url of the raw 32-byte scalar


def new_vapid() -> Vapid:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return Vapid(b64url_encode(public),
                 b64url_encode(key.private_numbers().private_value.to_bytes(32, "big")))


async def create_schema(db_path: Path) -> None:
    """The platform's and push's tables, as the server would make them at start."""
    db = await open_database(f"sqlite:///{db_path}", WITH_PLATFORM)
    await db.close()


def seed(db_path: Path, keys: list[tuple[str, str]], origin: str, vapid: Vapid) -> None:
    """The VAPID key and one subscription per key, straight into the tables that
    subscribers/migrations.py makes."""
    now = time.time()
    with sqlite3.connect(db_path) as conn:
        key_id = conn.execute("INSERT INTO vapid_keys (public_key, private_key, created_at) "
                              "VALUES (?, ?, ?)", (vapid.public, vapid.private, now)).lastrowid
        conn.executemany(
            "INSERT INTO push_subscriptions (endpoint, p256dh, auth, expiration_time, language, "
            "timezone, vapid_key_id, created_at, updated_at) VALUES (?, ?, ?, NULL, 'en', "
            "'UTC', ?, ?, ?)",
            [(f"{origin}/push/{i}", p, a, key_id, now, now) for i, (p, a) in enumerate(keys)])


class PushServer:
    """``python -m ticker serve`` with S subscriptions, sending to the stand-in."""

    def __init__(self, data_dir: Path, keys: list[tuple[str, str]], standin: StandIn,
                 vapid: Vapid, env: dict[str, str] | None = None) -> None:
        self.proc = ServerProcess(data_dir, env={
            "TICKER_PUSH_ALLOWED_HOSTS": standin.origin, "TICKER_VAPID_SUBJECT": SUBJECT,
            "TICKER_MODE": "production", **(env or {})})
        self.token = self.proc.create_token(name="bench")
        asyncio.run(create_schema(data_dir / "ticker.db"))
        seed(data_dir / "ticker.db", keys, standin.origin, vapid)
        self.proc.start(timeout=60)
        self.http = http.client.HTTPConnection("127.0.0.1", self.proc.port, timeout=60)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def post_alert(self, alert: dict[str, Any]) -> int:
        return int(json.loads(post_json(self.http, "/api/alerts", self.token, alert))["id"])

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The server's SQLite file, read from here (WAL): costs the server nothing."""
        with sqlite3.connect(self.proc.data_dir / "ticker.db") as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


def start_profiler(pid: int, name: str, seconds: float) -> subprocess.Popen[bytes]:
    out = RESULTS_DIR / f"profile-push-{name}.txt"
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return subprocess.Popen([spy, "record", "-p", str(pid), "-f", "raw", "-r", "200",
                             "-d", str(max(1, round(seconds))), "-o", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(check: Any, within: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def send_once(server: PushServer, standin: StandIn, n: int, profile: bool) -> dict[str, Any]:
    """One alert to all n subscribers: wall time, stand-in arrivals, server CPU."""
    standin.reset()
    profiler = start_profiler(server.pid, f"ticker-{n}", max(3.0, n / 3000)) if profile else None
    busy0, standin0 = machine_busy_ns(), cpu_ns(standin.proc.pid)
    cpu0, us0, t0 = tree_cpu_ns(server.pid), user_sys_s(server.pid), time.time_ns()
    alert_id = server.post_alert(ALERT)
    t_created = time.time_ns()
    arrived = wait_until(lambda: standin.stats()["requests"] >= n, within=max(60.0, n / 500))
    done = wait_until(lambda: server.query("SELECT status FROM alerts WHERE id = ?",
                                           (alert_id,))[0][0] == "done", within=60)
    t1, cpu1, us1 = time.time_ns(), tree_cpu_ns(server.pid), user_sys_s(server.pid)
    # cores other processes kept busy meanwhile (neither the server nor the stand-in)
    others = (machine_busy_ns() - busy0 - (cpu1 - cpu0)
              - (cpu_ns(standin.proc.pid) - standin0)) / (t1 - t0)
    if profiler is not None:
        profiler.wait(120)
    stats = standin.stats()
    # accepted deliveries are counted in their batch (no row); rows: retries and failures
    states = dict(server.query("SELECT state, COUNT(*) FROM alert_deliveries "
                               "WHERE alert_id = ? GROUP BY state", (alert_id,)))
    accepted = server.query("SELECT COALESCE(SUM(accepted), 0) FROM alert_batches "
                            "WHERE alert_id = ?", (alert_id,))[0][0]
    states["sent"] = states.get("sent", 0) + int(accepted)
    seconds = (t1 - t0) / 1e9
    return {"sender": "ticker", "n": n, "pushes": stats["requests"],
            "states": states, "complete": arrived and done and states.get("sent") == n,
            "seconds": seconds, "pushes_per_s": stats["requests"] / seconds,
            "create_ms": (t_created - t0) / 1e6,
            "first_push_ms": (stats["first_ns"] - t0) / 1e6 if stats["first_ns"] else None,
            "cpu_us_per_push": (cpu1 - cpu0) / 1000 / max(1, stats["requests"]),
            "user_s": us1[0] - us0[0], "sys_s": us1[1] - us0[1],
            "connections": stats["connections"], "other_cores_busy": max(0.0, others)}


def run_ticker(n: int, keys: list[tuple[str, str]], standin: StandIn, vapid: Vapid,
               profile: bool, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        server = PushServer(Path(tmp), keys[:n], standin, vapid, env)
        try:
            return send_once(server, standin, n, profile)
        finally:
            server.stop()


def payload_text() -> str:
    """The plaintext ticker would send for ALERT, so the baselines encrypt the same bytes."""
    alert = AlertIn(ALERT["title"], ALERT["body"], ALERT["url"], "", "", ALERT["tag"], (), (),
                    "normal", 3600)
    return alert.notification(1).encode().decode()


def _children_cpu_ns() -> int:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def run_baseline(mode: str, n: int, standin: StandIn, vapid: Vapid) -> dict[str, Any]:
    standin.reset()
    busy0, standin0, child0 = machine_busy_ns(), cpu_ns(standin.proc.pid), _children_cpu_ns()
    t0 = time.monotonic_ns()
    out = subprocess.run(
        [sys.executable, "-m", "bench.push_baselines", mode, "--keys", str(KEYS_FILE),
         "--count", str(n), "--origin", standin.origin, f"--private-key={vapid.private}",
         f"--data={payload_text()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"baseline {mode} failed: {out.stderr[-2000:]}")
    # cores other processes kept busy meanwhile (not the baseline's process nor the stand-in)
    others = (machine_busy_ns() - busy0 - (_children_cpu_ns() - child0)
              - (cpu_ns(standin.proc.pid) - standin0)) / (time.monotonic_ns() - t0)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    stats = standin.stats()
    return {"sender": f"pywebpush {mode}", "n": n, "pushes": stats["requests"],
            "states": {"sent": got["accepted"]}, "complete": got["accepted"] == n,
            "seconds": got["seconds"], "pushes_per_s": n / got["seconds"],
            "create_ms": None, "first_push_ms": None,
            "cpu_us_per_push": got["cpu_s"] * 1e6 / n, "user_s": None, "sys_s": None,
            "connections": stats["connections"], "other_cores_busy": max(0.0, others)}


# -- report ----------------------------------------------------------------------------

def add_ratios(results: list[dict[str, Any]], floor_us: float) -> None:
    """CPU per push against the encryption floor; throughput against each baseline."""
    by_name = {r["sender"]: r for r in results if r["sender"] != "ticker"}
    for r in results:
        r["cpu_ratio"] = r["cpu_us_per_push"] / floor_us
        for key, name in (("vs_loop", "pywebpush loop"), ("vs_async", "pywebpush async")):
            base = by_name.get(name)
            r[key] = r["pushes_per_s"] / base["pushes_per_s"] if base else float("nan")


def render(results: list[dict[str, Any]]) -> str:
    rows = [[r["sender"], r["n"], f"{r['pushes']:,}/{r['n']:,}", r["seconds"], r["pushes_per_s"],
             _x(r.get("vs_loop")), _x(r.get("vs_async")), r["cpu_us_per_push"],
             _x(r.get("cpu_ratio")),
             r["first_push_ms"] if r["first_push_ms"] is not None else float("nan"),
             r["connections"], _others(r.get("other_cores_busy"))] for r in results]
    # others: cores other processes kept busy during each send (see bench/README.md)
    return table(["sender", "S", "accepted", "seconds", "pushes/s", "xloop", "xasync",
                  "CPU µs/push", "CPU xfloor", "1st push ms", "conns", "others"], rows)


def _others(cores: float | None) -> str:
    return "-" if cores is None else f"{cores:.2f}"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None or ratio != ratio else f"{ratio:.2f}x"


def checks(results: list[dict[str, Any]], floor_us: float) -> list[Check]:
    ticker = [r for r in results if r["sender"] == "ticker"]
    by_name = {r["sender"]: r for r in results if r["sender"] != "ticker"}
    found = [Check(f"sender CPU per push, S = {r['n']:,}: {r['cpu_us_per_push']:.1f} µs / "
                   f"{floor_us:.1f} µs encryption floor", r["cpu_ratio"], TARGET_CPU_RATIO, "x")
             for r in ticker]
    found += [Check(f"all {r['n']:,} accepted and marked sent", float(r["complete"]), 1.0,
                    "", higher_is_better=True) for r in ticker]
    if ticker:
        # S = 10,000 when it ran: the same order of size as the baselines
        base = next((r for r in ticker if r["n"] == 10_000), min(ticker, key=lambda r: r["n"]))
        for name, bound in (("pywebpush loop", TARGET_VS_LOOP),
                            ("pywebpush async", TARGET_VS_ASYNC)):
            if name in by_name:
                found.append(Check(
                    f"throughput vs {name} (ticker S = {base['n']:,}: "
                    f"{base['pushes_per_s']:,.0f}/s, {name}: "
                    f"{by_name[name]['pushes_per_s']:,.0f}/s)",
                    base["pushes_per_s"] / by_name[name]["pushes_per_s"], bound, "x",
                    higher_is_better=True))
    found += [Check("100,000 subscribers sent within", r["seconds"], TARGET_100K_S, "s")
              for r in ticker if r["n"] == 100_000]
    timed = [r for r in ticker if r["first_push_ms"] is not None]
    if len(timed) >= 2:
        small, large = min(timed, key=lambda r: r["n"]), max(timed, key=lambda r: r["n"])
        found.append(Check(
            f"alert -> first push at S = {large['n']:,} ({large['first_push_ms']:.1f} ms) vs "
            f"S = {small['n']:,} ({small['first_push_ms']:.1f} ms)",
            large["first_push_ms"] / small["first_push_ms"], TARGET_FIRST_PUSH_RATIO, "x"))
    return found


def charts(results: list[dict[str, Any]], floor_us: float) -> Path:
    import matplotlib.pyplot as plt

    from bench.charts import _save  # selects the Agg backend before the first figure

    labels = [f"{r['sender']}\nS={r['n']:,}" for r in results]
    colours = ["tab:blue" if r["sender"] == "ticker" else "tab:orange" for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "pushes_per_s", "pushes per second (higher is better)"),
                           (axes[1], "cpu_us_per_push", "sender CPU µs per push")):
        ax.bar(range(len(results)), [r[key] for r in results], color=colours)
        ax.set_xticks(range(len(results)), labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    target = TARGET_CPU_RATIO * floor_us
    axes[1].axhline(target, color="tab:red", linestyle=":",
                    label=f"target {TARGET_CPU_RATIO:g} x the encryption floor ({target:.0f} µs)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return Path(_save(fig, "push-throughput.png"))


def run_scheduled(n: int, keys: list[tuple[str, str]], standin: StandIn, vapid: Vapid,
                  env: dict[str, str], repeats: int = 5, lead: float = 3.0) -> dict[str, Any]:
    """A scheduled alert's first push against its ``send_at`` (target: within 1 s).

    Each alert is posted ``lead`` seconds ahead of its send_at, so what is measured is the
    runner waking at the time the database holds, starting the alert (the conditional
    UPDATE and the audience copy) and sending, not the POST.
    """
    lags_ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        server = PushServer(Path(tmp), keys[:n], standin, vapid, env)
        try:
            for _ in range(repeats):
                standin.reset()
                send_at = time.time() + lead
                alert_id = server.post_alert({**ALERT, "send_at": send_at})
                wait_until(lambda a=alert_id: server.query(
                    "SELECT status FROM alerts WHERE id = ?", (a,))[0][0] == "done",
                           within=lead + max(60.0, n / 500))
                first_ns = standin.stats()["first_ns"]
                lags_ms.append((first_ns / 1e9 - send_at) * 1000 if first_ns else float("inf"))
        finally:
            server.stop()
    return {"sender": "ticker-scheduled", "n": n, "lags_ms": lags_ms,
            "worst_ms": max(lags_ms), "within_1s": max(lags_ms) <= 1000.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="S = 2,000, baselines on 200 (loop) and 1,000 (async)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="subscriber counts (default 1000,10000,100000)")
    parser.add_argument("--loop-count", type=int, help="pywebpush loop pushes (default 1,000)")
    parser.add_argument("--async-count", type=int,
                        help="pywebpush async pushes (default 10,000)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the server during each send "
                             "(bench/results/profile-push-*.txt, collapsed stacks)")
    parser.add_argument("--env", action="append", default=[], metavar="TICKER_X=VALUE",
                        help="extra server setting, e.g. TICKER_PUSH_CONCURRENCY=128")
    parser.add_argument("--no-charts", action="store_true")
    parser.add_argument("--scheduled", type=int, metavar="S",
                        help="only: a scheduled alert's first push vs send_at, S subscribers")
    args = parser.parse_args(argv)
    args.env = dict(e.split("=", 1) for e in args.env)
    args.sizes = args.sizes or ([2000] if args.quick else [1000, 10_000, 100_000])
    args.loop_count = args.loop_count or (200 if args.quick else 1000)
    args.async_count = args.async_count or (1000 if args.quick else 10_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_nofile()
    started = time.monotonic()
    keys = subscriber_keys(args.scheduled or max([*args.sizes, args.loop_count,
                                                  args.async_count]))
    print(f"push: S={args.sizes}, pywebpush loop {args.loop_count:,}, async "
          f"{args.async_count:,}, {cpu_count()} CPUs", flush=True)
    standin = StandIn(RESULTS_DIR / "push-standin.log")
    vapid = new_vapid()
    if args.scheduled:
        try:
            found_lag = run_scheduled(args.scheduled, keys, standin, vapid, args.env)
        finally:
            standin.stop()
        print(f"scheduled alert, S={args.scheduled:,}: first push after send_at "
              + ", ".join(f"{lag:.0f}" for lag in found_lag["lags_ms"]) + " ms; worst "
              f"{found_lag['worst_ms']:.0f} ms (target <= 1000 ms: "
              f"{'met' if found_lag['within_1s'] else 'MISSED'})")
        write_json("push-scheduled.json", found_lag)
        return 0
    results: list[dict[str, Any]] = []
    try:
        if not args.no_baselines:
            for mode, count in (("loop", args.loop_count), ("async", args.async_count)):
                results.append(run_baseline(mode, count, standin, vapid))
                print(render(results[-1:]).splitlines()[-1], flush=True)
        # The floor just before and just after ticker's sends, so that a phase in which
        # other work slows the machine down weighs on both sides of the ratio.
        floors = [cryptofloor.measure()]
        for n in args.sizes:
            results.append(run_ticker(n, keys, standin, vapid, args.profile, args.env))
            print(render(results[-1:]).splitlines()[-1], flush=True)
        floors.append(cryptofloor.measure())
    finally:
        standin.stop()
    floor = cryptofloor.CryptoFloor(
        sum(f.us_per_message for f in floors) / len(floors),
        {k: sum(f.parts_us[k] for f in floors) / len(floors) for k in floors[0].parts_us})
    add_ratios(results, floor.us_per_message)
    print(render(results))
    print(cryptofloor.line(floor) + " (mean of before and after: "
          + ", ".join(f"{f.us_per_message:.1f}" for f in floors) + ")")
    found = checks(results, floor.us_per_message)
    print("targets:")
    for check in found:
        print(check.line())
    path = write_json("push.json", {"results": results, "checks": [c.as_dict() for c in found],
                                    "encryption_floor_us": floor.us_per_message,
                                    "encryption_floors_us": [f.us_per_message for f in floors],
                                    "encryption_floor_parts_us": floor.parts_us,
                                    "cpus": cpu_count(),
                                    "wall_s": time.monotonic() - started})
    print(f"results: {path}")
    if not args.no_charts:
        print(f"chart: {charts(results, floor.us_per_message)}")
    print(f"took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
