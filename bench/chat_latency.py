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
import resource
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from bench.common import (
    Figure,
    figure,
    figures_table,
    fmt,
    loadavg,
    machine_info,
    median,
    now_iso,
    package_version,
    ratio,
    rss_mib,
    table,
    targets_of,
    write_results,
)

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaState

    from providers.local import LlamaCppChat
    from sim.persona import Persona
    from sim.prompt import Message

NAME = "chat_latency"
PERSONA_A = "irate_broadband_outage"
PERSONA_B = "confused_energy_bill"
TTFT_TURN5_TARGET_S = 1.5
APP_OVER_RAW_TARGET = 1.10
REALISM_ON_OFF_TARGET = 1.10

# What a trainee might type, turn by turn. Unknown personas get the generic script.
AGENT_SCRIPTS: dict[str, list[str]] = {
    "irate_broadband_outage": [
        "I'm really sorry, Gareth. Being offline all day when you work from home is awful. "
        "Can you tell me what the lights on your router are showing right now?",
        "Thanks, that helps. I can see the line test this morning showed no sync, so this "
        "isn't something you've done. Have you had any storms or building work nearby?",
        "Understood. I know the 72-hour window is no good with a 5 pm deadline. I'm booking "
        "an engineer for the earliest slot today and flagging it as urgent.",
        "While we wait, I can add 50 GB of mobile data to your account at no cost so you "
        "can keep tethering. Would that help you get the upload done?",
        "I've sent the booking and the data top-up to your email. Is there anything about "
        "the engineer visit you'd like me to check before you go?",
    ],
    "confused_energy_bill": [
        "Hello Doreen, thanks for calling. A bill that big out of nowhere would worry "
        "anyone. Could you read me the dates printed at the top of the bill?",
        "Thank you. So that covers June to August. Does it say 'estimated' or 'actual' "
        "next to the meter readings?",
        "That explains a lot. The last few bills were estimates, and the new actual "
        "reading caught up with them. None of that is your fault.",
        "I can spread the £486.72 over the next twelve months so your direct debit only "
        "goes up a little. Would that be more manageable for you?",
        "Lovely. I'll set that up now and send you a letter explaining it. Is there anything "
        "on the bill you'd like me to go through again?",
    ],
}
GENERIC_SCRIPT = [
    "I'm sorry this has happened. Could you tell me a bit more about what's gone wrong?",
    "Thank you, that's helpful. When did you first notice the problem?",
    "That sounds really frustrating, and it makes sense you're upset. Let me check what I can do.",
    "Here's what I can offer: I'll escalate this today and call you back by 4 pm with an update.",
    "I've noted everything on your account. Is there anything else about this I should know?",
]


def script_for(persona_id: str, turns: int) -> list[str]:
    base = AGENT_SCRIPTS.get(persona_id, GENERIC_SCRIPT)
    return [base[i % len(base)] for i in range(turns)]


@dataclass
class TurnTiming:
    """One customer reply, timed from the request to the last streamed piece."""

    turn: int
    ttft_s: float | None
    total_s: float
    tokens: int  # the generated text re-tokenized (same count method on both paths)
    prefill_tokens: int | None  # prompt tokens llama.cpp evaluated (the rest was reused)
    context_tokens: int  # tokens in the model's state afterwards
    cache_loads: int = 0
    cache_load_s: float = 0.0
    cache_saves: int = 0
    cache_save_s: float = 0.0
    pieces: int = 0  # items streamed to the caller
    cpu_s: float = 0.0  # this process's CPU time during the turn (all threads)
    ttft_visible_s: float | None = None  # first non-empty *cleaned* text (app path only)
    # raw path: when the stream first held a complete sentence, which is what the app's guard
    # waits for before it shows anything (the end of the stream if it never did)
    ttft_sentence_s: float | None = None
    regenerated: bool = False
    fallback: bool = False
    reply: str = ""  # what the trainee sees (app) / the stripped stream (raw)
    raw_text: str = ""  # the model's text before cleaning (app: all attempts joined)

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.total_s if self.total_s > 0 else None

    @property
    def decode_tokens_per_s(self) -> float | None:
        if self.ttft_s is None or self.tokens < 2 or self.total_s <= self.ttft_s:
            return None
        return (self.tokens - 1) / (self.total_s - self.ttft_s)

    @property
    def cores_busy(self) -> float | None:
        """CPU time / wall time. Well below the thread count means the turn waited for a
        core (other load on the machine), so its timings are inflated."""
        return self.cpu_s / self.total_s if self.total_s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens_per_s"] = self.tokens_per_s
        d["decode_tokens_per_s"] = self.decode_tokens_per_s
        d["cores_busy"] = self.cores_busy
        return d


