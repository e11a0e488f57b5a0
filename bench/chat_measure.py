"""What the chat latency bench measures: the scripted conversation (app, raw and realism
off from the same state each turn), turn 1 after a prewarm, and two sessions interleaved
with the RAM cache on and off."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bench.agent_scripts import script_for
from bench.chat_paths import (
    Bench,
    Snapshot,
    TurnTiming,
    app_turn,
    progress,
    raw_turn,
    restore,
    snapshot,
)
from bench.common import median, ratio, rss_mib

if TYPE_CHECKING:
    from llama_cpp import LlamaState

    from sim.persona import Persona


def measure_pairs(
    b: Bench,
    persona: Persona,
    agent_msgs: Sequence[str],
    repeats: int,
    realism_baseline: bool = True,
) -> tuple[
    list[TurnTiming], list[TurnTiming], list[list[dict[str, str]]], list[str], list[TurnTiming]
]:
    """The scripted conversation; every turn is run twice from the same starting point, once
    through the app path and once raw, and the app's reply is fed back into the history.
    With ``realism_baseline`` a third run, the app path with the realism checks off, starts
    from the same point too; the three take turns at going first. Returns the app, raw and
    (empty without the baseline) realism-off timings.

    Fairness: both run on the same Llama instance (same weights, threads and n_batch; no
    second 1.1 GB copy competing for RAM). Turn 1 of each starts from a freshly reset model
    (``reset()``: nothing evaluated) with a new empty ``LlamaRAMCache`` of the app's
    capacity. For later turns the model state *and* the cache entries are snapshotted
    before the turn and restored before the second run, so both reuse exactly the same
    prefix (the previous turn) and pay the same cache save. Running the two side by side per
    turn, first one then the other, alternating which goes first, keeps slow drift in the
    machine's load out of the ratio: a pass-then-pass design (reset between passes) measured
    turns 2-5 30-50 % slower in every pass after the first, whichever path it was. The raw run gets the exact message
    list the app's ``CustomerTurn`` builds (checked), converted by ``to_openai_messages``.
    """
    from common.turns import Turn
    from providers.local import to_openai_messages
    from sim.prompt import build_messages

    app_runs: list[list[TurnTiming]] = []
    raw_runs: list[list[TurnTiming]] = []
    off_runs: list[list[TurnTiming]] = []
    orders: list[str] = []
    kinds = ("app", "raw", "off") if realism_baseline else ("app", "raw")
    prompts: list[list[dict[str, str]]] = []
    for r in range(repeats):
        b.fresh()
        history = [Turn("customer", persona.opening_line)]
        app_t: list[TurnTiming] = []
        raw_t: list[TurnTiming] = []
        off_t: list[TurnTiming] = []
        for n, text in enumerate(agent_msgs, 1):
            history.append(Turn("agent", text))
            messages = to_openai_messages(build_messages(persona, history))
            before = snapshot(b) if n > 1 else None
            # rotate which path goes first (two paths: they alternate, as before)
            k = (n + r - 1) % len(kinds)
            order = kinds[k:] + kinds[:k]
            orders.append("-".join(order))
            app_after: Snapshot | None = None
            a: TurnTiming | None = None
            w: TurnTiming | None = None
            o: TurnTiming | None = None
            for i, which in enumerate(order):
                if i >= 1:
                    restore(b, before)
                if which in ("app", "off"):
                    on = which == "app"
                    t, turn = app_turn(b, persona, history, n, realism=on)
                    if to_openai_messages(turn.messages) != messages:
                        raise RuntimeError("CustomerTurn sent a different prompt than expected")
                    if on and i < len(order) - 1:
                        app_after = snapshot(b)
                    progress("app" if on else "app, realism off", t)
                    if on:
                        a = t
                    else:
                        o = t
                else:
                    w = raw_turn(b, messages, n)
                    progress("raw", w)
            assert a is not None and w is not None
            last = {"raw": w, "off": o}.get(order[-1])
            if last is not None and last.raw_text != a.raw_text and app_after is not None:
                restore(b, app_after)  # continue from the app's reply, which goes in the history
            del before, app_after
            if r == 0:
                prompts.append(messages)
            history.append(Turn("customer", a.reply))
            app_t.append(a)
            raw_t.append(w)
            if o is not None:
                off_t.append(o)
        app_runs.append(app_t)
        raw_runs.append(raw_t)
        off_runs.append(off_t)
    off = median_turns(off_runs) if realism_baseline else []
    return median_turns(app_runs), median_turns(raw_runs), prompts, orders, off


def median_turns(runs: list[list[TurnTiming]]) -> list[TurnTiming]:
    """Per-turn medians over repeats (the first repeat's text and counters are kept)."""
    if len(runs) == 1:
        return runs[0]
    out = []
    for i, base in enumerate(runs[0]):
        ttfts = [x for x in (r[i].ttft_s for r in runs) if x is not None]
        t = replace(base)
        t.ttft_s = median(ttfts) if ttfts else None
        sents = [x for x in (r[i].ttft_sentence_s for r in runs) if x is not None]
        t.ttft_sentence_s = median(sents) if sents else None
        t.total_s = median([r[i].total_s for r in runs])
        out.append(t)
    return out


def warm_up(b: Bench) -> float:
    """Untimed: touch every weight page and LangChain's first-call setup, so neither pass
    pays the cold-start cost that the first pass would otherwise pay alone."""
    from langchain_core.messages import HumanMessage

    t0 = time.perf_counter()
    b.chat.invoke([HumanMessage("Say hi.")], max_tokens=4)
    b.fresh()
    return time.perf_counter() - t0


def measure_prewarm(b: Bench, persona: Persona, agent_msg: str) -> dict[str, Any]:
    """Turn 1 after ``LlamaCppChat.warm`` on [system, opening line], from a fresh model.
    (This is the call ``Practice.prewarm`` makes in a thread when a session starts.)"""
    from common.turns import Turn
    from sim.prompt import build_messages

    b.fresh()
    warm_messages = build_messages(persona, [Turn("customer", persona.opening_line)])
    b.probe.mark()
    t0 = time.perf_counter()
    b.chat.warm(warm_messages)
    warm_s = time.perf_counter() - t0
    warm_prefill = b.probe.evals[0] if b.probe.evals else None
    history = [Turn("customer", persona.opening_line), Turn("agent", agent_msg)]
    t, _ = app_turn(b, persona, history, 1, ttft_only=True)
    progress(f"after prewarm ({warm_s:.1f} s)", t)
    return {"warm_s": warm_s, "warm_prefill_tokens": warm_prefill, "turn1": t.as_dict()}


def measure_interleave(b: Bench, personas: Sequence[Persona], turns: int) -> dict[str, Any]:
    """Sessions alternate turns (A1 B1 A2 B2 ...) with the RAM cache on; then turns 2..N
    again with it off.

    The cache-off run replays the *same* prompts (the histories of the cache-on run, replies
    included) and starts from the cache-on run's state after B1 (``save_state`` /
    ``load_state``), so turn 2 starts in identical conditions: the model holding the other
    session's tokens. It reads only the first token of each reply: without a cache, the next
    turn (the other session) shares nothing with this reply's tail anyway, only the
    chat template's first few tokens, so the rest of the reply would change nothing measured.
    """
    from common.turns import Turn

    scripts = {p.id: script_for(p.id, turns) for p in personas}
    histories = {p.id: [Turn("customer", p.opening_line)] for p in personas}
    prompts: dict[tuple[str, int], list[Turn]] = {}
    on: dict[str, list[TurnTiming]] = {p.id: [] for p in personas}
    state: LlamaState | None = None

    b.fresh(cache=True)
    rss_before = rss_mib()
    t0 = time.perf_counter()
    for n in range(1, turns + 1):
        for p in personas:
            h = histories[p.id]
            h.append(Turn("agent", scripts[p.id][n - 1]))
            prompts[(p.id, n)] = list(h)
            t, _ = app_turn(b, p, h, n)
            h.append(Turn("customer", t.reply))
            on[p.id].append(t)
            progress(f"cache on {p.id}", t)
            if n == 1 and p is personas[-1]:
                state = b.llm.save_state()
    on_wall = time.perf_counter() - t0
    rss_after = rss_mib()
    assert state is not None
    cache_obj: Any = b.llm.cache
    entry = {
        "llama_state_bytes": int(state.llama_state_size),
        "scores_bytes": int(state.scores.nbytes),
        "entries_after_on_run": len(cache_obj.cache_state) if cache_obj is not None else 0,
        "cache_size_counted_bytes": int(cache_obj.cache_size) if cache_obj is not None else 0,
        "rss_mib_before_on_run": rss_before,
        "rss_mib_after_on_run": rss_after,
    }

    b.fresh(cache=False)
    b.llm.load_state(state)
    del state
    off: dict[str, list[TurnTiming]] = {p.id: [] for p in personas}
    t0 = time.perf_counter()
    for n in range(2, turns + 1):
        for p in personas:
            t, _ = app_turn(b, p, prompts[(p.id, n)], n, ttft_only=True)
            off[p.id].append(t)
            progress(f"cache off {p.id}", t)
    off_wall = time.perf_counter() - t0

    sessions: dict[str, Any] = {}
    on_sum = off_sum = 0.0
    for p in personas:
        on_t = on[p.id][1:]
        off_t = off[p.id]
        rows = []
        for a, c in zip(on_t, off_t, strict=True):
            rows.append(
                {
                    "turn": a.turn,
                    "ttft_on_s": a.ttft_s,
                    "ttft_off_s": c.ttft_s,
                    "ratio_on_off": ratio(a.ttft_s, c.ttft_s),
                    "prefill_on": a.prefill_tokens,
                    "prefill_off": c.prefill_tokens,
                    "cache_load_on_s": a.cache_load_s,
                }
            )
            on_sum += a.ttft_s or 0.0
            off_sum += c.ttft_s or 0.0
        sessions[p.id] = {
            "turns": rows,
            "turn1": on[p.id][0].as_dict(),
            "cache_on": [t.as_dict() for t in on_t],
            "cache_off_ttft_only": [t.as_dict() for t in off_t],
        }
    b.fresh()
    return {
        "personas": [p.id for p in personas],
        "turns": turns,
        "sessions": sessions,
        "ttft_sum_on_s": on_sum,
        "ttft_sum_off_s": off_sum,
        "ratio_on_off": ratio(on_sum, off_sum),
        "wall_on_s": on_wall,
        "wall_off_s": off_wall,
        "cache_entry": entry,
    }
