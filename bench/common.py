"""Helpers shared by the benchmarks: figures with same-run baselines, results files, tables.

Every benchmark returns a dict with a ``figures`` list. A figure is a plain dict::

    {"name", "value", "unit", "baseline", "baseline_name", "ratio", "target", "op", "pass"}

``ratio`` is always ``value / baseline`` where the baseline was measured in the same run;
``pass`` is ``None`` when the figure has no target. Targets are reported, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent

# Quiet third-party noise before chromadb / gradio are imported by the benchmarks.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

Figure = dict[str, Any]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def nproc() -> int:
    """CPUs this process may run on (what ``nproc`` prints), falling back to the CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def rss_mib() -> float | None:
    """Current resident memory of this process in MiB (Linux), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    cpu_model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": nproc(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "loadavg": loadavg(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "llama_cpp_build": llama_cpp_build(),
    }


def llama_cpp_build() -> str | None:
    """The instruction sets llama.cpp was compiled for (the Makefile picks them per CPU)."""
    try:
        import llama_cpp
    except ImportError:
        return None
    return str(llama_cpp.llama_print_system_info().decode().strip())


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline``, or None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]."""
    if not xs:
        raise ValueError("percentile of an empty sequence")
    s = sorted(xs)
    if len(s) == 1:
        return float(s[0])
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str | None = None,
    target: float | None = None,
    op: str = "<=",
    target_on: str = "value",
    note: str | None = None,
) -> Figure:
    """One reported number. ``pass`` compares ``value`` (or, with ``target_on="ratio"``,
    ``value / baseline``) with ``target`` using ``op``; None when there is no target."""
    r = ratio(value, baseline)
    checked = r if target_on == "ratio" else value
    passed: bool | None = None
    if target is not None and checked is not None:
        passed = checked <= target if op == "<=" else checked >= target
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": r,
        "target": target,
        "op": op if target is not None else None,
        "target_on": target_on if target is not None else None,
        "pass": passed,
        "note": note,
    }


def targets_of(figures: Sequence[Figure]) -> list[dict[str, Any]]:
    """The figures that have a target, in the short form kept under ``targets``."""
    return [
        {
            "name": f["name"],
            "value": f["value"],
            "unit": f["unit"],
            "target": target_text(f),
            "pass": f["pass"],
        }
        for f in figures
        if f["target"] is not None
    ]


def target_text(f: Figure) -> str | None:
    """``<= 1.5`` for a target on the value, ``ratio <= 1.1`` for one on the ratio."""
    if f["target"] is None:
        return None
    prefix = "ratio " if f.get("target_on") == "ratio" else ""
    return f"{prefix}{f['op']} {f['target']}"


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "PASS" if x else "FAIL"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain fixed-width table for the terminal."""
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in cells:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in cells]
    return "\n".join(out)


def figures_table(figures: Sequence[Figure]) -> str:
    rows = [
        [
            f["name"],
            f["value"],
            f["unit"],
            f["baseline"],
            f["ratio"],
            target_text(f),
            f["pass"],
        ]
        for f in figures
    ]
    return table(rows, ["figure", "value", "unit", "baseline", "ratio", "target", "pass"])


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``."""

    def __init__(self) -> None:
        self.start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