@dataclass
class Probe:
    """Counts what llama-cpp-python does inside one turn by wrapping three methods on the
    instance (``eval``, ``load_state``, ``save_state``); the overhead is a few function calls
    per token, the same on both paths. ``uninstall`` restores the class methods."""

    llm: Llama
    evals: list[int] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    saves: list[float] = field(default_factory=list)

    def install(self) -> None:
        llm: Any = self.llm
        real_eval: Callable[[Sequence[int]], None] = llm.eval
        real_load: Callable[[LlamaState], None] = llm.load_state
        real_save: Callable[[], LlamaState] = llm.save_state

        def eval_(tokens: Sequence[int]) -> None:
            self.evals.append(len(tokens))
            real_eval(tokens)

        def load(state: LlamaState) -> None:
            t = time.perf_counter()
            real_load(state)
            self.loads.append(time.perf_counter() - t)

        def save() -> LlamaState:
            t = time.perf_counter()
            state = real_save()
            self.saves.append(time.perf_counter() - t)
            return state

        llm.eval, llm.load_state, llm.save_state = eval_, load, save

    def uninstall(self) -> None:
        for name in ("eval", "load_state", "save_state"):
            self.llm.__dict__.pop(name, None)

    def mark(self) -> None:
        self.evals.clear()
        self.loads.clear()
        self.saves.clear()

    def fill(self, t: TurnTiming) -> TurnTiming:
        t.prefill_tokens = self.evals[0] if self.evals else None
        t.context_tokens = int(self.llm.n_tokens)
        t.cache_loads, t.cache_load_s = len(self.loads), sum(self.loads)
        t.cache_saves, t.cache_save_s = len(self.saves), sum(self.saves)
        return t


@dataclass
class Bench:
    """The shared model, its lock, the app's chat model over it, and the probe."""

    chat: LlamaCppChat
    llm: Llama
    lock: Any
    probe: Probe
    app_cache: Any  # the cache object load_llama installed (None: the app runs without one)

    @property
    def cache_bytes(self) -> int:
        return int(getattr(self.app_cache, "capacity_bytes", 0)) if self.app_cache else 0

    def new_cache(self) -> Any:
        """An empty cache of the app's own class and capacity (whatever ``load_llama`` uses,
        e.g. a ``LlamaRAMCache`` subclass), so the bench follows changes to the product."""
        from llama_cpp import LlamaRAMCache

        try:
            return type(self.app_cache)(capacity_bytes=self.cache_bytes)
        except TypeError:
            return LlamaRAMCache(capacity_bytes=self.cache_bytes)

    def fresh(self, cache: bool = True) -> None:
        """Forget all evaluated tokens and start an empty cache like the app's, so the
        next pass starts from exactly the conditions a newly loaded model would."""
        self.llm.reset()
        use = cache and self.app_cache is not None
        self.llm.set_cache(self.new_cache() if use else None)


def progress(label: str, t: TurnTiming) -> None:
    """One line per turn on stderr, so a long run can be watched."""
    print(
        f"  {label} turn {t.turn}: ttft {fmt(t.ttft_s)} s, total {t.total_s:.3f} s, "
        f"{t.tokens} tok, prefill {t.prefill_tokens}, cores {fmt(t.cores_busy, 2)}",
        file=sys.stderr,
        flush=True,
    )


