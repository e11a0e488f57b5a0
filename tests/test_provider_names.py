"""Provider names have one source, the registry (``providers/registry.py``): the setting is a
plain string, and a name the registry doesn't know still fails early and plainly, with the
names it does know, before a command does anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from common.settings import Settings
from providers.registry import PROVIDERS, ProviderError, factory_for, get_chat_model

UNKNOWN = "Unknown provider 'bogus'; choose one of ['fake', 'local', 'openai']"


def test_the_setting_is_a_plain_string_and_the_registry_knows_the_names(tmp_path: Path) -> None:
    assert Settings.model_fields["provider"].annotation is str
    assert sorted(PROVIDERS) == ["fake", "local", "openai"]
    settings = Settings(provider="bogus", data_dir=tmp_path)
    with pytest.raises(ProviderError) as err:
        get_chat_model(settings)
    assert str(err.value) == UNKNOWN
    with pytest.raises(ProviderError, match="choose one of"):
        factory_for("Local")  # names are exact, as the Literal had them
    assert factory_for("fake") is PROVIDERS["fake"]


def _transcript(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    turns = [{"role": "customer", "text": "My bill doubled."}, {"role": "agent", "text": "Ok."}]
    path.write_text(json.dumps({"id": "a", "turns": turns}) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["grade", "{in}", "-o", "{out}"],
        ["serve", "--port", "0"],
        ["chat", "--persona", "confused_energy_bill"],
        ["simulate", "--persona", "confused_energy_bill", "--agent-script", "{script}"],
        ["personas", "list"],
        ["users", "list"],
    ],
)
def test_an_unknown_provider_stops_the_command_before_it_starts(
    tmp_path: Path, command: list[str]
) -> None:
    script = tmp_path / "script.txt"
    script.write_text("Hello, how can I help?\n", encoding="utf-8")
    places = {"{in}": str(_transcript(tmp_path)), "{out}": str(tmp_path / "out.jsonl")}
    places["{script}"] = str(script)
    args = [places.get(a, a) for a in command]
    env = {"RAPPORT_PROVIDER": "bogus", "RAPPORT_DATA_DIR": str(tmp_path / "data")}
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 2, res.output
    assert res.output.strip() == f"error: {UNKNOWN}"
    assert not (tmp_path / "data").exists()  # nothing was set up
    assert not (tmp_path / "out.jsonl").exists()
