"""The embedded chat model: llama-cpp-python behind LangChain's chat-model interface.

Two ways to serve many sessions from one model file (``RAPPORT_LOCAL_ENGINE``):

- ``batched`` (default): :class:`providers.llama_engine.LlamaEngine`, one llama.cpp context that
  decodes several sessions in each step and keeps persona-prompt states on disk.
- ``single``: one ``Llama`` shared by every session behind a lock, one reply at a time.
  llama.cpp reuses the longest already-evaluated prompt prefix, and a ``LlamaRAMCache`` keeps
  recent states so that interleaved sessions don't throw that reuse away. Kept as the
  baseline the benchmarks compare against.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from providers.llama_engine import EngineError, Sampling, release_mapped_weights
from providers.model_files import known_digest

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from llama_cpp import Llama

    from providers.llama_engine import LlamaEngine

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}
_instances: dict[tuple[str, int, int], tuple[Llama, threading.Lock]] = {}
_instances_lock = threading.Lock()
_engines: dict[tuple[str, int, int, int], LlamaEngine] = {}


class LocalModelError(RuntimeError):
    """The embedded runtime can't be used; the message says what to install or run."""


def _state_cache(capacity_bytes: int) -> Any:
    """A ``LlamaRAMCache`` that counts what its states really hold.

    The stock cache counts only llama.cpp's state blob (about 19 MiB for a 750-token prompt)
    but each entry also keeps a copy of the logits (about 300 MiB), so its byte cap didn't
    bound memory. Measured in bench/chat_latency.py.
    """
    from llama_cpp import LlamaRAMCache

    class TrueSizeRAMCache(LlamaRAMCache):
        def __setitem__(self, key: Any, value: Any) -> None:
            key = tuple(key)
            # One entry per conversation: a new state supersedes the ones it extends.
            for old in [k for k in self.cache_state if len(k) < len(key) and key[: len(k)] == k]:
                del self.cache_state[old]
            # Keep only the last row of logits: it is all sampling needs without logits_all,
            # and load_state broadcasts it back. Cuts an entry from ~316 MiB to ~19 MiB on Qwen.
            if getattr(value, "scores", None) is not None and len(value.scores) > 1:
                value.scores = value.scores[-1:].copy()
            super().__setitem__(key, value)

        @property
        def cache_size(self) -> int:
            total = 0
            for state in self.cache_state.values():
                total += int(state.llama_state_size)
                total += int(getattr(state.scores, "nbytes", 0)) + int(
                    getattr(state.input_ids, "nbytes", 0)
                )
            return total

    return TrueSizeRAMCache(capacity_bytes=capacity_bytes)


def load_llama(
    model_path: Path, n_ctx: int = 4096, n_threads: int | None = None, cache_bytes: int = 640 << 20
) -> tuple[Llama, threading.Lock]:
    """Load (once per process) and return the shared model with its lock."""
    threads = n_threads or max(1, os.cpu_count() or 1)
    key = (str(model_path), n_ctx, threads)
    with _instances_lock:
        if key in _instances:
            return _instances[key]
        _preflight(model_path)
        from llama_cpp import Llama

        try:
            llm = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise _load_error(model_path, exc) from exc
        _drop_scores_buffer(llm)
        release_mapped_weights(model_path)
        if cache_bytes > 0:
            llm.set_cache(_state_cache(cache_bytes))
        _instances[key] = (llm, threading.Lock())
        return _instances[key]


