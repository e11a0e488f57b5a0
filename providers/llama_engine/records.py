"""What the engine works with: sampling settings, requests, slots, statistics and its error."""

from __future__ import annotations

import queue
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_DONE = object()


class EngineError(RuntimeError):
    """A request the engine could not serve; the message says why in plain words."""


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 160
    seed: int | None = None
    stop: tuple[str, ...] = ()
    json: bool = False


@dataclass(eq=False)
class _Request:
    tokens: list[int]
    sampling: Sampling
    out: queue.Queue[Any]
    priority: int = 0  # 0: a trainee waiting; 1: prewarm
    save_at: int | None = None  # persist the state of tokens[:save_at] when it is read
    arrived: float = field(default_factory=time.perf_counter)
    assigned: float = 0.0
    cancelled: bool = False
    finished: bool = False
    slot: _Slot | None = None
    done_prompt: int = 0
    generated: int = 0
    next_token: int | None = None
    sampler: Any = None
    decoder: Any = None
    held: str = ""
    shown: str = ""  # text sent on so far, until its first sentence is complete
    first_sentence: bool = False
    reused: int = 0
    timing: dict[str, float] | None = None  # this request's entry in ``EngineStats.recent``


@dataclass(eq=False)
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # what the KV cache holds for this sequence
    request: _Request | None = None
    last_used: float = 0.0


@dataclass
class EngineStats:
    """Counters for tests and benchmarks."""

    steps: int = 0
    max_batch_seqs: int = 0
    prompt_tokens_read: int = 0
    prompt_tokens_reused: int = 0
    prefix_loads: int = 0
    prefix_saves: int = 0
    evictions: int = 0
    last_prompt_read: int = 0
    deferred: int = 0  # times a reply already showing text sat out a step for newer ones
    shared: int = 0  # prompts that started from a prefix copied from another sequence
    shifted: int = 0  # conversations cut to fit the context whose cache was shifted, not re-read
    # per trainee request, in seconds from arrival: a sequence assigned (wait_s), the prompt
    # read (prompt_s), the first token (first_token_s, from assignment), the first complete
    # sentence (sentence_s); tokens read and reused
    recent: deque[dict[str, float]] = field(default_factory=lambda: deque(maxlen=256))
