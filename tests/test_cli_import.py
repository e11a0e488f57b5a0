"""``rapport import``: a real conversation from a file is masked, graded, stored marked real
and its feedback printed; ``--draft-persona`` writes a draft persona that validates. Run
through the command line with the fake model provider and a fresh data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from common.settings import Settings
from sim.persona import PERSONA_DIR, load_persona_file
from storage import SessionStore, open_store
from tests.conftest import ROOT
from training.persona_draft import personal_data_in
from training.real_import import is_real

SAMPLES = ROOT / "docs" / "samples"
BROADBAND = SAMPLES / "chat-broadband.txt"
runner = CliRunner()
# personal data in the broadband sample that must never reach the store or the output
PERSONAL = ("Sarah", "07700 900461", "sarah.jones@example.com", "LS6 2QT", "40318855")
# near-misses in the same sample that must stay as they are
KEPT = ("BB-558120", "INC-20250314-7781", "£34.99", "17/03/2025")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(d))
    monkeypatch.setenv("RAPPORT_PROVIDER", "fake")
    monkeypatch.delenv("RAPPORT_PERSONA_DIR", raising=False)
    return d


def stored(data_dir: Path) -> SessionStore:
    return open_store(Settings(data_dir=data_dir))


def session_count(data_dir: Path) -> int:
    store = stored(data_dir)
    try:
        return len(store.list_sessions())
    finally:
        store.close()


def test_import_masks_grades_and_stores_a_real_conversation(data_dir: Path) -> None:
    res = runner.invoke(app, ["import", str(BROADBAND), "--speaker", "Tom=agent", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    (conv,) = out["conversations"]
    assert conv["format"] == "text"
    assert {"email", "phone", "postcode"} <= set(conv["masked"])
    store = stored(data_dir)
    try:
        rec = store.get_session(conv["session_id"])
        assert is_real(store, rec.id)
        text = "\n".join(t.text for t in rec.turns)
        assert [t.role for t in rec.turns][:2] == ["agent", "customer"]
        for secret in PERSONAL:
            assert secret not in text and secret not in res.stdout
        for kept in KEPT:
            assert kept in text
        # what was printed is what was stored with the session
        assert rec.feedback is not None
        assert conv["summary"] == rec.feedback["summary"]
        assert conv["techniques"] == {t["id"]: t["status"] for t in rec.feedback["techniques"]}
    finally:
        store.close()


def test_the_plain_output_is_the_feedback_card_in_text(data_dir: Path) -> None:
    res = runner.invoke(app, ["import", str(BROADBAND), "--speaker", "Tom=agent"])
    assert res.exit_code == 0, res.output
    store = stored(data_dir)
    try:
        (rec,) = store.list_sessions()
        fb = store.get_session(rec.id).feedback
    finally:
        store.close()
    assert fb is not None
    assert fb["summary"] in res.stdout
    for t in fb["techniques"]:
        assert f"{t['label']}: {t['status'].replace('_', ' ')}" in res.stdout
        for i in t["instances"]:
            assert f'turn {i["turn"]}: "{i["quote"]}"' in res.stdout


def test_names_as_speakers_need_a_mapping_and_nothing_is_stored_without_it(
    data_dir: Path,
) -> None:
    res = runner.invoke(app, ["import", str(BROADBAND)])
    assert res.exit_code == 1
    assert "Tom" in res.output and "--speaker NAME=agent" in res.output
    assert session_count(data_dir) == 0


def test_naming_only_the_customer_makes_the_other_speaker_the_agent(data_dir: Path) -> None:
    res = runner.invoke(
        app, ["import", str(BROADBAND), "--speaker", "Sarah Jones=customer", "--json"]
    )
    assert res.exit_code == 0, res.output
    (conv,) = json.loads(res.stdout)["conversations"]
    store = stored(data_dir)
    try:
        turns = store.get_session(conv["session_id"]).turns
    finally:
        store.close()
    assert turns[0].role == "agent" and "Brightline Broadband" in turns[0].text
    assert turns[1].role == "customer" and "internet has been down" in turns[1].text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--speaker", "Tom"], "NAME=agent or NAME=customer"),
        (["--speaker", "Tom=manager"], "NAME=agent or NAME=customer"),
        (["--speaker", "Bob=agent"], "No speaker called bob"),
        (["--user", "nobody"], "no account 'nobody'"),
    ],
)
def test_bad_options_say_why_and_store_nothing(
    data_dir: Path, args: list[str], message: str
) -> None:
    res = runner.invoke(app, ["import", str(BROADBAND), *args])
    assert res.exit_code != 0
    assert message.lower() in res.output.lower()
    assert session_count(data_dir) == 0


def test_bad_files_are_refused_with_a_reason(data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    for path in (empty, binary, tmp_path / "missing.txt"):
        res = runner.invoke(app, ["import", str(path)])
        assert res.exit_code != 0, path
        assert res.output.startswith("error:"), res.output
    assert session_count(data_dir) == 0


def test_every_conversation_of_a_jsonl_file_is_imported(data_dir: Path) -> None:
    path = SAMPLES / "chats.jsonl"
    n = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    res = runner.invoke(app, ["import", str(path), "--json"])
    assert res.exit_code == 0, res.output
    ids = [c["session_id"] for c in json.loads(res.stdout)["conversations"]]
    assert len(ids) == n == session_count(data_dir)


def test_draft_persona_writes_a_valid_persona_without_personal_data(
    data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sarah_draft.yaml"
    res = runner.invoke(
        app, ["import", str(BROADBAND), "--speaker", "Tom=agent", "--draft-persona", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert f"Draft persona written to {out}" in res.stdout
    persona = load_persona_file(out)  # the persona schema, as the library loads it
    assert persona.scenario.company == "Brightline Broadband"
    text = out.read_text(encoding="utf-8")
    assert personal_data_in(persona.model_dump(mode="json")) == []
    for secret in PERSONAL:
        assert secret not in text
    check = runner.invoke(app, ["personas", "validate", str(out)])
    assert check.exit_code == 0, check.output


def test_a_draft_is_never_written_into_the_library(data_dir: Path) -> None:
    target = PERSONA_DIR / "drafted_from_cli.yaml"
    res = runner.invoke(app, ["import", str(BROADBAND), "--draft-persona", str(target)])
    assert res.exit_code == 2
    assert "outside the persona library" in res.output
    assert not target.exists()
    assert session_count(data_dir) == 0
