"""Importing a real conversation: masked, graded into the practice feedback card, stored in
History marked as real, and nothing at all stored when the file is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubric.feedback import Feedback
from rubric.grader import Grader
from rubric.render import render_feedback
from sim.practice import Practice
from storage import SessionStore
from tests.conftest import ROOT
from tests.test_grading_classifier import shared_grader
from training.history import list_history, progress, session_replay
from training.real_import import REAL_PERSONA_ID, import_file, masked_note
from training.transcripts import SpeakersUnclear, TranscriptError
from training.users import PermissionDenied, User
from web.history_view import history_table, replay_feedback_html, replay_html

SAMPLES = ROOT / "docs" / "samples"
ALICE = User(name="alice", role="trainee")
BOB = User(name="bob", role="trainee")
TESS = User(name="tess", role="trainer")
SECRETS = (
    "Sarah",
    "Jones",
    "Tom",
    "40318855",
    "LS6 2QT",
    "07700 900461",
    "sarah.jones@example.com",
)


@pytest.fixture(scope="module")
def grader(tmp_path_factory: pytest.TempPathFactory) -> Grader:
    return shared_grader(tmp_path_factory)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "s.sqlite3")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_a_text_transcript_is_masked_graded_and_stored_as_a_real_conversation(
    store: SessionStore, grader: Grader
) -> None:
    with pytest.raises(SpeakersUnclear):
        import_file(store, grader, "alice", sample("chat-broadband.txt"), "chat.txt")
    [c] = import_file(
        store, grader, "alice", sample("chat-broadband.txt"), "chat.txt", agents=["Tom"]
    )
    rec = store.get_session(c.session_id)
    assert rec.user_id == "alice" and rec.status == "ended"
    assert rec.persona_id == REAL_PERSONA_ID
    assert store.session_extras(rec.id)["real"] is True
    stored = json.dumps([t.text for t in rec.turns] + [rec.feedback, rec.model], ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in stored, secret
    for kept in ("INC-20250314-7781", "BB-558120", "£34.99", "17/03/2025"):
        assert kept in stored
    assert [t.role for t in rec.turns][:3] == ["agent", "customer", "agent"]
    assert rec.model["masked"] == {"name": 3, "account": 1, "postcode": 1, "phone": 1, "email": 1}
    assert c.masked_note.startswith("Masked before storing: 1 account, 1 email")
    # the same feedback as a practice session: a verdict per technique, quotes, guidance
    fb = Feedback.model_validate(rec.feedback)
    assert [t.id for t in fb.techniques] == grader.technique_ids
    assert len(fb.grades) == sum(1 for t in rec.turns if t.role == "agent")
    assert any(t.status == "used" and t.instances for t in fb.techniques)
    card = render_feedback(fb, [{"role": t.role, "text": t.text} for t in rec.turns])
    assert 'id="feedback-card"' in card and all(
        f'data-technique="{t}"' in card for t in grader.technique_ids
    )


def test_csv_and_jsonl_transcripts_import(store: SessionStore, grader: Grader) -> None:
    [csv_] = import_file(store, grader, None, sample("chat-refund.csv"), "chat-refund.csv")
    assert "4929" not in json.dumps([t["text"] for t in csv_.turns])
    assert csv_.masked == {"card": 1}
    assert any(
        m.id == "dismissive" and m.instances for m in csv_.feedback.markers
    )  # "not our problem"
    [js] = import_file(store, grader, None, sample("chats.jsonl"), "chats.jsonl")
    assert js.format == "jsonl" and js.turns[2]["text"].startswith("It's SP-44019283")
    assert "Priya" not in json.dumps(js.turns) and "M14 5RT" not in json.dumps(js.turns)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"Customer: is anyone there?\nCustomer: hello?\n",
        b"\x00\x01binary\xff\xfe" * 50,
        b"Sarah: hi\nTom: hello\n",  # speakers unknown until mapped
        b"Customer: too long\nAgent: yes\n" * 200_000,  # over 5 MB
        b'{"id": "ok", "turns": [{"role": "customer", "text": "a"}, {"role": "agent", "text": "b"}]}\n'
        b'{"id": "bad", "turns": [{"role": "customer", "text": "only me"}]}\n',
    ],
    ids=["empty", "no-agent", "binary", "unknown-speakers", "5mb", "one-bad-line"],
)
def test_bad_files_store_nothing(store: SessionStore, grader: Grader, data: bytes) -> None:
    before = store.session_index(all_users=True)
    with pytest.raises(TranscriptError):
        import_file(store, grader, "alice", data, "upload")
    assert store.session_index(all_users=True) == before == []


def test_history_marks_real_conversations_and_keeps_them_out_of_practice_progress(
    practice: Practice, grader: Grader
) -> None:
    store = practice.store
    [c] = import_file(store, grader, "alice", sample("chat-refund.csv"), "x.csv")
    [row] = list_history(store, ALICE, personas=practice.personas)
    assert (row.mode, row.persona_name, row.graded) == ("real", "Real conversation", True)
    table = history_table([row])[0]
    assert (table[3], table[5]) == ("Real conversation", "real")
    assert list_history(store, BOB, personas=practice.personas) == []
    data = progress(store, practice.personas, ALICE)
    assert data.points == [] and data.ungraded == 0
    rp = session_replay(store, practice.personas, ALICE, c.session_id)
    assert rp.mode == "real" and rp.transcript and rp.transcript[0].role == "customer"
    assert "Real conversation" in replay_html(rp)
    assert 'id="replay-feedback-card"' in replay_feedback_html(rp)
    assert session_replay(store, practice.personas, TESS, c.session_id).transcript
    with pytest.raises(PermissionDenied):
        session_replay(store, practice.personas, BOB, c.session_id)


def test_masked_note_counts_each_kind() -> None:
    from collections import Counter

    assert masked_note(Counter()) == "No personal data was found to mask."
    assert (
        masked_note(Counter({"phone": 2, "name": 1})) == "Masked before storing: 1 name, 2 phones."
    )
