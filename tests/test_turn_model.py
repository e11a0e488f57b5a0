"""The turn model: its data splits, a reproducible fit, ONNX agreeing with torch, the shipped
model on the grading path, and rubric extension without code."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from eval.data.splits import (
    LATE_LEFT_OUT,
    NEAR_DUPLICATE,
    TRAIN_ONLY_WRITERS,
    bucket,
    max_similarity,
)
from eval.data.splits import assign as assign_rows
from rubric.labelled import (
    TRANSFER_PATH,
    Example,
    exemplar_examples,
    label_ids,
    load_split,
    read_jsonl,
    row_example,
)
from rubric.techniques import Rubric, load_rubric
from rubric.turn_model import MODEL_DIR, ModelCard, TurnModel

ROOT = Path(__file__).resolve().parent.parent


# --- the data --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {s: load_split(s) for s in ("train", "dev", "test")}


def test_no_turn_is_in_two_splits(splits: dict[str, list[dict]]) -> None:
    seen_ids: dict[str, str] = {}
    seen_text: dict[str, str] = {}
    for name, rows in splits.items():
        for r in rows:
            assert r["split"] == name
            assert r["id"] not in seen_ids, (r["id"], seen_ids.get(r["id"]), name)
            key = " ".join(r["agent"].lower().split())
            assert key not in seen_text, (r["id"], name, seen_text.get(key))
            seen_ids[r["id"]] = name
            seen_text[key] = name
    gold_ids = {r["id"] for r in read_jsonl(ROOT / "eval" / "data" / "gold.jsonl")}
    assert not gold_ids & set(seen_ids)


def test_no_near_duplicate_across_train_and_test(splits: dict[str, list[dict]]) -> None:
    train = [r["agent"] for r in splits["train"]]
    for held in ("test", "dev"):
        sims = max_similarity([r["agent"] for r in splits[held]], train)
        worst = int(np.argmax(sims))
        assert sims[worst] < NEAR_DUPLICATE, (held, splits[held][worst]["agent"])


def test_splits_are_what_the_split_rule_gives(splits: dict[str, list[dict]]) -> None:
    """A row sits in its hashed split, or moved to train as a near-duplicate: never the
    other way, so no one can hand-pick the locked test."""
    for name, rows in splits.items():
        for r in rows:
            assert name == bucket(r["id"]) or name == "train", r["id"]


def test_late_writers_never_reach_the_locked_test(splits: dict[str, list[dict]]) -> None:
    """Rows written after the test figures were known (aimed at dev's misses) train only, and
    their wrong-fact paraphrases are left out (eval/data/turns/pending/README.md)."""
    assert not {r.get("writer") for r in splits["test"]} & TRAIN_ONLY_WRITERS
    late = [
        {
            "id": f"w7-{i:04d}",
            "writer": "w7",
            "agent": f"Refund {i} leaves us by bank transfer on day {i}.",
        }
        for i in range(40)
    ]
    early = [
        {"id": f"w1-{i:04d}", "writer": "w1", "agent": f"Which store was it, number {i}?"}
        for i in range(40)
    ]
    out = assign_rows(early + late)
    assert {r["id"] for r in out["test"]} == {r["id"] for r in assign_rows(early)["test"]}
    assert {r["id"] for r in late} == {r["id"] for r in out["train"] + out["dev"]} & {
        r["id"] for r in late
    }
    test_text = out["test"][0]["agent"]
    copy = {"id": "w8-0001", "writer": "w8", "agent": test_text.replace("?", "??")}
    wrong = {
        "id": "w9-0001",
        "writer": "w9",
        "agent": "So the heater broke on the ninth and the plumber never came?",
        "hard_case": "paraphrase_wrong_fact",
    }
    twin = dict(wrong, id="w9-0002", hard_case="correct_twin_of_wrong_paraphrase")
    twin["agent"] = "So the boiler failed on the eighth and the engineer never arrived?"
    again = assign_rows(early + late + [copy, wrong, twin])
    kept = {r["id"] for rs in again.values() for r in rs}
    assert "w8-0001" not in kept and "w9-0001" not in kept and "w9-0002" in kept
    assert LATE_LEFT_OUT.search("paraphrase_wrong_fact") and not LATE_LEFT_OUT.search(
        "correct_twin_of_wrong_paraphrase"
    )


def test_the_labelled_set_is_big_and_varied(splits: dict[str, list[dict]]) -> None:
    rows = [r for rs in splits.values() for r in rs]
    assert len(rows) >= 1000  # the issue asks for 1,500; see eval/README.md
    assert len(splits["test"]) >= 200
    assert len({r["industry"] for r in rows}) >= 20
    registers = {r["register"] for r in rows}
    assert {"terse_chat", "long_multipart", "non_native", "typos", "formal_email"} <= registers
    for lab in ("listen", "validate", "cooperate", "affirm", "dismissive"):
        share = sum(lab in r["labels"] for r in rows) / len(rows)
        assert 0.08 <= share <= 0.6, (lab, share)
    transfer = read_jsonl(TRANSFER_PATH)
    assert len(transfer) >= 200
    assert not {r["industry"] for r in transfer} <= {r["industry"] for r in rows}


def test_examples_mask_what_they_do_not_know() -> None:
    rubric = load_rubric()
    ids = label_ids(rubric)
    assert ids[: len(rubric.technique_ids)] == rubric.technique_ids
    ex = exemplar_examples(rubric)
    assert ex and all(sum(v is not None for v in e.labels.values()) == 1 for e in ex)
    target, mask = ex[0].target(ids)
    assert sum(mask) == 1 and len(target) == len(ids)
    row = {"context": [{"role": "customer", "text": "hi"}], "agent": "When?", "labels": ["listen"]}
    full = row_example(row, ids)
    assert full.labels["listen"] is True and full.labels["affirm"] is False
    part = row_example(row, ids, known=rubric.technique_ids)
    assert part.labels["dismissive"] is None


# --- a reproducible fit, and ONNX agreeing with torch ---------------------------------
TINY = [
    Example("My parcel never came.", "When did you order it?", {"listen": True, "affirm": False}),
    Example("It's late again.", "I'll refund the delivery fee now.", {"cooperate": True}),
    Example(
        "I'm so stressed.", "No wonder you're stressed after a week of this.", {"validate": True}
    ),
    Example("Two charges.", "So you were charged twice after cancelling?", {"affirm": True}),
    Example("Help.", "Anything else?", {"listen": False, "validate": False}),
    Example("Broken again.", "You should have read the manual.", {"dismissive": True}),
    Example("", "Policy is policy.", {"dismissive": True, "cooperate": False}),
    Example("Lost my card.", "Let's block it together right now.", {"cooperate": True}),
]


def _tiny_fit(out: Path) -> tuple[ModelCard, object]:
    from rubric.train import TrainConfig, fit_turn_model, train_net

    labels = label_ids(load_rubric())
    cfg = TrainConfig(epochs=1, batch_size=4, max_tokens=32, quantize=False)
    card = fit_turn_model(TINY, TINY[:4], labels, cfg, out, {}, log=lambda _m: None)
    net = train_net(TINY, labels, cfg, log=lambda _m: None)
    return card, net


def test_fit_is_reproducible_and_onnx_agrees_with_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from rubric.train import torch_probs

    card_a, net_a = _tiny_fit(tmp_path / "a")
    card_b, _ = _tiny_fit(tmp_path / "b")
    pairs = [(e.customer, e.agent) for e in TINY]
    probs_a = TurnModel(tmp_path / "a" / "turn_model.onnx", card_a).predict(pairs)
    probs_b = TurnModel(tmp_path / "b" / "turn_model.onnx", card_b).predict(pairs)
    assert np.array_equal(probs_a, probs_b)  # same data + seed: the same model, bit for bit
    assert card_a.calibration == card_b.calibration
    # the exported graph computes what the trained network computes
    torch_p = torch_probs(net_a, TINY)
    assert np.abs(torch_p - probs_a).max() < 1e-4
    # and a different seed gives a different model (the test can fail)
    from rubric.train import TrainConfig, train_net

    other = train_net(
        TINY, card_a.labels, TrainConfig(seed=99, epochs=1, batch_size=4), log=lambda _m: None
    )
    assert np.abs(torch_probs(other, TINY) - torch_p).max() > 1e-4


# --- the shipped model ----------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> TurnModel:
    return TurnModel.load(MODEL_DIR)


def test_shipped_model_matches_the_rubric_and_data(shipped: TurnModel) -> None:
    from rubric.classifier import rubric_hash
    from rubric.labelled import data_hash, gold_fit_rows
    from rubric.train import keeps_accuracy

    rubric = load_rubric()
    assert shipped.labels == label_ids(rubric)
    assert shipped.card.rubric_hash == rubric_hash(rubric)
    rows = load_split("train") + load_split("dev") + gold_fit_rows()
    assert shipped.card.data_hash == data_hash(rows, json.dumps(shipped.labels))
    assert set(shipped.card.calibration) == set(shipped.labels)
    # int8 was kept only where it was as accurate as the float model on dev
    f1 = shipped.card.dev_f1
    assert set(f1["float"]) == set(f1["int8"]) == set(shipped.labels)
    assert shipped.card.config.get("quantize") == keeps_accuracy(f1["int8"], f1["float"])


def test_shipped_model_reads_the_customer(shipped: TurnModel) -> None:
    """Affirm depends on what the customer said: on dev's affirm turns, the model finds the
    restatement far more often after the customer's own words than after another row's
    (a model blind to the customer would score both the same)."""
    from rubric.labelled import last_customer_text

    rows = load_split("dev")
    aff = [r for r in rows if "affirm" in r["labels"]]
    assert len(aff) >= 40
    j = shipped.labels.index("affirm")
    th = shipped.card.calibration["affirm"].threshold
    own = shipped.predict([(last_customer_text(r["context"]), r["agent"]) for r in aff])
    swapped = [rows[(i * 7 + 3) % len(rows)] for i in range(len(aff))]
    other = shipped.predict(
        [(last_customer_text(o["context"]), r["agent"]) for o, r in zip(swapped, aff, strict=True)]
    )
    assert (own[:, j] >= th).mean() - (other[:, j] >= th).mean() >= 0.1


def test_predictions_do_not_depend_on_batch_or_cache(shipped: TurnModel) -> None:
    pairs = [("My bill doubled.", "That's a shock, no wonder you called."), ("", "Anything else?")]
    together = shipped.predict(pairs)
    shipped.cache_clear()
    alone = np.vstack([shipped.predict([p]) for p in reversed(pairs)])[::-1]
    assert np.array_equal(together, alone)


# --- rubric extension without code ----------------------------------------------------
def _rubric_with_new_technique() -> Rubric:
    data = load_rubric().model_dump()
    new = dict(data["techniques"][0])
    new.update(
        id="use_name",
        label="Uses the customer's name",
        positive=[
            "Thanks, Priya, I'll sort that now.",
            "Okay Tom, let's fix it.",
            "Right, Mrs Okafor, I have your file open.",
            "Good question, Sam.",
            "Leave it with me, Daniel.",
        ],
        negative=[
            "Thanks for waiting.",
            "Let's fix it.",
            "I have your file open.",
            "Good question.",
            "Leave it with me.",
        ],
    )
    data["techniques"].insert(4, new)
    return Rubric.model_validate(data)


def test_a_new_technique_is_learned_from_its_exemplars_and_not_scored_until_fit() -> None:
    from rubric.grader import Grader, default_turn_model

    rubric = _rubric_with_new_technique()
    assert "use_name" in label_ids(rubric)
    ex = [e for e in exemplar_examples(rubric) if "use_name" in e.labels]
    assert len(ex) == 10 and all(list(e.labels) == ["use_name"] for e in ex)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = default_turn_model(rubric)
    assert any("older than rubric" in str(w.message) for w in caught)
    assert model is not None
    grader = Grader(rubric, index=None, calibration=None, turn_model=model)  # type: ignore[arg-type]
    verdicts, _ = grader.classify_turn("Thanks, Priya, I'll sort that now.", "Can you help?")
    assert verdicts["use_name"].used is None
    assert "rapport rubric fit" in (verdicts["use_name"].note or "")
    assert verdicts["cooperate"].used is not None