def cpu_time() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def count_tokens(llm: Llama, text: str) -> int:
    return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0


def app_turn(
    b: Bench,
    persona: Persona,
    history: list[Message],
    n: int,
    ttft_only: bool = False,
    realism: bool = True,
) -> tuple[TurnTiming, Any]:
    """One reply through the app path; returns the timing and the ``CustomerTurn``.

    ``ttft_only`` stops reading after the first streamed piece (closing the stream, as a
    client that disconnects would): used where only TTFT is reported, to save decode time.
    ``realism=False`` turns the realism checks off (the bench's baseline only; the app
    always runs them). No director runs here, so thanks are not checked either way.
    """
    from sim.simulator import CustomerTurn, GuardContext

    b.probe.mark()
    c0 = cpu_time()
    t0 = time.perf_counter()
    turn = CustomerTurn(b.chat, persona, history, guard=GuardContext(realism=realism))
    first: float | None = None
    visible: float | None = None
    pieces = 0
    text = ""
    stream = iter(turn)
    try:
        for partial in stream:
            now = time.perf_counter() - t0
            if first is None:
                first = now
            if visible is None and partial.strip():
                visible = now
            pieces += 1
            text = partial
            if ttft_only:
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    total = time.perf_counter() - t0
    cpu = cpu_time() - c0
    reply = turn.reply
    t = TurnTiming(
        turn=n,
        ttft_s=first,
        total_s=total,
        tokens=sum(count_tokens(b.llm, a) for a in reply.attempts) if reply else pieces,
        prefill_tokens=None,
        context_tokens=0,
        pieces=pieces,
        cpu_s=cpu,
        ttft_visible_s=visible,
        regenerated=reply.regenerated if reply else False,
        fallback=reply.fallback if reply else False,
        reply=reply.text if reply else text,
        raw_text="".join(reply.attempts) if reply else text,
    )
    return b.probe.fill(t), turn


def raw_turn(b: Bench, messages: list[dict[str, str]], n: int) -> TurnTiming:
    """One reply for the same prompt straight through ``create_chat_completion(stream=True)``.

    Sampling parameters are the ones ``LlamaCppChat`` sends (temperature, max_tokens, seed,
    and also top_p=0.9 / repeat_penalty=1.1, which differ from llama-cpp-python's defaults),
    so both paths sample the same tokens and the comparison is of the wrapping alone.
    """
    params = b.chat._params(None)
    b.probe.mark()
    c0 = cpu_time()
    t0 = time.perf_counter()
    from sim.simulator import releasable

    first: float | None = None
    sentence: float | None = None
    pieces = 0
    text = ""
    with b.lock:
        stream = b.llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            **params,
        )
        for part in cast(Iterator[dict[str, Any]], stream):
            piece = part["choices"][0].get("delta", {}).get("content") or ""
            if not piece:
                continue
            if first is None:
                first = time.perf_counter() - t0
            pieces += 1
            text += piece
            if sentence is None and releasable(text):
                sentence = time.perf_counter() - t0
    total = time.perf_counter() - t0
    t = TurnTiming(
        turn=n,
        ttft_s=first,
        ttft_sentence_s=sentence if sentence is not None else (total if text.strip() else None),
        total_s=total,
        tokens=count_tokens(b.llm, text),
        prefill_tokens=None,
        context_tokens=0,
        pieces=pieces,
        cpu_s=cpu_time() - c0,
        reply=text.strip(),
        raw_text=text,
    )
    return b.probe.fill(t)


Snapshot = tuple["LlamaState", "OrderedDict[Any, Any] | None"]


def snapshot(b: Bench) -> Snapshot:
    """The model's evaluated state and the cache's entries (untimed bookkeeping)."""
    cache: Any = b.llm.cache
    return b.llm.save_state(), (OrderedDict(cache.cache_state) if cache is not None else None)


