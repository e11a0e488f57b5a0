"""Chat latency of the embedded model: the app path against raw llama-cpp-python.

    python -m bench.chat_latency [--turns 5] [--max-tokens 60] [--interleave-turns 3]

What is measured, all on the one shared ``Llama`` of the single engine
(``RAPPORT_LOCAL_ENGINE=single``, ``providers.local.load_llama``). The app's default, the batched
engine (``providers/llama_engine/``), is measured against it under load in ``bench/load.py``.

1. A scripted conversation with one persona through the app path (``CustomerTurn`` over
   ``LlamaCppChat``), real replies fed back. Per turn: time to the first text shown (TTFT:
   the app releases a reply a guard-checked sentence at a time),
   total time, tokens, tokens/s, and how many prompt tokens llama.cpp had to evaluate.
2. Baseline, same run: each turn's exact message list, run from the same model state and
   cache through ``Llama.create_chat_completion(stream=True)`` with the same sampling
   parameters; its TTFT baseline is when that stream first holds a complete sentence (its
   first token is recorded too) (see ``measure_pairs`` for how the two are kept on equal terms).
3. Turn 1 after ``LlamaCppChat.warm`` on [system, opening line] (what ``Practice.prewarm``
   does while the trainee reads), against turn 1 cold from step 1.
4. Two sessions with different personas alternating turns, with the ``LlamaRAMCache`` on
   and off: TTFT of turns 2..N in each.
5. The realism checks' cost (``sim/realism/``), same run: each turn of step 1 also runs
   through the app path with the checks off (``GuardContext(realism=False)``, the character
   guard still on), from the same model state and cache. The app's TTFT is its first
   released sentence, so the turn-5 ratio on/off is the first-sentence latency the checks
   add. ``--no-realism-baseline`` skips it.

Targets (issue): on 2 cores, turn-5 TTFT <= 1.5 s, app path <= 1.10x raw, and turn-5
first-sentence latency with the realism checks <= 1.10x without them.
Nothing is asserted; figures are printed and written to ``bench/results/chat_latency.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.agent_scripts import script_for
from bench.chat_measure import measure_interleave, measure_pairs, measure_prewarm, warm_up
from bench.chat_paths import Bench, Probe
from bench.chat_report import make_figures, report, sum_or_none, totals
from bench.common import (
    loadavg,
    machine_info,
    now_iso,
    package_version,
    ratio,
    targets_of,
    write_results,
)

NAME = "chat_latency"
PERSONA_A = "irate_broadband_outage"
PERSONA_B = "confused_energy_bill"


def run(
    turns: int = 5,
    max_tokens: int = 60,
    persona_id: str = PERSONA_A,
    second_persona_id: str = PERSONA_B,
    interleave_turns: int = 3,
    repeats: int = 1,
    prewarm: bool = True,
    threads: int | None = None,
    n_ctx: int = 4096,
    model: Path | None = None,
    realism_baseline: bool = True,
) -> dict[str, Any]:
    from common.settings import Settings
    from providers.local import LlamaCppChat, load_llama
    from providers.registry import local_model_path
    from sim.persona import load_personas

    started = time.perf_counter()
    load_start = loadavg()
    model_path = model or local_model_path(Settings())
    chat = LlamaCppChat(
        model_path=model_path,
        temperature=0.7,
        max_tokens=max_tokens,
        seed=1,
        n_threads=threads,
        n_ctx=n_ctx,
        engine="single",  # the probe below hooks the shared Llama; see the module docstring
    )
    t0 = time.perf_counter()
    llm, lock = load_llama(model_path, n_ctx, threads)
    load_s = time.perf_counter() - t0
    app_cache: Any = llm.cache
    probe = Probe(llm)
    probe.install()
    b = Bench(chat, llm, lock, probe, app_cache)
    personas = load_personas()
    persona = personas[persona_id]
    try:
        warm_up_s = warm_up(b)
        agent_msgs = script_for(persona.id, turns)
        app, raw, prompts, order, off = measure_pairs(
            b, persona, agent_msgs, repeats, realism_baseline
        )
        pre = measure_prewarm(b, persona, agent_msgs[0]) if prewarm else None
        inter = (
            measure_interleave(b, [persona, personas[second_persona_id]], interleave_turns)
            if interleave_turns >= 2
            else None
        )
    finally:
        probe.uninstall()
        llm.reset()
        llm.set_cache(app_cache)

    from bench.realism_cost import check_cost

    cost = check_cost(persona, agent_msgs, [t.reply for t in app]) if off else None
    per_turn = []
    for i, (a, r) in enumerate(zip(app, raw, strict=True)):
        row: dict[str, Any] = {
            "turn": a.turn,
            "app": a.as_dict(),
            "raw": r.as_dict(),
            "ttft_ratio": ratio(a.ttft_s, r.ttft_sentence_s),
            "ttft_ratio_vs_raw_first_token": ratio(a.ttft_s, r.ttft_s),
            "total_ratio": ratio(a.total_s, r.total_s),
            "same_text": a.raw_text == r.raw_text,
        }
        if off:
            row["app_realism_off"] = off[i].as_dict()
            row["realism_ttft_ratio"] = ratio(a.ttft_s, off[i].ttft_s)
            row["realism_same_text"] = a.raw_text == off[i].raw_text
        per_turn.append(row)
    app_ttft, raw_ttft, app_total, raw_total, app_tps, raw_tps = totals(app, raw)
    figs = make_figures(app, raw, off, cost, pre, inter, turns, interleave_turns)
    return {
        "bench": NAME,
        "timestamp": now_iso(),
        "machine": machine_info() | {"loadavg_start": load_start, "loadavg_end": loadavg()},
        "nproc": machine_info()["nproc"],
        "model_file": model_path.name,
        "config": {
            "persona": persona.id,
            "second_persona": second_persona_id,
            "turns": turns,
            "max_tokens": max_tokens,
            "temperature": 0.7,
            "seed": 1,
            "n_threads": int(llm.n_threads),
            "n_threads_batch": int(llm.n_threads_batch),
            "n_ctx": n_ctx,
            "repeats": repeats,
            "realism_baseline": bool(off),
            "run_order_per_turn": order,
            "sampling": {k: v for k, v in chat._params(None).items() if k != "stop"},
            "app_cache_class": type(app_cache).__name__ if app_cache is not None else None,
            "app_cache_capacity_bytes": b.cache_bytes,
            "llama_cpp_python": package_version("llama_cpp_python"),
        },
        "load_s": load_s,
        "warm_up_s": warm_up_s,
        "agent_messages": agent_msgs,
        "turns": per_turn,
        "summary": {
            "app_ttft_sum_s": app_ttft,
            "raw_ttft_sum_s": raw_ttft,
            "ttft_ratio": ratio(app_ttft, raw_ttft),
            "app_total_sum_s": app_total,
            "raw_total_sum_s": raw_total,
            "total_ratio": ratio(app_total, raw_total),
            "app_tokens_per_s": app_tps,
            "raw_tokens_per_s": raw_tps,
            "app_cpu_sum_s": sum(t.cpu_s for t in app),
            "raw_cpu_sum_s": sum(t.cpu_s for t in raw),
            "app_cores_busy": ratio(sum(t.cpu_s for t in app), app_total),
            "raw_cores_busy": ratio(sum(t.cpu_s for t in raw), raw_total),
            "realism_off_ttft_sum_s": sum_or_none([t.ttft_s for t in off]) if off else None,
            # turn 5, or the last turn of a shorter chat; CPU time (whole turn) as a cross-check
            # when other load on the machine makes wall-clock times noisy
            "realism_turn": min(5, len(app)) if off else None,
            "realism_turn5_ttft_ratio": (
                ratio(app[min(5, len(app)) - 1].ttft_s, off[min(5, len(off)) - 1].ttft_s)
                if off
                else None
            ),
            "realism_turn5_check_extra_s": cost[min(5, len(cost)) - 1]["first_extra_s"]
            if cost
            else None,
            "realism_turn5_cpu_ratio": (
                ratio(app[min(5, len(app)) - 1].cpu_s, off[min(5, len(off)) - 1].cpu_s)
                if off
                else None
            ),
        },
        "realism_check_cost": cost,
        "prewarm": pre,
        "interleave": inter,
        "prompts": prompts,
        "figures": figs,
        "targets": targets_of(figs),
        "wall_s": time.perf_counter() - started,
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.chat_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--turns", type=int, default=5, help="agent turns in the scripted chat")
    ap.add_argument("--max-tokens", type=int, default=60, help="cap on each reply")
    ap.add_argument("--persona", default=PERSONA_A)
    ap.add_argument("--second-persona", default=PERSONA_B, help="the other interleaved session")
    ap.add_argument(
        "--interleave-turns",
        type=int,
        default=3,
        help="turns per session in the interleave check (<2 skips it)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="times to play the conversation (app and raw per turn); per-turn medians are reported",
    )
    ap.add_argument("--no-prewarm", action="store_true", help="skip the prewarm check")
    ap.add_argument(
        "--no-realism-baseline",
        action="store_true",
        help="skip the app path with the realism checks off (the on/off latency ratio)",
    )
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (app default)")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--model", type=Path, default=None, help="GGUF (default: the app's)")
    ap.add_argument(
        "--results-name",
        default=NAME,
        help="write bench/results/NAME.json (e.g. to keep a partial run beside the full one)",
    )
    a = ap.parse_args(argv)
    res = run(
        turns=a.turns,
        max_tokens=a.max_tokens,
        persona_id=a.persona,
        second_persona_id=a.second_persona,
        interleave_turns=a.interleave_turns,
        repeats=a.repeats,
        prewarm=not a.no_prewarm,
        threads=a.threads,
        n_ctx=a.n_ctx,
        model=a.model,
        realism_baseline=not a.no_realism_baseline,
    )
    path = write_results(a.results_name, res)
    print(report(res))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
