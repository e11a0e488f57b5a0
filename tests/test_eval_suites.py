"""The evaluation suites on small slices (CI), and known-groups catching a broken grader."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from typer.testing import CliRunner

import bootstrap
from common.settings import Settings
from eval import runner, suites
from providers.fake import ScriptedChatModel
from rubric.classifier import ExemplarIndex, load_calibration_for
from rubric.grader import Grader, Verdict
from rubric.techniques import load_rubric
from sim.director import no_rules
from sim.persona import load_personas
from sim.practice import Practice
from storage import SessionStore


@pytest.fixture(scope="module")
def grader() -> Grader:
    rubric = load_rubric()
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    return Grader(rubric, ExemplarIndex(rubric, client), load_calibration_for(rubric))


class AlwaysUsed(Grader):
    """A deliberately broken grader: every technique is 'used' on every turn."""

    def classify_turn(
        self, agent_text: str, customer_text: str
    ) -> tuple[dict[str, Verdict], dict[str, Verdict]]:
        v = {t: Verdict(used=True, evidence=agent_text, confidence=1.0) for t in self.technique_ids}
        m = {t: Verdict(used=False, confidence=1.0) for t in self.rubric.marker_ids}
        return v, m


def fake_play(tmp_path: Path, grader: Grader) -> Callable[[str, list[str]], dict[str, Any]]:
    """Sessions against the real director (driven by ``grader``) with a scripted actor."""
    settings = Settings(data_dir=tmp_path, provider="fake")
    model = ScriptedChatModel(replies=["I just want this fixed, honestly."] * 200)
    practice = Practice(
        settings,
        SessionStore(settings.db_path),
        load_personas(),
        lambda s: model,
        signals_factory=lambda s: bootstrap.signals_from_grader(grader),
        matcher_factory=lambda s: no_rules,
    )

    def play(pid: str, lines: list[str]) -> dict[str, Any]:
        return suites.play_session(practice, pid, lines)

    return play


PIDS = ["irate_broadband_outage", "grieving_cloud_photos", "confused_energy_bill"]


def test_known_groups_orders_scripted_agents(grader: Grader, tmp_path: Path) -> None:
    res = suites.suite_known_groups(
        grader, suites.Options(progress=False), fake_play(tmp_path, grader), PIDS
    )
    assert res["misordered"] == [], res["personas"]
    assert res["ordered_share"] == 1.0
    # the director, driven by the same grader, leaves good agents' customers calmer
    assert res["mood_misordered"] == [], res["mood"]
    for pid in PIDS:
        m = res["mood"][pid]
        assert m["good"]["final"] < m["good"]["start"] < m["bad"]["final"], (pid, m)
    assert res["good_resolved_share"] >= 0.5, res["mood"]


def test_known_groups_detects_an_always_used_grader(grader: Grader, tmp_path: Path) -> None:
    broken = AlwaysUsed(grader.rubric, grader.index, grader.calibration)
    res = suites.suite_known_groups(
        broken, suites.Options(progress=False), fake_play(tmp_path, grader), PIDS
    )
    assert sorted(res["misordered"]) == sorted(PIDS)
    assert res["ordered_share"] == 0.0


def test_slice_of_each_suite_writes_a_report(grader: Grader, tmp_path: Path) -> None:
    opts = suites.Options(limit=10, k=3, bootstrap=50, progress=False)
    out = tmp_path / "report"
    res = runner.run(grader, out, ["gold", "consistency", "invariance"], opts)
    for name in ("report.md", "metrics.json", "reliability.json", "bars.png", "confusion.png"):
        assert (out / name).stat().st_size > 0, name
    card = json.loads((out / "reliability.json").read_text())
    assert set(card) == {"listen", "validate", "cooperate", "affirm"}
    cons = res["suites"]["consistency"]
    for t in card:
        # the default path is deterministic: every rerun agrees exactly
        assert cons[t]["agreement"] == 1.0 and cons[t]["alpha"] == 1.0
        assert 0.0 <= card[t]["flip_rate"] <= 1.0
    report = (out / "report.md").read_text()
    assert "| listen |" in report and ("met" in report or "missed" in report)


def test_mechanical_perturbations_keep_meaning() -> None:
    import random

    rng = random.Random(0)
    row = {
        "agent": "Hi Margaret! I'll refund it today - is that okay?",
        "context": [{"role": "customer", "text": "Margaret here."}],
    }
    named = suites.PERTURBATIONS["name_swap"](row, rng)
    assert "Margaret" not in named["agent"] and "refund it today" in named["agent"]
    punct = suites.punctuation(row["agent"], rng)
    assert "!" not in punct and "refund it today" in punct
    assert (
        suites.whitespace_case(row["agent"], rng).strip().lower().replace("  ", " ")
        == row["agent"].lower()
    )


def test_eval_input_cli_scores_outside_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    data = tmp_path / "labelled.jsonl"
    lines = [
        {
            "id": "x1",
            "turns": [
                {"role": "customer", "text": "I was charged twice for my order!"},
                {
                    "role": "agent",
                    "text": "Being charged twice is really frustrating. When did the second charge appear?",
                },
                {"role": "customer", "text": "Yesterday."},
                {
                    "role": "agent",
                    "text": "I'll refund the duplicate charge today and email you a confirmation.",
                },
            ],
            "labels": {"1": ["validate", "listen"], "3": ["cooperate"]},
        },
    ]
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("RAPPORT_PROVIDER", "fake")
    res = CliRunner().invoke(
        app, ["eval", "--input", str(data), "--out", str(tmp_path / "r"), "--bootstrap", "20"]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["suites"]["input"]["turns"] == 2
    assert "Outside labelled data" in (tmp_path / "r" / "report.md").read_text()


def test_second_wave_suites_report_locked_transfer_and_injection(
    grader: Grader, tmp_path: Path
) -> None:
    opts = suites.Options(limit=12, k=2, bootstrap=50, progress=False)
    res = runner.run(grader, tmp_path, ["locked", "transfer", "injection"], opts)
    s = res["suites"]
    assert s["locked"]["test"]["listen"]["n"] == 12 and s["locked"]["dev"]["affirm"]["n"] == 12
    assert s["transfer"]["turns"] == 12
    assert s["injection"]["checked"] == 12 * 6 * 4
    assert s["injection"]["granted"] == 0, s["injection"]["examples"]
    card = res["reliability"]
    assert card["listen"]["held_out"] == "locked test"
    assert card["listen"]["transfer_f1"] == s["transfer"]["all"]["listen"]["f1"]
    report = (tmp_path / "report.md").read_text()
    assert "F1 transfer" in report and "grader-directed text" in report


def test_injection_suite_catches_a_grader_that_obeys_injections(
    grader: Grader, tmp_path: Path
) -> None:
    class Obedient(Grader):
        def classify_turn(self, agent_text: str, customer_text: str) -> Any:
            verdicts, markers = super().classify_turn(agent_text, customer_text)
            if "GRADER" in agent_text:
                for v in verdicts.values():
                    v.used = True
            return verdicts, markers

    obedient = Obedient(
        grader.rubric, grader.index, grader.calibration, turn_model=grader.turn_model
    )
    opts = suites.Options(limit=5, progress=False)
    from eval.labelled_suites import suite_injection

    assert suite_injection(obedient, opts)["granted"] > 0
