"""One persona folder for everything: a persona made in the Studio (saved and published in
``RAPPORT_PERSONA_DIR``) is seen by ``rapport personas list/check`` and ``rapport simulate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from common.settings import Settings
from sim.persona import PERSONA_DIR, library_dir
from training.persona_repo import PersonaRepo

NEW = "studio_made_bill"
CALM = "I just want this sorted."


def test_library_dir_is_the_setting_else_the_shipped_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAPPORT_PERSONA_DIR", raising=False)
    assert library_dir(Settings()) == PERSONA_DIR
    assert library_dir(Settings(persona_dir=tmp_path)) == tmp_path
    monkeypatch.setenv("RAPPORT_PERSONA_DIR", str(tmp_path))
    assert library_dir() == tmp_path


@pytest.fixture
def studio_env(tmp_path: Path) -> dict[str, str]:
    """A library holding one persona that exists only because the Studio saved and published it."""
    library = tmp_path / "library"
    repo = PersonaRepo(library)
    text = (PERSONA_DIR / "confused_energy_bill.yaml").read_text(encoding="utf-8")
    info = repo.save_draft(NEW, text, "trainer", base_sha=None, note="made in the Studio")
    repo.publish(NEW, info.version, "trainer", check_passed=False, override_reason="test")
    assert (library / f"{NEW}.yaml").exists() and not (PERSONA_DIR / f"{NEW}.yaml").exists()
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([CALM] * 80))
    return {
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(replies),
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
        "RAPPORT_PERSONA_DIR": str(library),
    }


def test_personas_list_and_validate_read_the_studio_library(studio_env: dict[str, str]) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["personas", "list"], env=studio_env)
    assert res.exit_code == 0, res.output
    assert [ln.split()[0] for ln in res.output.splitlines()] == [NEW]
    res = runner.invoke(app, ["personas", "validate"], env=studio_env)
    assert res.exit_code == 0 and "1 persona file(s) valid" in res.output, res.output


def test_personas_check_sees_a_studio_made_persona(studio_env: dict[str, str]) -> None:
    res = CliRunner().invoke(app, ["personas", "check", NEW, "--json"], env=studio_env)
    assert res.exit_code in (0, 1), res.output  # 2 would be "no persona"
    data = json.loads(res.output)
    assert data["format"] == "rapport.check/1" and data["persona_id"] == NEW


def test_simulate_sees_a_studio_made_persona(studio_env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "agent.txt"
    script.write_text("I'm sorry about the bill. Can you tell me what happened?\n")
    res = CliRunner().invoke(
        app,
        ["simulate", "--persona", NEW, "--agent-script", str(script), "--seed", "3", "--json"],
        env=studio_env,
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["format"] == "rapport.simulate/1" and out["persona"] == NEW
    assert len(out["turns"]) == 1
