"""PNG charts of the benchmark results (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.common import RESULTS_DIR

COLOURS = {"ticker": "tab:blue", "baseline": "tab:orange"}


def _cdf(ax: Any, values_us: list[int], label: str, colour: str, style: str) -> None:
    if not values_us:
        return
    ms = [v / 1000 for v in values_us]
    ys = [(i + 1) / len(ms) for i in range(len(ms))]
    ax.plot(ms, ys, style, color=colour, label=label, linewidth=1.4)


def latency_cdf(results: list[dict[str, Any]], name: str,
                target_ms: float | dict[int, float] | None) -> Path:
    """One panel per N: the CDF of publish-to-receive latency, each server, both measures
    (``target_ms`` per N, or one for all)."""
    sizes = sorted({r["n"] for r in results})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.2), squeeze=False)
    for ax, n in zip(axes[0], sizes, strict=True):
        for r in (r for r in results if r["n"] == n):
            colour = COLOURS.get(r["server"], "tab:gray")
            _cdf(ax, r["samples"]["arrival_us"], f"{r['server']} (socket arrival)", colour, "-")
            _cdf(ax, r["samples"]["observed_us"], f"{r['server']} (client parsed)", colour, "--")
        target = target_ms.get(n) if isinstance(target_ms, dict) else target_ms
        if target is not None:
            ax.axvline(target, color="tab:red", linestyle=":",
                       label=f"target p99 {target:.1f} ms")
        ax.axhline(0.99, color="gray", linewidth=0.6)
        ax.set_title(f"N = {n:,} connections")
        ax.set_xlabel("publish → receive (ms)")
        ax.set_ylabel("fraction of deliveries")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _save(fig, name)


def versus_baseline(results: list[dict[str, Any]], name: str) -> Path:
    """Grouped bars per N: ticker against the baseline on each figure (lower is better,
    except the setup rate)."""
    panels: list[tuple[str, Callable[[dict[str, Any]], float]]] = [
              ("p99 latency (ms)", lambda r: r["arrival"]["p99_ms"]),
              ("server CPU per frame (µs)", lambda r: r["cpu_us_per_frame"]),
              ("server KiB per idle connection", lambda r: r["kib_per_idle_conn"]),
              ("connection setup (conn/s, higher is better)", lambda r: r["setup_per_second"])]
    sizes = sorted({r["n"] for r in results})
    servers = [s for s in ("ticker", "baseline") if any(r["server"] == s for r in results)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4), squeeze=False)
    width = 0.8 / max(1, len(servers))
    for ax, (title, get) in zip(axes[0], panels, strict=True):
        for i, server in enumerate(servers):
            by_n = {r["n"]: get(r) for r in results if r["server"] == server}
            xs = [j + i * width for j in range(len(sizes))]
            ax.bar(xs, [by_n.get(n, 0) for n in sizes], width, label=server,
                   color=COLOURS.get(server, "tab:gray"))
        ax.set_xticks([j + width * (len(servers) - 1) / 2 for j in range(len(sizes))],
                      [f"{n:,}" for n in sizes])
        ax.set_xlabel("connections")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, name)


def fanout_charts(results: list[dict[str, Any]]) -> list[Path]:
    from bench.fanout import TARGET_P99_RATIO

    targets = {r["n"]: r["ratios"]["bare2_ms"] * TARGET_P99_RATIO for r in results}
    return [latency_cdf(results, "fanout-latency-cdf.png", targets),
            versus_baseline(results, "fanout-vs-baseline.png")]


def _save(fig: Any, name: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
