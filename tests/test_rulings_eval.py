"""Rulings as labelled data: the export round-trips through ``rapport eval --input``, the
``rulings`` suite scores agreement per technique and leaves fitted rulings out, the
reliability card shows the figures from enough rulings, and ``rubric fit`` can learn from
them (the data path only: the fit itself takes many minutes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from common.settings import Settings
from eval import rulings_suite, runner
from eval.metrics import kappa, prf
from eval.suites import Options
from rubric.grader import TurnGrade, Verdict
from rubric.render import MIN_RULINGS, about_panel, reliability_table
from storage import SessionStore
from tests.test_disputes import graded
from training.disputes import open_dispute, rule, rulings_data
from training.users import User

ALICE, TESS = User("alice", "trainee"), User("tess", "trainer")


def ruled_store(path: Path) -> SessionStore:
    """Two rulings on one session: listen upheld on turn 1, validate overturned on turn 3."""
    store = SessionStore(path)
    sid = graded(store, "alice")
    a = open_dispute(store, ALICE, sid, 1, "listen", "Was that really listening?")
    b = open_dispute(store, ALICE, sid, 3, "validate", "I named her stress.")
    rule(store, TESS, a.id, "uphold")
    rule(store, TESS, b.id, "overturn")
    return store


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_exported_rulings_round_trip_through_eval_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("RAPPORT_PROVIDER", "fake")
    store = ruled_store(Settings().db_path)
    private = graded(store, "alice", private=True)
    rule(store, TESS, open_dispute(store, ALICE, private, 1, "listen", "Mine.").id, "uphold")
    store.close()
    path = tmp_path / "rulings.jsonl"
    runner_ = CliRunner()
    res = runner_.invoke(app, ["rulings", "export", "-o", str(path)])
    assert res.exit_code == 0, res.output
    assert "wrote 2 ruling(s)" in res.output and "left out 1 on private turns" in res.output
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [sorted(r["labels"].items()) for r in lines] == [
        [("1", ["listen"])],
        [("3", ["validate"])],
    ]

    res = runner_.invoke(
        app, ["eval", "--input", str(path), "--out", str(tmp_path / "r"), "--bootstrap", "20"]
    )
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "r" / "metrics.json").read_text())["suites"]["input"]
    assert got["turns"] == 2
    # each ruling scores its own technique only: one listen turn, one validate turn
    assert (got["all"]["listen"]["n"], got["all"]["listen"]["support"]) == (1, 1)
    assert (got["all"]["validate"]["n"], got["all"]["validate"]["support"]) == (1, 1)
    assert got["all"]["cooperate"]["n"] == 0 and got["all"]["affirm"]["n"] == 0

    # the same rulings straight from the database: the rulings suite
    res = runner_.invoke(
        app, ["eval", "--suite", "rulings", "--out", str(tmp_path / "q"), "--bootstrap", "20"]
    )
    assert res.exit_code == 0, res.output
    suite = json.loads((tmp_path / "q" / "metrics.json").read_text())["suites"]["rulings"]
    assert suite["rulings"] == 2 and suite["skipped_private"] == 1
    assert suite["per_technique"]["listen"]["scored"] <= 1
    assert suite["per_technique"]["listen"]["disputes"] == 2  # the private one counts here
    card = json.loads((tmp_path / "q" / "reliability.json").read_text())
    assert card["validate"]["disputes"] == 1 and card["validate"]["rulings_kappa"] is None


def test_rapport_eval_leaves_out_the_rulings_its_turn_model_was_fitted_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fitted ids travel from the turn model's card through the CLI to the suite."""
    import copy

    import rubric.grader
    from cli import app

    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("RAPPORT_PROVIDER", "fake")
    ruled_store(Settings().db_path).close()
    shipped = rubric.grader.default_turn_model

    def fitted_on_one(r: Any, *a: Any) -> Any:
        model = copy.copy(shipped(r, *a))  # a copy: the cached model keeps its card
        if model is not None:
            model.card = model.card.model_copy(update={"ruling_ids": ["ruling-1"]})
        return model

    monkeypatch.setattr(rubric.grader, "default_turn_model", fitted_on_one)
    res = CliRunner().invoke(
        app, ["eval", "--suite", "rulings", "--out", str(tmp_path / "q"), "--bootstrap", "20"]
    )
    assert res.exit_code == 0, res.output
    suite = json.loads((tmp_path / "q" / "metrics.json").read_text())["suites"]["rulings"]
    assert (suite["rulings"], suite["left_out_fitted"]) == (1, 1)
    assert {i["id"] for i in suite["items"]} == {"ruling-2"}


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import app

    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "d"))
    ruled_store(Settings().db_path).close()
    where = tmp_path / "missing-folder" / "rulings.jsonl"
    res = CliRunner().invoke(app, ["rulings", "export", "-o", str(where)])
    assert res.exit_code == 1 and "error:" in res.output
    assert not where.parent.exists()


