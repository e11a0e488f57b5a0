"""One customer reply timed two ways on the shared ``Llama``: through the app path
(``CustomerTurn`` over ``LlamaCppChat``) and straight through llama-cpp-python, with a probe
that counts what llama.cpp evaluates, loads and saves, and snapshots of the model state."""

from __future__ import annotations

import resource
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

from bench.common import fmt

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaState

    from common.turns import Turn
    from providers.local import LlamaCppChat
    from sim.persona import Persona


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
    history: list[Turn],
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
