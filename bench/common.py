"""Shared pieces of the benchmarks: limits, process figures, statistics, targets, output."""

from __future__ import annotations

import json
import math
import os
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def raise_nofile() -> int:
    """Lift the soft descriptor limit to the hard one; children inherit it. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def proc_nofile(pid: int) -> int:
    """The soft descriptor limit a running process has (to check it was raised)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise RuntimeError("no 'Max open files' line")


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren, ... (from ``/proc/*/task/*/children``)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                kids = [int(x) for x in task.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            out += kids
            todo += kids
    return out


def tree_cpu_ns(pid: int) -> int:
    """:func:`cpu_ns` of ``pid`` and every process under it (e.g. encryption helpers), so a
    server that spreads its work over processes is charged for all of it."""
    return sum(cpu_ns(p) for p in [pid, *descendants(pid)])


def wait_idle(pid: int, within: float = 15.0, window: float = 0.25,
              busy_share: float = 0.05) -> bool:
    """Wait until ``pid`` and its children use under ``busy_share`` of a core over a
    ``window``: a server that has just started is still importing and spawning helpers
    (ticker's encryption process), which would land in the first measurement."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = tree_cpu_ns(pid)
        time.sleep(window)
        if tree_cpu_ns(pid) - before < busy_share * window * 1e9:
            return True
    return False


def cpu_ns(pid: int) -> int:
    """CPU time (user + system) of every thread of ``pid``, in nanoseconds.

    ``/proc/<pid>/task/*/schedstat`` counts in ns; ``/proc/<pid>/stat`` only in clock
    ticks (10 ms), too coarse for a quick run. A thread that exits between two readings
    takes its time with it, so the threads of interest must outlive the phase (the event
    loop thread does; aiosqlite's and the default executor's threads do too).
    """
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def machine_busy_ns() -> int:
    """CPU time every core of the machine spent busy so far (``/proc/stat``: all but idle
    and iowait), in nanoseconds: with the figures of the processes under test, what other
    work took from the shared cores during a measurement."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait
    return busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def user_sys_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (clock-tick resolution), for the split."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``q`` in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def latency_summary(values_us: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds, and the sample count."""
    ordered = sorted(values_us)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 50) / 1000,
        "p90_ms": percentile(ordered, 90) / 1000,
        "p99_ms": percentile(ordered, 99) / 1000,
        "max_ms": (ordered[-1] / 1000) if ordered else math.nan,
    }


@dataclass(frozen=True)
class Check:
    """One target: a figure, the bound it must stay within, and whether it did."""

    name: str
    value: float
    bound: float
    unit: str
    higher_is_better: bool = False

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value >= self.bound if self.higher_is_better else self.value <= self.bound

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "bound": self.bound, "unit": self.unit,
                "met": self.met}

    def line(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        verdict = "met   " if self.met else "MISSED"
        return f"  [{verdict}] {self.name}: {self.value:,.2f} {self.unit} ({sign} {self.bound:,g})"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width text table (also valid Markdown)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"
            for r in cells]
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