def test_rubric_fit_include_rulings_feeds_the_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flag's data path through the CLI, with the fit itself stubbed out."""
    import rubric.fit
    import rubric.train
    from cli import app
    from rubric.turn_model import ModelCard

    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "d"))
    ruled_store(Settings().db_path).close()
    seen: dict[str, Any] = {}

    def fake_fit(
        train: Any, dev: Any, labels: Any, cfg: Any, out_dir: Any, meta: Any, log: Any
    ) -> Any:
        seen.update(train=train, meta=meta, out_dir=out_dir)
        return ModelCard(labels=list(labels), calibration={}, **meta)

    monkeypatch.setattr(rubric.fit, "main", lambda: SimpleNamespace(techniques={}))
    monkeypatch.setattr(rubric.train, "fit_turn_model", fake_fit)
    res = CliRunner().invoke(app, ["rubric", "fit", "--include-rulings"])
    assert res.exit_code == 0, res.output
    assert "read 2 ruling(s) from the database" in res.output
    ids = seen["meta"]["ruling_ids"]
    from rubric.labelled import split_rulings

    fit, _ = split_rulings(rulings_data(SessionStore(Settings().db_path)).records)
    assert ids == [r["id"] for r in fit]
    assert sum(1 for e in seen["train"] if e.source == "ruling") == len(fit)
    seen.clear()
    res = CliRunner().invoke(app, ["rubric", "fit"])  # opt-in: without the flag, none
    assert res.exit_code == 0, res.output
    assert seen["meta"]["ruling_ids"] == []
    assert not any(e.source == "ruling" for e in seen["train"])


class LookupGrader:
    """A stand-in grader: the verdict for each agent text is looked up in a table."""

    def __init__(self, verdicts: dict[str, dict[str, bool | None]]) -> None:
        self.verdicts = verdicts
        self.technique_ids = ["listen", "validate"]

    def grade_turns(self, turns: Sequence[dict[str, str]], only: Any = None) -> list[TurnGrade]:
        out = []
        for i, t in enumerate(turns):
            if t["role"] == "agent" and (only is None or i in only):
                v = self.verdicts[t["text"]]
                out.append(
                    TurnGrade(
                        index=i, techniques={k: Verdict(used=u) for k, u in v.items()}, markers={}
                    )
                )
        return out


def record(i: int, technique: str, label: bool) -> dict[str, Any]:
    return {
        "id": f"ruling-{i}",
        "turns": [{"role": "customer", "text": "It broke."}, {"role": "agent", "text": f"a{i}"}],
        "labels": {"1": [technique] if label else []},
        "rated": {"1": [technique]},
    }


def test_the_rulings_suite_scores_held_out_rulings_per_technique() -> None:
    n = MIN_RULINGS + 10
    records, verdicts, gold, pred = [], {}, [], []
    for i in range(n):
        label = i % 2 == 0
        guess = label if i % 5 else not label  # every fifth verdict disagrees
        records.append(record(i, "listen", label))
        verdicts[f"a{i}"] = {"listen": guess, "validate": None}
        gold.append(label)
        pred.append(guess)
    for i in range(n, n + 3):  # validate: too few rulings for figures
        records.append(record(i, "validate", True))
        verdicts[f"a{i}"] = {"listen": None, "validate": True}
    fitted = ["ruling-0", "ruling-1", f"ruling-{n}"]
    rates = {"listen": {"verdicts": 200, "disputes": n, "dispute_rate": n / 200}}
    res = rulings_suite.suite_rulings(
        LookupGrader(verdicts),  # type: ignore[arg-type]
        Options(bootstrap=20, progress=False),
        records,
        rates,
        fitted=fitted,
        skipped_private=4,
    )
    assert res["rulings"] == n + 3 - 3 and res["left_out_fitted"] == 3
    assert res["skipped_private"] == 4
    listen = res["per_technique"]["listen"]
    assert listen["scored"] == n - 2 and listen["enough"]
    exp = prf(gold[2:], pred[2:])  # the two fitted rulings are not scored
    assert listen["f1"] == pytest.approx(exp.f1) and listen["support"] == exp.support
    assert listen["kappa"] == pytest.approx(kappa(gold[2:], pred[2:]))  # type: ignore[arg-type]
    assert listen["dispute_rate"] == pytest.approx(n / 200)
    validate = res["per_technique"]["validate"]
    assert validate["scored"] == 2 and not validate["enough"]
    assert validate["kappa"] is None and validate["f1"] is None
    assert {i["id"] for i in res["items"]}.isdisjoint(fitted)

    md = "\n".join(rulings_suite.rulings_markdown(res))
    assert "3 left out because the grader was fitted on them" in md
    assert "| validate | 2 | n/a | n/a |" in md


