"""From logits to text for one request: its sampler chain, a token's bytes, and the text sent
on with any stop string held back."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

from common.text import SENTENCE_END
from providers.llama_engine.records import Sampling, _Request


def make_sampler(model: Any, sp: Sampling) -> Any:
    """llama.cpp's sampler chain for ``sp`` on ``model`` (an ``_internals.LlamaModel``)."""
    from llama_cpp import _internals

    smp = _internals.LlamaSampler()
    smp.add_penalties(
        n_vocab=model.n_vocab(),
        penalty_last_n=64,
        penalty_repeat=sp.repeat_penalty,
        penalty_freq=0.0,
        penalty_present=0.0,
    )
    if sp.json:
        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        smp.add_grammar(model, LlamaGrammar.from_string(JSON_GBNF, verbose=False))
    if sp.temperature <= 0:
        smp.add_greedy()
    else:
        smp.add_top_k(sp.top_k)
        smp.add_top_p(sp.top_p, 1)
        smp.add_min_p(sp.min_p, 1)
        smp.add_temp(sp.temperature)
        seed = sp.seed if sp.seed is not None else int.from_bytes(os.urandom(4), "little")
        smp.add_dist(seed)
    return smp  # like llama-cpp-python: the repeat penalty sees the reply's own tokens


def token_piece(llama_cpp: Any, vocab: Any, token: int) -> bytes:
    """The bytes of one token (a piece of a UTF-8 character, possibly)."""
    size = 64
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_token_to_piece(vocab, token, buf, size, 0, False)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def emit(req: _Request, piece: str) -> bool:
    """Send text on, holding back what might be the start of a stop string. True: stop."""
    text = req.held + piece
    stops = req.sampling.stop
    for s in stops:
        at = text.find(s)
        if at >= 0:
            if text[:at]:
                req.out.put(text[:at])
            req.held = ""
            return True
    keep = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if s.startswith(text[-k:]):
                keep = max(keep, k)
                break
    out, req.held = (text[:-keep], text[-keep:]) if keep else (text, "")
    if out:
        req.out.put(out)
        if not req.first_sentence:
            req.shown += out
            req.first_sentence = bool(SENTENCE_END.search(req.shown))
            if req.first_sentence and req.timing is not None:
                req.timing["sentence_s"] = time.perf_counter() - req.arrived
    return False
