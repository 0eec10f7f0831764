"""End-to-end benchmark: a published article reaching 1,000 widget clients.

``python -m bench.e2e``. The article path is the CMS webhook: ``POST /api/articles``
signed with ``X-Ticker-Signature``, checked, stored (SQLite) and published on
``headlines``, ``headlines:en`` and ``headlines:local``. It is measured against the
channel publish path (``POST /api/channels/headlines/messages`` with an editor token) in
the same run: one server, the same clients, broadcasts alternating between the two paths
(even by the channel API, odd by the webhook), so both meet the same noise; the target is
the ratio of the p99s. The widget client is a ``/ws`` connection subscribed to
``headlines``, as ``widget.js`` makes. The second figure, "editor alert → first push
request", runs from ``POST /api/alerts`` on a real ``ticker serve`` with 1,000 push
subscribers to the moment the first push request reaches the lean push-service stand-in
(:mod:`bench.push_standin`).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    Check,
    latency_summary,
    raise_nofile,
    table,
    write_json,
)
from bench.fanout import Plan, run_case
from bench.push import ALERT, PushServer, StandIn, new_vapid, subscriber_keys, wait_until
from tests.support import ServerProcess

TARGET_P99_MS = 20.0
TARGET_ARTICLE_RATIO = 1.2  # article path p99 / channel path p99, same run
TARGET_ALERT_MS = 50.0
ALERTS = 30
PUSH_SUBSCRIBERS = 1000
CLIENTS = 1000
ARTICLE = {"title": "Council approves the new bridge after a decade of debate",
           "url": "https://news.example/local/2021/07/19/bridge-approved",
           "summary": "The vote passed 31 to 12; construction starts next spring.",
           "image": "https://news.example/img/bridge.jpg"}


def routes_present(paths: list[str]) -> dict[str, bool]:
    """Which POST routes the server has: an unauthenticated POST is 404 only when absent."""
    with tempfile.TemporaryDirectory(prefix="bench-routes-") as tmp:
        server = ServerProcess(Path(tmp)).start()
        try:
            found = {}
            for path in paths:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                conn.request("POST", path, body=b"{}",
                             headers={"Content-Type": "application/json"})
                found[path] = conn.getresponse().status not in (404, 405)
                conn.close()
            return found
        finally:
            server.stop()


def paths_table(paths: list[tuple[str, dict[str, Any]]], result: dict[str, Any]) -> str:
    """The two paths side by side, from the one run that alternated them."""
    headers = ["path", "N", "broadcasts", "arrival p50 ms", "arrival p99 ms",
               "arrival max ms", "parsed p50 ms", "parsed p99 ms"]
    rows = [[name, result["n"], result["broadcasts"] // 2, s["arrival"]["p50_ms"],
             s["arrival"]["p99_ms"], s["arrival"]["max_ms"], s["observed"]["p50_ms"],
             s["observed"]["p99_ms"]] for name, s in paths]
    return table(headers, rows) + (
        f"\ndelivered {result['delivered']:,}/{result['expected']:,}, server CPU "
        f"{result['cpu_us_per_frame']:.2f} µs/frame, other cores busy "
        f"{result['other_cores_busy']:.2f}")


def alert_to_first_push(count: int, subscribers: int) -> dict[str, Any]:
    """POST /api/alerts ``count`` times, one after another; for each, the time until the
    stand-in receives the first push request (both clocks are this machine's)."""
    standin = StandIn(RESULTS_DIR / "e2e-standin.log")
    first_us: list[float] = []
    answered_us: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-push-") as tmp:
            server = PushServer(Path(tmp), subscriber_keys(subscribers), standin, new_vapid())
            try:
                for k in range(count + 2):  # two warm-up alerts, not counted
                    standin.reset()
                    t0 = time.time_ns()
                    alert_id = server.post_alert({**ALERT, "title": f"Alert {k}"})
                    t_answer = time.time_ns()
                    if not wait_until(lambda: standin.stats()["requests"] >= subscribers, 60):
                        raise RuntimeError("the alert did not reach every subscriber")
                    wait_until(lambda aid=alert_id: server.query(
                        "SELECT status FROM alerts WHERE id = ?", (aid,))[0][0] == "done", 30)
                    if k >= 2:
                        first_us.append((standin.stats()["first_ns"] - t0) / 1000)
                        answered_us.append((t_answer - t0) / 1000)
            finally:
                server.stop()
    finally:
        standin.stop()
    return {"skipped": False, "subscribers": subscribers,
            "first_push": latency_summary(first_us), "post_answered": latency_summary(answered_us),
            "samples_us": first_us}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--broadcasts", type=int, default=30)
    parser.add_argument("--alerts", type=int, default=ALERTS)
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args(argv)
    raise_nofile()
    routes = routes_present(["/api/articles", "/api/alerts"])
    via = "/api/articles"
    print("article path: POST /api/articles (signed), alternating with POST "
          "/api/channels/headlines/messages in the same run")
    # Eager readers: "client parsed" is a target here, so clients read as frames arrive.
    plan = Plan([CLIENTS], args.broadcasts, 2, ["ticker-mixed"], payload=dict(ARTICLE),
                hold_readers=False)
    result = run_case("ticker-mixed", CLIENTS, plan)
    channel, article = result["by_parity"]["even"], result["by_parity"]["odd"]
    print(paths_table([("POST /api/channels/headlines/messages", channel),
                       ("POST /api/articles (signed)", article)], result))
    ratio_observed = article["observed"]["p99_ms"] / channel["observed"]["p99_ms"]
    ratio_arrival = article["arrival"]["p99_ms"] / channel["arrival"]["p99_ms"]
    found = [Check(f"article → widget client p99 (client parsed), {CLIENTS:,} clients",
                   article["observed"]["p99_ms"], TARGET_P99_MS, "ms"),
             Check(f"article → widget socket p99 (arrival), {CLIENTS:,} clients",
                   article["arrival"]["p99_ms"], TARGET_P99_MS, "ms"),
             Check("article p99 / channel publish p99 (client parsed)", ratio_observed,
                   TARGET_ARTICLE_RATIO, "x"),
             Check("article p99 / channel publish p99 (arrival)", ratio_arrival,
                   TARGET_ARTICLE_RATIO, "x")]
    alert: dict[str, Any] = {"skipped": not routes["/api/alerts"]}
    if alert["skipped"]:
        print("editor alert → first push request: SKIPPED (POST /api/alerts does not exist)")
    else:
        alert = alert_to_first_push(args.alerts, PUSH_SUBSCRIBERS)
        s = alert["first_push"]
        print(f"editor alert → first push request, {PUSH_SUBSCRIBERS:,} subscribers, "
              f"{s['count']} alerts: p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
              f"max {s['max_ms']:.1f} ms (POST answered: p50 "
              f"{alert['post_answered']['p50_ms']:.1f} ms)")
        found.append(Check("editor alert → first push request p99", s["p99_ms"],
                           TARGET_ALERT_MS, "ms"))
    print("targets:")
    for check in found:
        print(check.line())
    path = write_json("e2e.json", {"article_path": via, "routes": routes, "result": result,
                                   "checks": [c.as_dict() for c in found],
                                   "alert_to_push": alert})
    print(f"results: {path}")
    if not args.no_charts:
        from bench.charts import latency_cdf

        print(f"chart: {latency_cdf([result], 'e2e-latency-cdf.png', TARGET_P99_MS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
