"""Bad input end to end: Unicode, a locked database, and messages at the limits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from providers.fake import ScriptedChatModel
from sim.postprocess import clean_reply
from sim.practice import InputRejected, Practice
from storage import SessionStore, StoreError

PID = "irate_broadband_outage"
UNICODE = [
    "مرحبا، أنا آسف جداً لما حدث. ماذا حدث بالضبط؟",  # Arabic, right to left
    "I'm so sorry 😔🙏 — what happened with the router? 🛜",  # emoji incl. ZWJ-free symbols
    "Cafe\u0301 owner? Zoe\u0308 here, I understand: that's awful. What happened?",  # combining marks
    "שלום, I hear you. מה קרה?",  # mixed direction
]


@pytest.mark.parametrize("text", UNICODE)
def test_unicode_round_trips_through_the_session(
    practice: Practice, fake: ScriptedChatModel, text: str
) -> None:
    fake.enqueue([f"Fine: {text}"])
    s = practice.start(PID)
    list(s.respond(text))
    turns = practice.resume(s.id).record.turns
    assert turns[1].text == text.strip()
    assert turns[2].text == f"Fine: {text}"
    assert clean_reply(text) == text.strip()


def test_unicode_is_graded_without_error(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from rubric.classifier import ExemplarIndex, load_calibration_for
    from rubric.grader import Grader
    from rubric.techniques import load_rubric

    rubric = load_rubric()
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    grader = Grader(rubric, ExemplarIndex(rubric, client), load_calibration_for(rubric))
    turns = [{"role": "customer", "text": "My router 🛜 is dead!"}]
    for t in UNICODE:
        turns.append({"role": "agent", "text": t})
    graded = grader.grade_transcript("u", turns)
    assert len(graded.turns) == len(UNICODE)
    for g, t in zip(graded.turns, UNICODE, strict=True):
        for v in g.techniques.values():
            assert v.evidence is None or v.evidence in t  # quotes stay verbatim


def test_message_at_the_limit_is_accepted_and_one_over_is_refused(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    limit = practice.settings.max_message_chars
    fake.enqueue(["Okay."])
    s = practice.start(PID)
    list(s.respond("é" * limit))  # characters, not bytes
    with pytest.raises(InputRejected, match=f"limit is {limit}"):
        list(s.respond("é" * (limit + 1)))


def test_too_many_turns_is_a_clear_refusal(practice: Practice, fake: ScriptedChatModel) -> None:
    practice.settings.max_turns = 2
    fake.enqueue(["One?", "Two?"])
    s = practice.start(PID)
    list(s.respond("What happened?"))
    list(s.respond("When did it start?"))
    with pytest.raises(InputRejected, match="limit of 2 agent turns"):
        list(s.respond("And then?"))


def test_a_locked_database_is_a_clear_error_not_a_new_database(tmp_path: Path) -> None:
    db = tmp_path / "rapport.sqlite3"
    SessionStore(db).close()
    before = db.read_bytes()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")  # rollback journal: EXCLUSIVE blocks readers
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another program"):
            SessionStore(db, busy_timeout=0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert db.read_bytes()[:16] == before[:16] == b"SQLite format 3\x00"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite3"] == ["rapport.sqlite3"]
