"""One conversational Turn (common/turns.py) and its typed metadata: the JSON stored is the
same as when the metadata was a plain dict, and old or unknown keys still load."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from common.turns import GuardLog, Turn, TurnMeta
from providers.fake import ScriptedChatModel
from sim.practice import Practice

PID = "irate_broadband_outage"

AGENT = {
    "step": {"turn": 1, "mood_before": 8.0, "exit": None, "causes": []},
    "signals": {"listen": True, "validate": None, "dismissive": False},
    "directive": "(Reply only as Dave.)",
    "behaviours": ["vague"],
    "context_cut": 2,
    "grading_note": "not scored: boom",
}
REPLY = {
    "regenerated": True,
    "breaks": ["speaks_as_agent"],
    "fallback": False,
    "guard": [{"attempt": 1, "violations": ["speaks_as_agent"], "action": "regenerated"}],
    "director_state": {"turn": 1, "mood": 7.0, "exit": None},
}
OPENING = {"opening": True, "director_state": {"turn": 0, "mood": 8.0}}


@pytest.mark.parametrize(
    "raw", [AGENT, REPLY, OPENING, {}], ids=["agent", "reply", "opening", "none"]
)
def test_metadata_round_trips_to_the_same_json(raw: dict[str, object]) -> None:
    meta = TurnMeta.load(raw)
    assert json.dumps(meta.dump()) == json.dumps(raw)
    assert meta.other == {}


def test_fields_are_typed() -> None:
    reply = TurnMeta.load(REPLY)
    assert reply.guard == [
        GuardLog(attempt=1, violations=["speaks_as_agent"], action="regenerated")
    ]
    assert reply.fallback is False and reply.step is None
    assert TurnMeta.load(AGENT).context_cut == 2


def test_unknown_keys_are_refused_when_built_and_kept_when_loaded() -> None:
    with pytest.raises(ValidationError):
        TurnMeta(directiv="typo")  # type: ignore[call-arg]
    old = {"directive": "x", "flavour": "old", "context_cut": "not a number"}
    meta = TurnMeta.load(old)
    assert meta.directive == "x" and meta.context_cut is None
    assert meta.other == {"flavour": "old", "context_cut": "not a number"}
    assert meta.dump() == old  # nothing lost


def test_a_turn_and_its_dict_shape() -> None:
    t = Turn.from_dict({"role": "agent", "text": "Hi"})
    assert t == Turn("agent", "Hi") and t.meta == TurnMeta()
    assert t.as_dict() == {"role": "agent", "text": "Hi"}


def test_a_session_stores_the_keys_in_the_same_order(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    fake.enqueue(["How can I help you today?", "I need my internet back, today."])
    s = practice.start(PID)
    list(s.respond("Hello, what's wrong?"))
    opening, agent, reply = s.record.turns
    assert list(opening.meta) == ["opening", "director_state"]
    assert list(agent.meta) == ["step", "signals", "directive"]
    assert list(reply.meta) == ["regenerated", "breaks", "fallback", "guard", "director_state"]
    assert list(reply.meta["guard"][0]) == ["attempt", "violations", "action"]
    assert list(agent.meta["signals"]) == [
        "listen",
        "validate",
        "cooperate",
        "affirm",
        "dismissive",
    ]
    typed = agent.turn()
    assert typed.role == "agent" and typed.meta.directive == agent.meta["directive"]


def test_an_old_session_with_keys_this_version_does_not_know_still_resumes(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    s = practice.start(PID)
    store = practice.store
    store.update_turn_meta(s.id, 0, {"legacy": {"anything": 1}})
    fake.enqueue(["It went down at nine."])
    list(practice.resume(s.id).respond("When did it go down?"))
    rec = store.get_session(s.id)
    assert rec.turns[0].meta["legacy"] == {"anything": 1}
    assert rec.turns[0].turn().meta.other == {"legacy": {"anything": 1}}
    assert practice.resume(s.id).state().turn == 1