def restore(b: Bench, snap: Snapshot | None) -> None:
    """Put the model and its cache back as they were; ``None`` means freshly loaded."""
    if snap is None:
        b.fresh()
        return
    state, entries = snap
    b.llm.load_state(state)
    cache: Any = b.llm.cache
    if cache is not None and entries is not None:
        cache.cache_state = OrderedDict(entries)


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
    from providers.local import to_openai_messages
    from sim.prompt import Message, build_messages

    app_runs: list[list[TurnTiming]] = []
    raw_runs: list[list[TurnTiming]] = []
    off_runs: list[list[TurnTiming]] = []
    orders: list[str] = []
    kinds = ("app", "raw", "off") if realism_baseline else ("app", "raw")
    prompts: list[list[dict[str, str]]] = []
    for r in range(repeats):
        b.fresh()
        history = [Message("customer", persona.opening_line)]
        app_t: list[TurnTiming] = []
        raw_t: list[TurnTiming] = []
        off_t: list[TurnTiming] = []
        for n, text in enumerate(agent_msgs, 1):
            history.append(Message("agent", text))
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
            history.append(Message("customer", a.reply))
            app_t.append(a)
            raw_t.append(w)
            if o is not None:
                off_t.append(o)
        app_runs.append(app_t)
        raw_runs.append(raw_t)
        off_runs.append(off_t)
    off = _median_turns(off_runs) if realism_baseline else []
    return _median_turns(app_runs), _median_turns(raw_runs), prompts, orders, off


def _sum(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) if len(vals) == len(xs) else None


def _median_turns(runs: list[list[TurnTiming]]) -> list[TurnTiming]:
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