def _preflight(model_path: Path) -> None:
    """Clear errors before llama.cpp is asked to load anything."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise LocalModelError(
            "llama-cpp-python is not installed. Run: make install  (or pip install -e '.[local]')"
        ) from exc
    if not model_path.exists():
        raise LocalModelError(f"Model file {model_path} not found. Run: rapport model prepare")
    check_memory(model_path)


def _load_error(model_path: Path, exc: Exception) -> LocalModelError:
    return LocalModelError(
        f"llama.cpp could not load {model_path}: {exc}. The file may be corrupt "
        "(run: rapport model prepare) or there may not be enough memory."
    )


def _drop_scores_buffer(llm: Llama) -> None:
    """Replace llama-cpp-python's n_batch x n_vocab logits buffer with a single row.

    Without ``logits_all`` nothing reads it (sampling reads llama.cpp's own logits), but
    ``save_state`` copies all of it and ``load_state`` writes all of it: 512 x 151,936 floats
    = 297 MiB of RSS on Qwen and a second 297 MiB for every saved state, for nothing.
    """
    import numpy as np

    if not getattr(llm, "_logits_all", False):
        llm.scores = np.zeros((1, llm.n_vocab()), dtype=np.single)


def load_engine(
    model_path: Path,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    slots: int = 8,
    prefix_dir: Path | None = None,
) -> LlamaEngine:
    """Load (once per process) and return the batched engine for this model file."""
    threads = n_threads or max(1, os.cpu_count() or 1)
    key = (str(model_path), n_ctx, threads, slots)
    with _instances_lock:
        if key in _engines:
            return _engines[key]
        _preflight(model_path)
        import llama_cpp

        from providers.llama_engine import LlamaEngine

        if prefix_dir is not None:
            # saved states are only loaded by the same model (by digest, so re-assembling the
            # file keeps them) and the same llama.cpp build (version and instruction sets)
            st = model_path.stat()
            digest = known_digest(model_path)
            model_key = digest[:16] if digest else f"{st.st_size}-{int(st.st_mtime)}"
            build = hashlib.sha256(llama_cpp.llama_print_system_info()).hexdigest()[:8]
            prefix_dir = prefix_dir / (
                f"{model_path.stem}-{model_key}-llama-cpp-{llama_cpp.__version__}-{build}"
            )
        try:
            engine = LlamaEngine(
                model_path,
                n_ctx_seq=n_ctx,
                n_slots=slots,
                n_ctx=max(8192, 2 * n_ctx),
                n_threads=threads,
                prefix_dir=prefix_dir,
            )
        except (ValueError, RuntimeError) as exc:
            raise _load_error(model_path, exc) from exc
        _engines[key] = engine
        return engine


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(model_path: Path, overhead: int = 600 << 20) -> None:
    """Refuse to load a model that can't fit: a clear error instead of swapping or an OOM kill.

    Needed: the file (weights are mapped into memory) plus the context, caches and runtime.
    """
    need = model_path.stat().st_size + overhead
    have = available_memory()
    if have is not None and have < need:
        raise LocalModelError(
            f"Not enough free memory to load {model_path.name}: it needs about "
            f"{need / 2**30:.1f} GiB and {have / 2**30:.1f} GiB is available. Close other "
            "programs, or point Rapport at a model server (RAPPORT_PROVIDER=openai)."
        )


def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise ValueError(f"Unsupported message type for the local model: {m.type}")
        out.append({"role": role, "content": m.text})
    return out


def fit_to_context(
    messages: list[dict[str, str]],
    count: Callable[[list[dict[str, str]]], int],
    limit: int,
    block: int = 4,
) -> tuple[list[dict[str, str]], int]:
    """Drop a conversation's oldest exchanges until ``count`` (prompt tokens) is within ``limit``.

    Keeps the system message(s), the first message after them (a persona's opening line) and
    the last message, and drops exchanges (a message and its answer) ``block`` at a time. Cut
    in blocks, each turn's prompt still extends the previous one between two cuts, so the
    engine reuses what it has read; at a cut it drops the same span from its cache and shifts
    the rest (``LlamaEngine``), so nothing is read again either. Returns the messages and how
    many were dropped; unchanged when even the shortest cut would not fit.
    """
    if count(messages) <= limit:
        return messages, 0
    head = 1
    while head < len(messages) and messages[head - 1]["role"] == "system":
        head += 1
    body = messages[head:-1]
    pairs = len(body) // 2
    k = 0
    while k < pairs:
        k = min(k + block, pairs)
        kept = messages[:head] + body[2 * k :] + messages[-1:]
        if count(kept) <= limit:
            return kept, 2 * k
    return messages, 0


class LlamaCppChat(BaseChatModel):
    """LangChain chat model over a shared llama-cpp-python ``Llama``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: Path
    model_name: str = "local"
    n_ctx: int = 4096
    n_threads: int | None = None
    temperature: float = 0.7
    max_tokens: int = 160
    top_p: float = 0.9
    repeat_penalty: float = 1.1
    seed: int | None = None
    stop: list[str] | None = None
    engine: str = "batched"  # or "single"; see the module docstring
    slots: int = 8
    prefix_dir: Path | None = None

    @property
    def _llm_type(self) -> str:
        return "rapport-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.model_path), "temperature": self.temperature}

    def _llama(self) -> tuple[Llama, threading.Lock]:
        return load_llama(self.model_path, self.n_ctx, self.n_threads)

    def _params(self, stop: list[str] | None, **kwargs: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "top_p": self.top_p,
            "repeat_penalty": self.repeat_penalty,
            "stop": (stop or []) + (self.stop or []) or None,
        }
        seed = kwargs.get("seed", self.seed)
        if seed is not None:
            params["seed"] = seed
        if "response_format" in kwargs:
            params["response_format"] = kwargs["response_format"]
        return params

    def _fit(
        self, engine: LlamaEngine, messages: list[BaseMessage], max_tokens: int
    ) -> tuple[list[dict[str, str]], int]:
        return fit_to_context(
            to_openai_messages(messages),
            lambda m: len(engine.tokenize_chat(m)),
            engine.n_ctx_seq - max_tokens - 1,
        )

    def dropped_for(self, messages: list[BaseMessage]) -> int:
        """How many of the oldest messages a reply to ``messages`` would leave out to fit the
        context (``fit_to_context``); always 0 for the single engine, which never cuts."""
        if self.engine != "batched":
            return 0
        return self._fit(self.batched_engine(), messages, self.max_tokens)[1]

    def batched_engine(self) -> LlamaEngine:
        """The batched engine this model shares with every other user of the same file (loaded
        on first call); its ``stats`` and ``wait_idle`` are for tools, tests and benchmarks."""
        return load_engine(self.model_path, self.n_ctx, self.n_threads, self.slots, self.prefix_dir)

    def load(self) -> None:
        """Load the model now (it is otherwise loaded on first use), so a missing, corrupt or
        too-large model fails at start with a clear :class:`LocalModelError`."""
        if self.engine == "batched":
            self.batched_engine()
        else:
            self._llama()

    def warm(self, messages: list[BaseMessage]) -> None:
        """Process a prompt prefix (system prompt + opening line) ahead of the first reply,
        so the trainee's first message doesn't wait for the whole persona prompt.

        The batched engine reads it in the background (this returns at once) and keeps a
        persona prompt's state on disk; a longer history (a resumed session) is read but not
        saved, so no conversation is written to the cache."""
        if self.engine == "batched":
            self.batched_engine().warm(to_openai_messages(messages), persist=len(messages) <= 2)
            return
        llm, lock = self._llama()
        with lock:
            llm.create_chat_completion(
                messages=to_openai_messages(messages),  # type: ignore[arg-type]
                max_tokens=1,
                temperature=0.0,
            )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(c.message.text for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self.engine == "batched":
            pieces = self._pieces_batched(messages, stop, **kwargs)
        else:
            pieces = self._pieces_single(messages, stop, **kwargs)
        for piece in pieces:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    def _pieces_single(
        self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any
    ) -> Iterator[str]:
        llm, lock = self._llama()
        with lock:
            stream = llm.create_chat_completion(
                messages=to_openai_messages(messages),  # type: ignore[arg-type]
                stream=True,
                **self._params(stop, **kwargs),
            )
            for part in stream:
                choice: Any = part["choices"][0]  # type: ignore[index]
                piece = str(choice.get("delta", {}).get("content") or "")
                if piece:
                    yield piece

    def _pieces_batched(
        self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any
    ) -> Iterator[str]:
        p = self._params(stop, **kwargs)
        rf = p.get("response_format") or {}
        sampling = Sampling(
            temperature=p["temperature"],
            top_p=p["top_p"],
            repeat_penalty=p["repeat_penalty"],
            max_tokens=p["max_tokens"],
            seed=p.get("seed"),
            stop=tuple(p["stop"] or ()),
            json=isinstance(rf, dict) and rf.get("type") == "json_object",
        )
        engine = self.batched_engine()
        msgs, dropped = self._fit(engine, messages, sampling.max_tokens)
        if dropped:
            log.info(
                "conversation longer than the context: its %d oldest messages left out", dropped
            )
        try:
            yield from engine.stream(msgs, sampling)
        except EngineError as exc:
            raise ValueError(str(exc)) from exc
