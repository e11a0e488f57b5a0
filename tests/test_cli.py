from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli import app
from sim.persona import PERSONA_DIR

runner = CliRunner()


def test_personas_list_shows_the_library() -> None:
    res = runner.invoke(app, ["personas", "list"])
    assert res.exit_code == 0, res.output
    assert "irate_broadband_outage" in res.output and "grieving" in res.output


def test_personas_validate_ok() -> None:
    res = runner.invoke(app, ["personas", "validate"])
    assert res.exit_code == 0, res.output
    assert "valid" in res.output


def test_personas_validate_reports_file_field_problem(tmp_path: Path) -> None:
    good = (PERSONA_DIR / "confused_energy_bill.yaml").read_text()
    bad = tmp_path / "bad_persona.yaml"
    bad.write_text(good.replace("emotional_baseline: 4", "emotional_baseline: loud"))
    res = runner.invoke(
        app, ["personas", "validate", str(bad), str(PERSONA_DIR / "confused_energy_bill.yaml")]
    )
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"{bad}: emotional_baseline: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_chat_runs_a_terminal_conversation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "script.json"
    script.write_text('["It was four hundred and eighty pounds!"]')
    monkeypatch.setenv("RAPPORT_PROVIDER", "fake")
    monkeypatch.setenv("RAPPORT_FAKE_SCRIPT", str(script))
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "d"))
    res = runner.invoke(
        app, ["chat", "--persona", "confused_energy_bill"], input="How much was the bill?\n/end\n"
    )
    assert res.exit_code == 0, res.output
    assert "Customer: It was four hundred and eighty pounds!" in res.output
    assert "Session " in res.output and "saved" in res.output
