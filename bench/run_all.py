"""Run every benchmark and collect the figures.

    python -m bench.run_all [--only grading] [--skip chat_latency]

Calls each bench module's ``run()`` with its defaults, writes each ``bench/results/<name>.json``,
then ``bench/results/latest.json`` (all results keyed by bench name, with a timestamp) and
``bench/results/latest.md`` (one Markdown table: figure, value, baseline, ratio, target,
pass). A bench that raises is recorded as an error and the others still run; the exit status
is 1 only then. Missed targets are reported, never fatal.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from bench.common import (
    RESULTS_DIR,
    figures_table,
    fmt,
    loadavg,
    machine_info,
    now_iso,
    target_text,
    write_results,
)

# Cheapest first, so a broken model install doesn't hide the grading figures.
BENCHES = ("grading", "chat_latency")


def run_benches(names: Sequence[str]) -> dict[str, Any]:
    started = time.perf_counter()
    out: dict[str, Any] = {
        "timestamp": now_iso(),
        "machine": machine_info(),
        "results": {},
        "errors": {},
    }
    for name in names:
        print(f"== {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.{name}")
            res: dict[str, Any] = mod.run()
        except Exception as exc:  # one bench failing must not lose the others' figures
            out["errors"][name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
            continue
        write_results(name, res)
        out["results"][name] = res
        print(mod.report(res) if hasattr(mod, "report") else figures_table(res["figures"]))
        print(f"== {name} done in {time.perf_counter() - t0:.1f} s\n", flush=True)
    out["loadavg_end"] = loadavg()
    out["wall_s"] = time.perf_counter() - started
    return out


def _cell(x: Any) -> str:
    return fmt(x).replace("|", "\\|")


def markdown(all_res: dict[str, Any]) -> str:
    m = all_res["machine"]
    lines = [
        "# Rapport benchmarks",
        "",
        f"- when: {all_res['timestamp']}",
        f"- machine: nproc {m['nproc']}, {m['cpu_model'] or 'unknown CPU'}, "
        f"load average {m['loadavg']} at start, {all_res['loadavg_end']} at end",
        f"- total wall time: {all_res['wall_s']:.0f} s",
    ]
    chat = all_res["results"].get("chat_latency")
    if chat:
        cfg = chat["config"]
        lines.append(
            f"- chat model: {chat['model_file']} ({cfg['n_threads']} threads, "
            f"max_tokens {cfg['max_tokens']}, seed {cfg['seed']})"
        )
    lines += [
        "- ratio = value / baseline, both measured in the same run",
        "",
        "| bench | figure | value | baseline | ratio | target | pass |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in all_res["results"].items():
        for f in res["figures"]:
            unit = f" {f['unit']}" if f["value"] is not None else ""
            base = f" {f['unit']}" if f["baseline"] is not None else ""
            lines.append(
                "| "
                + " | ".join(
                    [
                        name,
                        _cell(f["name"]),
                        _cell(f["value"]) + unit,
                        _cell(f["baseline"])
                        + base
                        + (f" ({f['baseline_name']})" if f["baseline_name"] else ""),
                        _cell(f["ratio"]),
                        _cell(target_text(f)),
                        _cell(f["pass"]),
                    ]
                )
                + " |"
            )
    for name, err in all_res["errors"].items():
        lines.append(f"| {name} | error: {_cell(err)} | - | - | - | - | - |")
    return "\n".join(lines) + "\n"


def run(names: Sequence[str] = BENCHES) -> dict[str, Any]:
    all_res = run_benches(names)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(
        json.dumps(all_res, indent=2, default=str) + "\n", encoding="utf-8"
    )
    (RESULTS_DIR / "latest.md").write_text(markdown(all_res), encoding="utf-8")
    return all_res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.run_all",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--only", nargs="+", choices=BENCHES, help="run just these benches")
    ap.add_argument("--skip", nargs="+", choices=BENCHES, default=[], help="benches to leave out")
    a = ap.parse_args(argv)
    names = [n for n in (a.only or BENCHES) if n not in a.skip]
    all_res = run(names)
    print(markdown(all_res))
    print(f"wrote {RESULTS_DIR / 'latest.json'} and {RESULTS_DIR / 'latest.md'}")
    return 1 if all_res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