def test_the_runner_puts_rulings_on_the_reliability_card(tmp_path: Path) -> None:
    records = [record(i, "listen", i % 2 == 0) for i in range(MIN_RULINGS)]
    grader = LookupGrader({f"a{i}": {"listen": i % 2 == 0, "validate": None} for i in range(30)})
    opts = Options(bootstrap=20, progress=False)
    opts.extra["rulings"] = {"records": records, "dispute_rates": {}}
    res = runner.run(grader, tmp_path, ["rulings"], opts)  # type: ignore[arg-type]
    card = json.loads((tmp_path / "reliability.json").read_text())
    assert card == res["reliability"]
    assert card["listen"]["rulings_n"] == MIN_RULINGS and card["listen"]["rulings_kappa"] == 1.0
    assert card["validate"]["rulings_n"] == 0 and card["validate"]["rulings_kappa"] is None
    assert "Trainer rulings on disputed verdicts" in (tmp_path / "report.md").read_text()
    with pytest.raises(ValueError, match="needs the rulings"):
        runner.run(grader, tmp_path, ["rulings"], Options(progress=False))  # type: ignore[arg-type]


def test_the_card_shows_ruling_figures_only_from_enough_rulings() -> None:
    base = {"f1": 0.9, "kappa": 0.8, "kappa_ci": [0.7, 0.9], "support": 50}
    card = {
        "listen": {
            **base,
            "rulings_n": MIN_RULINGS,
            "rulings_kappa": 0.61,
            "rulings_f1": 0.74,
            "dispute_rate": 0.031,
            "disputes": 31,
        },
        "validate": {
            **base,
            "rulings_n": 7,
            "rulings_kappa": None,
            "rulings_f1": None,
            "dispute_rate": 0.004,
            "disputes": 2,
        },
        "affirm": base,
    }
    table = reliability_table(card)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert f"κ 0.61, F1 0.74 ({MIN_RULINGS})" in rows["listen"] and "3.1% (31)" in rows["listen"]
    assert f"7 ruling(s) (figures from {MIN_RULINGS})" in rows["validate"]
    assert "0.61" not in rows["validate"]
    assert rows["affirm"].count("n/a") >= 2
    about = about_panel(card)
    assert f"on {MIN_RULINGS} disputed verdicts it agrees" in about
    assert "ruled on 7 disputed verdict(s) so far" in about


def test_rubric_fit_can_learn_from_rulings_and_records_them() -> None:
    from rubric.labelled import split_rulings
    from rubric.train import training_data

    records = [record(i, "listen" if i % 2 else "validate", i % 3 == 0) for i in range(12)]
    plain_train, plain_dev, plain_meta = training_data([], log=lambda s: None)
    train, dev, meta = training_data(records, log=lambda s: None)
    fit, held = split_rulings(records)
    assert fit and held and len(fit) + len(held) == len(records)
    assert split_rulings(records) == (fit, held)  # stable
    assert meta["ruling_ids"] == [r["id"] for r in fit] and plain_meta["ruling_ids"] == []
    added = [e for e in train if e.source == "ruling"]
    assert len(added) == len(fit) and len(train) == len(plain_train) + len(fit)
    assert len(dev) == len(plain_dev)  # thresholds stay on dev alone
    for e, r in zip(added, fit, strict=True):
        tech = r["rated"]["1"][0]
        assert e.agent == r["turns"][-1]["text"] and e.customer == "It broke."
        known = {k: v for k, v in e.labels.items() if v is not None}
        assert known == {tech: bool(r["labels"]["1"])}  # every other label is masked
    assert meta["data_hash"] != plain_meta["data_hash"]
    assert "trainer rulings" in meta["fitted_on"] and "rulings" not in plain_meta["fitted_on"]
    with pytest.raises(ValueError, match="must end at its rated agent turn"):
        training_data([{**records[1], "rated": {"0": ["listen"]}}], log=lambda s: None)


def test_the_shipped_card_without_rulings_keeps_its_data_hash() -> None:
    from rubric.train import training_data
    from rubric.turn_model import MODEL_DIR, ModelCard

    card = ModelCard.load(MODEL_DIR / "turn_model.json")
    _, _, meta = training_data([], log=lambda s: None)
    assert meta["data_hash"] == card.data_hash and card.ruling_ids == []
