"""The engine: one model, one context, many sessions decoding together."""

from __future__ import annotations

import codecs
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from providers.llama_engine.decoding import emit, make_sampler, token_piece
from providers.llama_engine.llama_glue import release_mapped_weights, route_llama_log
from providers.llama_engine.prefixes import PrefixStates, _common_prefix, _dropped_span
from providers.llama_engine.records import (
    _DONE,
    EngineError,
    EngineStats,
    Sampling,
    _Request,
    _Slot,
)

log = logging.getLogger("providers.llama_engine")


class LlamaEngine:
    """One model, one context, many sessions. Thread-safe: call :meth:`stream` from any thread."""

    def __init__(
        self,
        model_path: Path,
        n_ctx_seq: int = 4096,
        n_slots: int = 8,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_ubatch: int = 128,
        prefix_dir: Path | None = None,
        max_prefix_files: int = 64,
        prefill_chunk: int = 128,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        route_llama_log(llama_cpp)
        self._lc = llama_cpp
        self.model_path = model_path
        self.n_ctx_seq = n_ctx_seq
        self.n_slots = n_slots
        self.n_batch = n_batch
        self.prefill_chunk = prefill_chunk
        threads = n_threads or max(1, os.cpu_count() or 1)
        mp = llama_cpp.llama_model_default_params()
        # verbose=True only skips llama-cpp-python's redirect of the process's stdout/stderr
        # during the load (output printed by other threads meanwhile was lost); llama.cpp's
        # own log lines go through route_llama_log.
        self._model = _internals.LlamaModel(path_model=str(model_path), params=mp, verbose=True)
        cp = llama_cpp.llama_context_default_params()
        # Each session may use up to n_ctx_seq tokens; all sessions together share n_ctx cells.
        cp.n_ctx = max(n_ctx, n_ctx_seq)
        cp.n_batch = n_batch
        cp.n_ubatch = min(
            n_ubatch, n_batch
        )  # compute buffer: ~75 MiB at 128 vs ~300 at 512, same speed
        cp.n_seq_max = n_slots
        cp.kv_unified = True
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.flash_attn_type = 1  # no n_kv x n_tokens score matrix; a little faster on CPU too
        self._ctx = _internals.LlamaContext(model=self._model, params=cp, verbose=False)
        release_mapped_weights(model_path)
        self._batch = _internals.LlamaBatch(
            n_tokens=n_batch, embd=0, n_seq_max=n_slots, verbose=False
        )
        self.n_ctx = cp.n_ctx
        self._vocab = llama_cpp.llama_model_get_vocab(self._model.model)
        self._mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._mem))
        self._formatter = self._chat_formatter()
        self._slots = [_Slot(seq=i) for i in range(n_slots)]
        self._pending: list[_Request] = []
        self._cv = threading.Condition()
        self.stats = EngineStats()
        self._tick = 0
        self.prefixes = PrefixStates(prefix_dir, max_prefix_files)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="llama-engine", daemon=True)
        self._thread.start()

    # --- public ------------------------------------------------------------------------------

    def tokenize_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt tokens for chat messages, formatted with the model's own chat template."""
        text = self._formatter(messages=messages).prompt
        return self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def stream(self, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]:
        """Text pieces of the reply to ``messages``, as they are decoded."""
        tokens = self.tokenize_chat(messages)
        if len(tokens) + 1 > self.n_ctx_seq:
            raise EngineError(
                f"The conversation is too long for the model's context ({len(tokens)} prompt "
                f"tokens, limit {self.n_ctx_seq}). End this session and start a new one."
            )
        req = _Request(tokens=tokens, sampling=sampling, out=queue.Queue())
        self._submit(req)
        try:
            while True:
                item = req.out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            req.cancelled = True  # the consumer stopped early: free the slot at the next step

    def warm(self, messages: list[dict[str, str]], persist: bool = True) -> None:
        """Read a prompt prefix (system prompt + opening line) in the background and, with
        ``persist``, keep its state on disk, so the first reply of any session with that
        prefix starts at once."""
        tokens = self._shared_prefix(messages)
        if not tokens or len(tokens) + 1 > self.n_ctx_seq:
            return
        if self.prefixes.has(tokens):
            return
        with self._cv:
            for r in self._pending + [s.request for s in self._slots if s.request]:
                if r.priority == 1 and r.tokens == tokens:
                    return  # already being warmed
        req = _Request(
            tokens=tokens,
            sampling=Sampling(max_tokens=0),
            out=queue.Queue(),
            priority=1,
            save_at=len(tokens) if persist else None,
        )
        self._submit(req)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is waiting or running (e.g. after prewarming). False on timeout."""
        end = None if timeout is None else time.perf_counter() + timeout
        while True:
            with self._cv:
                if not self._pending and not self._active():
                    return True
            if end is not None and time.perf_counter() > end:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=10)

    # --- formatting ---------------------------------------------------------------------------

    def _chat_formatter(self) -> Any:
        from llama_cpp import llama_chat_format

        meta = self._model.metadata()
        template = meta.get("tokenizer.chat_template")
        if not template:
            return llama_chat_format.Jinja2ChatFormatter(
                template=llama_chat_format.CHATML_CHAT_TEMPLATE,
                eos_token="<|im_end|>",
                bos_token="",
            )
        eos, bos = self._model.token_eos(), self._model.token_bos()
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=self._model.token_get_text(eos) if eos != -1 else "",
            bos_token=self._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )

    def _shared_prefix(self, messages: list[dict[str, str]]) -> list[int]:
        """The tokens every continuation of ``messages`` starts with (the template's
        generation prompt is cut off: the next real prompt has a user turn there)."""
        a = self.tokenize_chat([*messages, {"role": "user", "content": "a"}])
        b = self.tokenize_chat([*messages, {"role": "user", "content": "z"}])
        return a[: _common_prefix(a, b)]

    # --- prefix states on disk -----------------------------------------------------------------

    def _load_prefix(self, slot: _Slot, tokens: list[int]) -> bool:
        if self.prefixes.path(tokens) is None:
            return False
        self._clear(slot)
        if not self.prefixes.load_into(self._lc, self._ctx.ctx, slot.seq, tokens):
            self._clear(slot)
            return False
        slot.tokens = list(tokens)
        self.stats.prefix_loads += 1
        return True

    def _save_prefix(self, slot: _Slot) -> None:
        if self.prefixes.save_from(self._lc, self._ctx.ctx, slot.seq, slot.tokens):
            self.stats.prefix_saves += 1

    # --- scheduling -----------------------------------------------------------------------------

    def _submit(self, req: _Request) -> None:
        with self._cv:
            if self._closed:
                raise EngineError("The model engine has shut down.")
            self._pending.append(req)
            self._cv.notify_all()

    def _clear(self, slot: _Slot, keep: int = 0) -> None:
        self._lc.llama_memory_seq_rm(self._mem, slot.seq, keep, -1)
        del slot.tokens[keep:]

    def _cells_needed(self, req: _Request) -> int:
        return len(req.tokens) + req.sampling.max_tokens + 1

    def _assign(self) -> None:
        """Give waiting requests a slot: trainees before prewarms, then first come first served."""
        self._pending.sort(key=lambda r: (r.priority, r.arrived))
        for req in list(self._pending):
            if req not in self._pending:
                continue  # a prewarm taken over by a trainee's request just now
            if req.cancelled:
                self._pending.remove(req)
                req.out.put(_DONE)
                continue
            if req.priority == 0:
                self._absorb_warm(req)
            idle = [s for s in self._slots if s.request is None]
            if not idle and req.priority == 0:
                warming = [s for s in self._slots if s.request and s.request.priority == 1]
                if warming:  # a trainee outranks a prewarm; what it read stays in the slot
                    self._finish(warming[0].request, None)  # type: ignore[arg-type]
                    idle = [warming[0]]
            if not idle:
                return
            self._realign(idle, req)
            best = max(idle, key=lambda s: _common_prefix(s.tokens, req.tokens))
            common = _common_prefix(best.tokens, req.tokens)
            prefix = self.prefixes.best(req.tokens, longer_than=common)
            # an empty slot, else the least recently used one
            spare = min(idle, key=lambda s: (len(s.tokens) > 0, s.last_used))
            share = (
                prefix is None
                and 0 < common < len(best.tokens)
                and not spare.tokens
                and spare is not best
            )
            # A slot that holds another conversation beyond the shared part (say, another
            # trainee with the same persona) is not cut back: the shared part is copied to an
            # empty slot instead (in llama.cpp's unified KV cache the cells are shared).
            slot = spare if common == 0 or prefix is not None or share else best
            if not self._make_room(slot, req):
                return  # wait for a running reply to finish
            self._pending.remove(req)
            if prefix is not None and self._load_prefix(slot, prefix):
                common = len(prefix)
            elif share:
                self._lc.llama_memory_seq_cp(self._mem, best.seq, slot.seq, 0, common)
                slot.tokens = best.tokens[:common]
                self.stats.shared += 1
            else:
                common = _common_prefix(slot.tokens, req.tokens)
            common = min(common, len(req.tokens) - 1)  # the last prompt token gives the logits
            self._clear(slot, common)
            self.stats.prompt_tokens_reused += common
            req.reused = common
            self.stats.last_prompt_read = len(req.tokens) - common
            req.slot, req.done_prompt = slot, common
            req.assigned = time.perf_counter()
            slot.request = req
            slot.last_used = time.perf_counter()
            req.sampler = make_sampler(self._model, req.sampling)
            req.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def _realign(self, idle: list[_Slot], req: _Request) -> None:
        """If ``req`` continues an idle conversation whose oldest turns were dropped to fit the
        context, drop the same span from that sequence's cache and shift what follows back
        (llama.cpp's context shift), so the kept turns are not read again."""
        if not self._can_shift:
            return
        plain = max(_common_prefix(s.tokens, req.tokens) for s in idle)
        found = [
            (span, s)
            for s in idle
            if (span := _dropped_span(s.tokens, req.tokens, min_gain=64)) is not None
        ]
        if not found:
            return
        (start, length, matched), slot = max(found, key=lambda f: f[0][0] + f[0][2])
        if start + matched <= plain:
            return
        self._lc.llama_memory_seq_rm(self._mem, slot.seq, start, start + length)
        self._lc.llama_memory_seq_add(self._mem, slot.seq, start + length, -1, -length)
        del slot.tokens[start : start + length]
        self.stats.shifted += 1

    def _absorb_warm(self, req: _Request) -> None:
        """A trainee's prompt that extends a prewarm still in progress takes it over, so the
        persona prompt is read once; its state is still saved when the reading passes it."""
        for s in self._slots:
            w = s.request
            if w is not None and w.priority == 1 and req.tokens[: len(w.tokens)] == w.tokens:
                req.save_at = w.save_at
                self._finish(w, None)
        for w in [r for r in self._pending if r.priority == 1]:
            if req.tokens[: len(w.tokens)] == w.tokens:
                req.save_at = w.save_at
                self._pending.remove(w)
                self._finish(w, None)

    def _make_room(self, slot: _Slot, req: _Request) -> bool:
        """Evict idle sequences (least recently used first) until ``req`` fits the KV cache."""

        def used() -> int:
            total = 0
            for s in self._slots:
                if s.request is not None:
                    total += max(len(s.tokens), self._cells_needed(s.request))
                elif s is not slot:
                    total += len(s.tokens)
            return total

        need = self._cells_needed(req)
        victims = sorted(
            (s for s in self._slots if s.request is None and s is not slot and s.tokens),
            key=lambda s: s.last_used,
        )
        while used() + need > self.n_ctx and victims:
            self._clear(victims.pop(0))
            self.stats.evictions += 1
        return used() + need <= self.n_ctx

    # --- the worker loop ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not self._pending and not self._active():
                    self._cv.wait()
                if self._closed:
                    for r in self._pending + self._active():
                        r.out.put(EngineError("The model engine has shut down."))
                    return
                self._assign()
            self._drop_cancelled()
            if self._active():
                try:
                    self._step()
                except Exception as exc:  # never leave a trainee waiting forever
                    log.exception("engine step failed")
                    for r in self._active():
                        self._finish(r, EngineError(f"The model failed while replying: {exc}"))
                        if r.slot is not None:
                            self._clear(r.slot)

    def _active(self) -> list[_Request]:
        return [s.request for s in self._slots if s.request is not None]

    def _drop_cancelled(self) -> None:
        for r in self._active():
            if r.cancelled:
                self._finish(r, None)

    def _finish(self, req: _Request, error: BaseException | None) -> None:
        if req.finished:
            return
        req.finished = True
        if req.slot is not None:
            req.slot.request = None
            req.slot.last_used = time.perf_counter()
        if error is not None:
            req.out.put(error)
        else:
            tail = req.held + (req.decoder.decode(b"", final=True) if req.decoder else "")
            if tail:
                req.out.put(tail)
            req.out.put(_DONE)

    def _step(self) -> None:
        b = self._batch
        b.reset()
        outputs: list[tuple[_Request, int]] = []
        # One token for every reply being generated. Replies that have not yet completed their
        # first sentence (what a trainee waits to see) go first: while there are any, replies
        # already showing text join only every third step, so the newcomers' steps stay small.
        self._tick += 1
        active = self._active()
        first_words = any(
            r.priority == 0 and (r.next_token is None or not r.first_sentence) for r in active
        )
        for req in active:
            if first_words and req.first_sentence and self._tick % 3:
                self.stats.deferred += 1
                continue
            if req.next_token is not None and req.slot is not None:
                outputs.append((req, b.batch.n_tokens))
                self._add(req.slot, req.next_token, logits=True)
        # ... and prompt chunks, oldest trainee first, in what room is left in the batch. While
        # replies are streaming, a chunk is kept small (a step with 128 prompt tokens takes
        # ~2 s on 2 cores) so they don't stall. Prewarms wait until no trainee is waiting, and
        # read small chunks too, so a trainee who arrives waits one chunk at most.
        decoding = b.batch.n_tokens > 0
        trainee_waiting = any(r.priority == 0 for r in active + self._pending)
        budget = self.prefill_chunk if decoding or not trainee_waiting else self.n_batch
        prefill = sorted(
            (
                r
                for r in active
                if r.next_token is None and not (r.priority == 1 and trainee_waiting)
            ),
            key=lambda r: (r.priority, r.arrived),
        )
        saves: list[_Slot] = []
        used = 0
        for req in prefill:
            room = min(self.n_batch - b.batch.n_tokens, budget - used)
            if room <= 0:
                break
            end = min(len(req.tokens), req.done_prompt + room)
            if req.save_at is not None and req.done_prompt < req.save_at:
                end = min(end, req.save_at)
            assert req.slot is not None
            for i in range(req.done_prompt, end):
                last = i == len(req.tokens) - 1
                if last:
                    outputs.append((req, b.batch.n_tokens))
                self._add(req.slot, req.tokens[i], logits=last)
            self.stats.prompt_tokens_read += end - req.done_prompt
            used += end - req.done_prompt
            req.done_prompt = end
            if req.save_at is not None and end == req.save_at:
                saves.append(req.slot)
        if b.batch.n_tokens == 0:
            with self._cv:  # nothing can move until a request arrives or is cancelled
                self._cv.wait(timeout=0.05)
            return
        self._ctx.decode(b)
        self.stats.steps += 1
        seqs = {b.batch.seq_id[i][0] for i in range(b.batch.n_tokens)}
        self.stats.max_batch_seqs = max(self.stats.max_batch_seqs, len(seqs))
        for slot in saves:
            self._save_prefix(slot)
            if slot.request is not None and slot.request.priority == 1:
                self._finish(slot.request, None)
        for req, idx in outputs:
            self._sample(req, idx)

    def _add(self, slot: _Slot, token: int, logits: bool) -> None:
        b = self._batch.batch
        n = b.n_tokens
        b.token[n] = token
        b.pos[n] = len(slot.tokens)
        b.seq_id[n][0] = slot.seq
        b.n_seq_id[n] = 1
        b.logits[n] = logits
        b.n_tokens = n + 1
        slot.tokens.append(token)

    def _sample(self, req: _Request, idx: int) -> None:
        if req.finished:
            return
        if req.sampling.max_tokens <= 0 or req.cancelled:
            self._finish(req, None)
            return
        token = req.sampler.sample(self._ctx, idx)
        if req.generated == 0 and req.priority == 0:
            now = time.perf_counter()
            req.timing = {
                "wait_s": req.assigned - req.arrived,
                "prompt_s": now - req.arrived,
                "first_token_s": now - req.assigned,
                "read": len(req.tokens) - req.reused,
                "reused": req.reused,
            }
            self.stats.recent.append(req.timing)
        if self._lc.llama_vocab_is_eog(self._vocab, token):
            self._finish(req, None)
            return
        req.generated += 1
        piece = req.decoder.decode(token_piece(self._lc, self._vocab, token))
        if emit(req, piece):
            self._finish(req, None)
            return
        if req.generated >= req.sampling.max_tokens:
            self._finish(req, None)
            return
        req.next_token = token
