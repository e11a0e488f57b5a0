"""Run every benchmark and collect the figures.

    python -m bench.run_all [--only grading] [--skip chat_latency] [--quick] [--merge]

Calls each bench's ``run()`` with its defaults, writes each ``bench/results/<name>.json``,
then ``bench/results/latest.json`` (all results keyed by bench name, with a timestamp) and
``bench/results/latest.md`` (one Markdown table: figure, value, baseline, ratio, target,
pass; then the load levels). A bench that raises is recorded as an error and the others
still run; the exit status is 1 only then. Missed targets are reported, never fatal.

The benches: ``grading`` (grade a 10-turn session, ingest, retrieval), ``eval_throughput``
(``rapport eval`` on the gold, consistency and invariance suites: items graded per second,
against the MiniLM encoding of the same items alone), ``chat_latency`` (the app path against
raw llama-cpp-python) and ``load`` (concurrent trainees through the running app, and its
memory peak). ``load`` runs N=1, N=4 and N=8; ``--quick`` or ``RAPPORT_BENCH_QUICK=1``
leaves N=8 out.
``load`` sends each message the moment the last reply ends, all trainees together: the
harshest case. ``load_paced`` runs the same levels at people's pace (see ``PACED``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    RESULTS_DIR,
    Figure,
    figure,
    figures_table,
    fmt,
    loadavg,
    machine_info,
    now_iso,
    target_text,
    targets_of,
    write_results,
)

# Cheapest first, so a broken model install doesn't hide the grading figures.
BENCHES = ("grading", "eval_throughput", "chat_latency", "load", "load_paced")
# People's pace for ``load_paced``: read the opening line ~5 s, start ~3 s apart, ~20 s to read
# a reply and type the next message, each pause varied by up to 50% (seeded).
PACED = {"read_s": 5.0, "ramp_s": 3.0, "think_s": 20.0, "jitter": 0.5}
EVAL_SUITES = ("gold", "consistency", "invariance")


def quick_run() -> bool:
    return os.environ.get("RAPPORT_BENCH_QUICK", "").strip().lower() in ("1", "true", "yes", "on")


# --- eval throughput -------------------------------------------------------------------------


def eval_items(suite_names: Sequence[str]) -> list[list[tuple[str, str]]]:
    """What ``rapport eval`` grades for these suites, in its order, as (agent text, the
    customer's words before it), grouped where the eval starts from an empty encoder cache
    (a fresh process, then each consistency repetition: ``grader.clear_caches()``)."""
    import random

    from eval import suites

    opts = suites.Options()
    rows = suites.load_jsonl(suites.DATA / "gold.jsonl")

    def item(row: dict[str, Any]) -> tuple[str, str]:
        ctx = row["context"]
        customer = next((t["text"] for t in reversed(ctx) if t["role"] == "customer"), "")
        return row["agent"], customer

    groups: list[list[tuple[str, str]]] = [[]]
    for name in suite_names:
        if name == "gold":
            for split in ("dev", "test"):
                groups[-1] += [item(r) for r in rows if r.get("split") == split][: opts.limit]
        elif name == "consistency":
            part = rows[: opts.limit or 60]
            for _ in range(opts.k):
                groups.append([item(r) for r in part])
        elif name == "invariance":
            part = rows[: opts.limit or 120]
            rng = random.Random(opts.seed)
            groups[-1] += [item(r) for r in part]
            for fn in suites.PERTURBATIONS.values():
                groups[-1] += [item(fn(r, rng)) for r in part]
            for p in suites.load_jsonl(suites.DATA / "paraphrases.jsonl")[: opts.limit]:
                customer = p.get("customer", "I need help with my account.")
                groups[-1] += [(p["original"], customer), (p["paraphrase"], customer)]
        else:
            raise ValueError(f"eval_throughput has no item list for suite {name!r}")
    return [g for g in groups if g]


def embed_items(groups: Sequence[Sequence[tuple[str, str]]]) -> float:
    """Seconds for the MiniLM encoding ``analyse_turn`` does for these items, and nothing
    else (one encoder call per item; the encoder's cache cleared where the eval clears it)."""
    from rubric.classifier import segments
    from rubric.embeddings import get_encoder

    enc = get_encoder()
    enc.encode(["warm-up"], use_cache=False)
    t0 = time.perf_counter()
    for g in groups:
        enc.cache_clear()
        for agent, customer in g:
            enc.encode([*segments(agent), agent, *(segments(customer) if customer.strip() else [])])
    return time.perf_counter() - t0


def run_eval_throughput(suite_names: Sequence[str] = EVAL_SUITES) -> dict[str, Any]:
    started = time.perf_counter()
    load_start = loadavg()
    suite_args = [a for s in suite_names for a in ("--suite", s)]
    env = {k: v for k, v in os.environ.items() if k != "RAPPORT_CHROMA_HOST"}
    with tempfile.TemporaryDirectory(prefix="rapport-bench-eval-") as tmp:
        cmd = [sys.executable, "-m", "cli", "eval", *suite_args, "--out", tmp]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd[1:])} exited with {proc.returncode}: {proc.stderr[-2000:]}"
            )
        metrics = json.loads((Path(tmp) / "metrics.json").read_text(encoding="utf-8"))
    seconds: dict[str, float] = metrics["seconds"]
    groups = eval_items(suite_names)
    items = sum(len(g) for g in groups)
    per_suite = {s: sum(len(g) for g in eval_items([s])) for s in suite_names}
    gold = metrics["suites"].get("gold")
    if gold is not None:  # the item list must be what the eval graded
        graded = len(gold["dev_scores"]) + len(gold["test_scores"])
        if graded != per_suite["gold"]:
            raise RuntimeError(f"eval graded {graded} gold items, the bench counted {per_suite}")
    suite_s = sum(seconds.values())
    embed_s = embed_items(groups)
    figs: list[Figure] = [
        figure(
            f"eval items graded per second ({'+'.join(suite_names)}, {items} items)",
            items / suite_s,
            "items/s",
            baseline=items / embed_s,
            baseline_name="MiniLM encoding of the same items alone",
        ),
        figure(
            "eval suites time",
            suite_s,
            "s",
            baseline=embed_s,
            baseline_name="MiniLM encoding of the same items alone",
        ),
        figure(
            "eval wall time incl. process start and report",
            wall,
            "s",
            baseline=suite_s,
            baseline_name="the suites alone",
        ),
    ]
    return {
        "bench": "eval_throughput",
        "timestamp": now_iso(),
        "machine": machine_info() | {"loadavg_start": load_start, "loadavg_end": loadavg()},
        "command": " ".join(["python", *cmd[1:-1], "<tmp>"]),
        "suites": list(suite_names),
        "items": items,
        "items_per_suite": per_suite,
        "suite_seconds": seconds,
        "suite_s": suite_s,
        "wall_s_eval": wall,
        "embed_only_s": embed_s,
        "figures": figs,
        "targets": targets_of(figs),
        "wall_s": time.perf_counter() - started,
    }