def _warm_up(b: Bench) -> float:
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
    from sim.prompt import Message, build_messages

    b.fresh()
    warm_messages = build_messages(persona, [Message("customer", persona.opening_line)])
    b.probe.mark()
    t0 = time.perf_counter()
    b.chat.warm(warm_messages)
    warm_s = time.perf_counter() - t0
    warm_prefill = b.probe.evals[0] if b.probe.evals else None
    history = [Message("customer", persona.opening_line), Message("agent", agent_msg)]
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
    from sim.prompt import Message

    scripts = {p.id: script_for(p.id, turns) for p in personas}
    histories = {p.id: [Message("customer", p.opening_line)] for p in personas}
    prompts: dict[tuple[str, int], list[Message]] = {}
    on: dict[str, list[TurnTiming]] = {p.id: [] for p in personas}
    state: LlamaState | None = None

    b.fresh(cache=True)
    rss_before = rss_mib()
    t0 = time.perf_counter()
    for n in range(1, turns + 1):
        for p in personas:
            h = histories[p.id]
            h.append(Message("agent", scripts[p.id][n - 1]))
            prompts[(p.id, n)] = list(h)
            t, _ = app_turn(b, p, h, n)
            h.append(Message("customer", t.reply))
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
        warm_up_s = _warm_up(b)
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
    app_ttft = _sum([t.ttft_s for t in app])
    # The app shows a reply a checked sentence at a time, so its TTFT is compared with the
    # raw stream's first complete sentence; the raw first token is kept in the JSON.
    raw_ttft = _sum([t.ttft_sentence_s for t in raw])
    app_total = sum(t.total_s for t in app)
    raw_total = sum(t.total_s for t in raw)
    app_tps = ratio(sum(t.tokens for t in app), app_total)
    raw_tps = ratio(sum(t.tokens for t in raw), raw_total)
    last = turns

    figs: list[Figure] = [
        figure(
            f"turn-{n} TTFT (app)",
            a.ttft_s,
            "s",
            baseline=r.ttft_sentence_s,
            baseline_name="raw llama-cpp-python's first complete sentence, same prompt",
            target=TTFT_TURN5_TARGET_S if n == 5 else None,
        )
        for n, (a, r) in enumerate(zip(app, raw, strict=True), 1)
    ]
    figs += [
        figure(
            f"TTFT sum turns 1-{last} (app)",
            app_ttft,
            "s",
            baseline=raw_ttft,
            baseline_name="raw llama-cpp-python, first complete sentence",
            target=APP_OVER_RAW_TARGET,
            target_on="ratio",
        ),
        figure(
            f"total time sum turns 1-{last} (app)",
            app_total,
            "s",
            baseline=raw_total,
            baseline_name="raw llama-cpp-python",
            target=APP_OVER_RAW_TARGET,
            target_on="ratio",
        ),
        figure(
            f"CPU time sum turns 1-{last} (app)",
            sum(t.cpu_s for t in app),
            "s",
            baseline=sum(t.cpu_s for t in raw),
            baseline_name="raw llama-cpp-python",
            note="process CPU time: a cross-check that other load on the machine inflates less",
        ),
        figure(
            "tokens/s incl. TTFT (app)",
            app_tps,
            "tok/s",
            baseline=raw_tps,
            baseline_name="raw llama-cpp-python",
        ),
    ]
    if off:
        five = min(5, len(app))
        figs.append(
            figure(
                f"turn-{five} first-sentence latency, realism checks on (app)",
                app[five - 1].ttft_s,
                "s",
                baseline=off[five - 1].ttft_s,
                baseline_name="same turn, app path with the realism checks off",
                target=REALISM_ON_OFF_TARGET,
                target_on="ratio",
            )
        )
        extra = cost[five - 1]["first_extra_s"] if cost else None  # the checks alone, timed
        figs.append(
            figure(
                f"turn-{five} first-sentence latency off + the checks' own time",
                None if extra is None else (off[five - 1].ttft_s or 0.0) + extra,
                "s",
                baseline=off[five - 1].ttft_s,
                baseline_name="app path with the realism checks off (bench/realism_cost.py)",
                target=REALISM_ON_OFF_TARGET,
                target_on="ratio",
            )
        )
        figs.append(
            figure(
                f"TTFT sum turns 1-{last}, realism checks on (app)",
                app_ttft,
                "s",
                baseline=_sum([t.ttft_s for t in off]),
                baseline_name="app path with the realism checks off",
            )
        )
    if pre is not None:
        figs += [
            figure(
                "turn-1 TTFT after prewarm (app)",
                pre["turn1"]["ttft_s"],
                "s",
                baseline=app[0].ttft_s,
                baseline_name="turn-1 TTFT without prewarm",
            ),
            figure("prewarm duration (background)", pre["warm_s"], "s"),
        ]
    if inter is not None:
        figs += [
            figure(
                f"interleaved TTFT sum turns 2-{interleave_turns}, 2 sessions, cache on",
                inter["ttft_sum_on_s"],
                "s",
                baseline=inter["ttft_sum_off_s"],
                baseline_name="same with the RAM cache off",
            ),
        ]
        for pid, s in inter["sessions"].items():
            for row in s["turns"]:
                figs.append(
                    figure(
                        f"interleaved turn-{row['turn']} TTFT {pid}, cache on",
                        row["ttft_on_s"],
                        "s",
                        baseline=row["ttft_off_s"],
                        baseline_name="cache off",
                    )
                )
        ce = inter["cache_entry"]
        figs.append(
            figure(
                "RAM per cache entry (state + logits copy)",
                (ce["llama_state_bytes"] + ce["scores_bytes"]) / 2**20,
                "MiB",
                baseline=ce["llama_state_bytes"] / 2**20,
                baseline_name="llama.cpp state blob alone",
            )
        )

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
            "realism_off_ttft_sum_s": _sum([t.ttft_s for t in off]) if off else None,
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


