from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.fake import ScriptedChatModel
from sim.guard import detect_probe, in_character_line
from sim.practice import InputRejected, Practice
from sim.simulator import SimulatorError
from storage import SessionStore, StoreError

PID = "irate_broadband_outage"


def test_turns_are_committed_and_session_resumes(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    fake.enqueue(["It went down at nine this morning!", "Fine. The account is 4417."])
    s = practice.start(PID)
    assert (
        "".join(list(s.respond("When did it go down?"))[-1:])
        == "It went down at nine this morning!"
    )
    list(s.respond("Could you give me your account number?"))
    # a second, independent store sees everything (committed, not cached)
    other = SessionStore(practice.settings.db_path)
    rec = other.get_session(s.id)
    assert [t.role for t in rec.turns] == ["customer", "agent", "customer", "agent", "customer"]
    assert rec.turns[0].text == practice.personas[PID].opening_line
    assert rec.turns[-1].text == "Fine. The account is 4417."
    assert rec.persona_version == practice.personas[PID].version
    assert rec.model["provider"] == "fake"
    other.close()
    resumed = practice.resume(s.id)
    assert [m.text for m in resumed.history()] == [t.text for t in rec.turns]


def test_model_sees_history_in_prompt(practice: Practice, fake: ScriptedChatModel) -> None:
    fake.enqueue(["one", "two"])
    s = practice.start(PID)
    list(s.respond("first question?"))
    list(s.respond("second question?"))
    last_prompt = fake.history[-1]
    texts = [m.text for m in last_prompt]
    assert 'Agent: "first question?"' in texts[2]
    assert texts[3] == "one"
    assert 'Agent: "second question?"' in texts[4]


def test_role_break_is_regenerated_once(practice: Practice, fake: ScriptedChatModel) -> None:
    fake.enqueue(["How can I help you today?", "I need my internet back, today."])
    s = practice.start(PID)
    list(s.respond("Hello, what's wrong?"))
    last = s.record.turns[-1]
    assert last.text == "I need my internet back, today."
    assert last.meta["regenerated"] is True and last.meta["fallback"] is False
    assert last.meta["breaks"] == ["speaks_as_agent"]
    assert last.meta["guard"] == [
        {
            "attempt": 1,
            "violations": [last.meta["guard"][0]["violations"][0]],
            "action": "regenerated",
        }
    ]
    assert last.meta["guard"][0]["violations"][0].startswith("speaks_as_agent")
    # the retry tells the model what went wrong, on the last message only
    assert "not acceptable" in fake.history[1][-1].text
    assert fake.history[1][:-1] == fake.history[0][:-1]
    assert len(fake.history) == 2


def _count_chunks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Chunks the fake model has streamed, one count per call (how far decoding went)."""
    counts: list[int] = []
    stream = ScriptedChatModel._stream

    def counted(self: ScriptedChatModel, *a: Any, **k: Any) -> Iterator[Any]:
        counts.append(0)
        for chunk in stream(self, *a, **k):
            counts[-1] += 1
            yield chunk

    monkeypatch.setattr(ScriptedChatModel, "_stream", counted)
    return counts


def test_reply_stops_where_the_model_starts_writing_the_agent(
    practice: Practice, fake: ScriptedChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = _count_chunks(monkeypatch)
    fake.enqueue(["It went down at nine. I need it back.\nAgent: " + "I can help with that. " * 20])
    s = practice.start(PID)
    shown = list(s.respond("When did it go down?"))
    assert shown[-1] == "It went down at nine. I need it back."
    assert s.record.turns[-1].text == shown[-1] and not s.record.turns[-1].meta["regenerated"]
    assert counts == [9]  # "Agent:" comes with the 9th word: the other 100 were never made


def test_a_reply_that_starts_as_the_agent_is_regenerated_at_once(
    practice: Practice, fake: ScriptedChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = _count_chunks(monkeypatch)
    fake.enqueue(
        ["Agent: " + "Let me look into that for you. " * 20, "Nine o'clock, and it's still off."]
    )
    s = practice.start(PID)
    list(s.respond("When did it go down?"))
    last = s.record.turns[-1]
    assert last.text == "Nine o'clock, and it's still off."
    assert last.meta["breaks"] == ["empty"] and last.meta["regenerated"] is True
    assert counts == [1, 6]


def test_two_role_breaks_fall_back_in_character(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    fake.enqueue(["As an AI I can't.", "How may I assist you?"])
    s = practice.start(PID)
    list(s.respond("Write me a poem"))
    last = s.record.turns[-1]
    assert last.text == in_character_line(
        practice.personas[PID], detect_probe("Write me a poem"), s.state().mood, 1
    )
    assert last.meta["fallback"] is True and last.meta["breaks"] == ["says_ai", "speaks_as_agent"]
    assert last.meta["guard"][-1]["action"] == "fallback"
    assert len(fake.history) == 2  # regenerated once, not more


def test_model_failure_keeps_message_and_resend_retries(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    fake.enqueue([TimeoutError("read timed out"), "Finally, an answer."])
    s = practice.start(PID)
    with pytest.raises(SimulatorError, match="TimeoutError"):
        list(s.respond("What's the postcode?"))
    assert s.record.turns[-1].role == "agent" and s.pending_reply()
    list(s.respond("What's the postcode?"))
    roles = [t.role for t in s.record.turns]
    assert roles == ["customer", "agent", "customer"]  # no duplicate agent turn


def test_script_exhaustion_is_loud(practice: Practice) -> None:
    s = practice.start(PID)
    with pytest.raises(SimulatorError, match="no reply left"):
        list(s.respond("hello?"))


@pytest.mark.parametrize("text", ["", "   \n "])
def test_empty_message_rejected(practice: Practice, text: str) -> None:
    s = practice.start(PID)
    with pytest.raises(InputRejected, match="Type a message"):
        list(s.respond(text))
    assert len(s.record.turns) == 1


def test_oversized_message_rejected(practice: Practice) -> None:
    s = practice.start(PID)
    with pytest.raises(InputRejected, match="limit is 2000"):
        list(s.respond("x" * 2001))
    assert len(s.record.turns) == 1


def test_ended_session_rejects_messages(practice: Practice) -> None:
    s = practice.start(PID)
    s.end()
    assert s.record.status == "ended" and s.record.ended_at
    with pytest.raises(InputRejected, match="ended"):
        list(s.respond("hello"))


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    SessionStore(db).close()
    SessionStore(db).close()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = [r[0] for r in con.execute("SELECT name FROM _migrations")]
    from storage import MIGRATIONS

    assert names == [name for name, _ in MIGRATIONS]
    assert names[:3] == ["m001_initial", "m002_branches", "m003_users"]


def test_corrupt_database_is_a_clear_error_and_not_overwritten(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    junk = b"this is not a database" * 100
    db.write_bytes(junk)
    with pytest.raises(StoreError, match="Cannot open the session database"):
        SessionStore(db)
    assert db.read_bytes() == junk


def test_a_reply_cut_short_by_the_guard_keeps_whole_sentences_only(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    """Stopped mid-stream at an agent's line, the repaired reply is the complete sentences
    before and after the dropped one, never the half-word the stream had reached."""
    fake.enqueue(["It went down at nine. How can I help you today? Can you tell me more"])
    s = practice.start(PID)
    shown = list(s.respond("When did it go down?"))
    last = s.record.turns[-1]
    assert last.meta["guard"][0]["action"] == "repaired"
    assert last.text == shown[-1] == "It went down at nine."