def run_load_paced(**kw: Any) -> dict[str, Any]:
    """``bench.load`` with trainees at people's pace (``PACED``) instead of machine speed."""
    from bench import load

    return load.run(**(PACED | kw))


# Benches that live here rather than in a module of their own: name -> run().
LOCAL: dict[str, Callable[..., dict[str, Any]]] = {
    "eval_throughput": run_eval_throughput,
    "load_paced": run_load_paced,
}


def default_kwargs(quick: bool = False) -> dict[str, dict[str, Any]]:
    """Per-bench keyword arguments for ``run()``: every load level unless asked to be quick."""
    ns = (1, 4) if quick or quick_run() else (1, 4, 8)
    return {"load": {"ns": ns}, "load_paced": {"ns": ns}}


def run_benches(
    names: Sequence[str], kwargs: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
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
        kw = dict((kwargs or {}).get(name, {}))
        mod: Any = None
        try:
            if name in LOCAL:
                res: dict[str, Any] = LOCAL[name](**kw)
            else:
                mod = importlib.import_module(f"bench.{name}")
                res = mod.run(**kw)
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
    for name, when in all_res.get("kept", {}).items():
        lines.append(f"- {name}: not rerun, figures kept from {when}")
    if m.get("llama_cpp_build"):
        lines.append(f"- llama.cpp build: `{m['llama_cpp_build']}`")
    chat = all_res["results"].get("chat_latency")
    if chat:
        cfg = chat["config"]
        lines.append(
            f"- chat model: {chat['model_file']} ({cfg['n_threads']} threads, "
            f"max_tokens {cfg['max_tokens']}, seed {cfg['seed']})"
        )
    load = all_res["results"].get("load")
    if load:
        lc = load["config"]
        lines.append(
            f"- load: N = {', '.join(map(str, lc['ns']))} trainees, {lc['turns']} messages each, "
            f"app on {lc['model_file'] or lc['provider']} with max_tokens {lc['max_tokens']}"
        )
    ev = all_res["results"].get("eval_throughput")
    if ev:
        lines.append(f"- eval throughput: `{ev['command']}`, {ev['items']} items graded")
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
    for name in ("load", "load_paced"):
        if all_res["results"].get(name):
            lines += ["", *load_markdown(all_res["results"][name], name)]
    return "\n".join(lines) + "\n"


def pacing(c: Mapping[str, Any]) -> str:
    """How the trainees were paced, in words."""
    if not (c.get("read_s") or c.get("think_s") or c.get("ramp_s")):
        return "no think time (each message sent when the last reply ends, all start together)"
    jit = c.get("jitter") or 0
    vary = f", each pause varied by up to {jit:.0%}" if jit else ""
    return (
        f"{c.get('read_s', 0):g} s to read the opening line, starts {c.get('ramp_s', 0):g} s "
        f"apart, {c.get('think_s', 0):g} s to read a reply and type{vary}"
    )


def load_markdown(load: dict[str, Any], name: str = "load") -> list[str]:
    """The load levels side by side (bench/load.py), with what was run."""
    c = load["config"]
    title = "Load at people's pace" if name == "load_paced" else "Load"
    head = [
        "N",
        "msgs each",
        "replies",
        "TTFT p50 s",
        "TTFT p95 s",
        "turn 1 p50 s",
        "turns 2+ p95 s",
        "tok/s all",
        "errors",
        "lost turns",
        "wall s",
        "app cores busy",
        "load avg at start",
        "peak RSS MiB",
    ]
    out = [
        f"## {title}: concurrent trainees through the running app",
        "",
        f"{c['provider']} model {c['model_file']}, max_tokens {c['max_tokens']}, personas "
        f"round-robin, {pacing(c)}, {c['gradio_queue']}. TTFT is from the "
        "request to the first streamed update with customer text; lost turns are checked "
        "against the app's SQLite file. App cores busy = the app's CPU time / wall time: well "
        "under the model's threads means other load on the machine slowed that level.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for lv in load["levels"]:
        row = [
            lv["n"],
            lv["turns_per_trainee"],
            lv["replies_ok"],
            lv["ttft_p50_s"],
            lv["ttft_p95_s"],
            lv["ttft_turn1_p50_s"],
            lv["ttft_later_p95_s"],
            lv["tokens_per_s_all_sessions"],
            lv["errors"],
            lv["lost_turns"],
            lv["wall_s"],
            lv.get("app_cores_busy"),
            (lv.get("loadavg_start") or [None])[0],
            lv["memory"].get("hwm_mib"),
        ]
        out.append("| " + " | ".join(_cell(x) for x in row) + " |")
    from bench.load_report import contention_warnings, paused

    warnings = contention_warnings(load["levels"], paused(c))
    if warnings:
        out += ["", *(f"- warning: {w}" for w in warnings)]
    return out


def merge_earlier(all_res: dict[str, Any], earlier: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the figures of benches not rerun now from an earlier ``latest.json``; each keeps
    its own timestamp and machine, and ``kept`` names them with when they were measured."""
    kept = {}
    for name, res in earlier.get("results", {}).items():
        if name not in all_res["results"] and name not in all_res["errors"]:
            all_res["results"][name] = res
            kept[name] = res.get("timestamp", earlier.get("timestamp"))
    all_res["kept"] = kept
    return all_res


def run(
    names: Sequence[str] = BENCHES,
    kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    merge: bool = False,
) -> dict[str, Any]:
    all_res = run_benches(names, default_kwargs() if kwargs is None else kwargs)
    latest = RESULTS_DIR / "latest.json"
    if merge and latest.exists():
        merge_earlier(all_res, json.loads(latest.read_text(encoding="utf-8")))
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
    ap.add_argument(
        "--quick", action="store_true", help="load at N=1 and N=4 only (or RAPPORT_BENCH_QUICK=1)"
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the other benches' figures from the current latest.json (marked as kept)",
    )
    a = ap.parse_args(argv)
    names = [n for n in (a.only or BENCHES) if n not in a.skip]
    all_res = run(names, default_kwargs(a.quick), merge=a.merge)
    print(markdown(all_res))
    print(f"wrote {RESULTS_DIR / 'latest.json'} and {RESULTS_DIR / 'latest.md'}")
    return 1 if all_res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