def report(res: dict[str, Any]) -> str:
    rows = []
    for t in res["turns"]:
        a, r = t["app"], t["raw"]
        rows.append(
            [
                t["turn"],
                a["prefill_tokens"],
                a["ttft_s"],
                r["ttft_s"],
                t["ttft_ratio"],
                a["total_s"],
                r["total_s"],
                t["total_ratio"],
                a["tokens"],
                r["tokens"],
                a["decode_tokens_per_s"],
                a["cache_loads"],
                a["cores_busy"],
                r["cores_busy"],
                "yes" if t["same_text"] else "no",
            ]
        )
    head = [
        "turn",
        "prefill",
        "ttft app",
        "ttft raw",
        "ratio",
        "total app",
        "total raw",
        "ratio",
        "tok app",
        "tok raw",
        "decode tok/s",
        "cache loads",
        "cores app",
        "cores raw",
        "same text",
    ]
    out = [
        f"chat_latency  model={res['model_file']}  nproc={res['nproc']}  "
        f"threads={res['config']['n_threads']}  loadavg={res['machine']['loadavg_start']}"
        f"->{res['machine']['loadavg_end']}  cache={res['config']['app_cache_class']} "
        f"{res['config']['app_cache_capacity_bytes'] / 2**20:.0f} MiB",
        "",
        table(rows, head),
    ]
    s = res["summary"]
    out.append(
        f"\nsum TTFT app {fmt(s['app_ttft_sum_s'])} s vs raw {fmt(s['raw_ttft_sum_s'])} s "
        f"(x{fmt(s['ttft_ratio'])});  sum total app {fmt(s['app_total_sum_s'])} s vs raw "
        f"{fmt(s['raw_total_sum_s'])} s (x{fmt(s['total_ratio'])})"
    )
    if s.get("realism_turn5_ttft_ratio") is not None:
        rows = [
            [
                t["turn"],
                t["app"]["ttft_s"],
                t["app_realism_off"]["ttft_s"],
                t["realism_ttft_ratio"],
                t["app"]["cpu_s"],
                t["app_realism_off"]["cpu_s"],
                "yes" if t["realism_same_text"] else "no",
            ]
            for t in res["turns"]
        ]
        out += [
            "\nrealism checks on vs off (app path, first released sentence):",
            table(
                rows, ["turn", "ttft on", "ttft off", "on/off", "cpu on", "cpu off", "same text"]
            ),
            f"turn-{s['realism_turn']} first-sentence latency ratio on/off: "
            f"x{fmt(s['realism_turn5_ttft_ratio'])} (target <= {REALISM_ON_OFF_TARGET:.2f}); "
            f"CPU time on/off x{fmt(s['realism_turn5_cpu_ratio'])}; the checks alone add "
            f"{fmt(1000 * (s['realism_turn5_check_extra_s'] or 0))} ms to the first sentence",
        ]
    pre = res["prewarm"]
    if pre is not None:
        out.append(
            f"prewarm: warm {fmt(pre['warm_s'])} s ({pre['warm_prefill_tokens']} tokens), then "
            f"turn-1 TTFT {fmt(pre['turn1']['ttft_s'])} s (prefill "
            f"{pre['turn1']['prefill_tokens']}) vs {fmt(res['turns'][0]['app']['ttft_s'])} s cold"
        )
    inter = res["interleave"]
    if inter is not None:
        rows = []
        for pid, sess in inter["sessions"].items():
            for row in sess["turns"]:
                rows.append(
                    [
                        pid,
                        row["turn"],
                        row["ttft_on_s"],
                        row["ttft_off_s"],
                        row["ratio_on_off"],
                        row["prefill_on"],
                        row["prefill_off"],
                        row["cache_load_on_s"],
                    ]
                )
        out += [
            "\ninterleaved sessions (RAM cache on vs off):",
            table(
                rows,
                [
                    "session",
                    "turn",
                    "ttft on",
                    "ttft off",
                    "on/off",
                    "prefill on",
                    "prefill off",
                    "cache load s",
                ],
            ),
        ]
        ce = inter["cache_entry"]
        out.append(
            f"cache entry: llama state {ce['llama_state_bytes'] / 2**20:.1f} MiB + logits copy "
            f"{ce['scores_bytes'] / 2**20:.1f} MiB; cache counts "
            f"{ce['cache_size_counted_bytes'] / 2**20:.1f} MiB for {ce['entries_after_on_run']} "
            f"entries; RSS {ce['rss_mib_before_on_run']} -> {ce['rss_mib_after_on_run']} MiB"
        )
    out += ["", figures_table(res["figures"]), f"\nwall {res['wall_s']:.1f} s"]
    return "\n".join(out)


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
