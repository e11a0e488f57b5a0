"""A customer drafted from a real conversation, played on the embedded model: the shipped
broadband chat is masked, graded and drafted into a persona (the embedded model only
rewording the problem and opening line), then a practice session runs three agent turns
against it. Every reply must pass the character guard and the realism checks, come from the
model rather than a stock line, and talk about this customer's own problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bootstrap
from common.settings import Settings
from sim.director import Step
from sim.guard import check_reply
from sim.persona import parse_persona
from sim.practice import Practice
from sim.realism import Granted, RealismContext, check
from storage import SessionStore
from tests.conftest import ROOT, cue_signals
from tests.test_grading_classifier import shared_grader
from training.persona_draft import draft_persona
from training.real_import import import_file

pytestmark = pytest.mark.real_model
SAMPLE = ROOT / "docs" / "samples" / "chat-broadband.txt"
PID = "drafted_broadband"
AGENT = [
    "I'm so sorry, losing two days of work is really stressful. What are the router lights doing?",
    "Thanks for checking that. When did the connection first drop?",
    "I'm booking an engineer for tomorrow morning and adding a credit to your next bill.",
]


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 4}


def test_a_drafted_customer_stays_in_character_for_three_turns(
    tmp_path: Path, default_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = Settings(
        data_dir=tmp_path / "d",
        provider="local",
        model_path=default_model_path,
        max_tokens=48,
        seed=7,
    )
    settings.ensure_dirs()
    store = SessionStore(settings.db_path)
    (conv,) = import_file(
        store,
        shared_grader(tmp_path_factory),
        None,
        SAMPLE.read_bytes(),
        SAMPLE.name,
        "auto",
        ["Tom"],
    )
    practice = Practice(
        settings,
        store,
        {},
        signals_factory=lambda s: cue_signals,
        matcher_factory=bootstrap.rule_matcher,
    )
    draft = draft_persona(
        conv.turns,
        conv.feedback.model_dump(mode="json"),
        seed=conv.session_id,
        mode="phrase",
        model=practice.model,
    )
    persona = parse_persona(draft.yaml_text, PID, f"{PID}.yaml")
    practice.personas[PID] = persona
    session = practice.start(PID)
    # the customer's own problem, as the draft knows it
    topic = content_words(
        " ".join(
            [persona.scenario.problem, persona.scenario.product, persona.opening_line]
            + [f.fact for f in persona.hidden_facts]
        )
    )
    earlier = [persona.opening_line]
    replies: list[str] = []
    try:
        for text in AGENT:
            for _ in session.respond(text):
                pass
            agent, reply = session.record.turns[-2:]
            assert agent.role == "agent" and reply.role == "customer"
            assert reply.text.strip(), "an empty reply"
            assert not reply.meta.get("fallback"), (text, reply.meta.get("guard"))
            # the guard's in-character checks, with no facts locked (all may be told by now)
            assert check_reply(reply.text, persona) == [], reply.text
            granted = Granted.from_step(Step.model_validate(agent.meta["step"]))
            ctx = RealismContext(persona, text, tuple(earlier), granted=granted)
            hard = [f for f in check(reply.text, ctx) if not f.soft]
            assert hard == [], (reply.text, hard)
            earlier.append(reply.text)
            replies.append(reply.text)
    finally:
        store.close()
    assert len(replies) == 3
    assert any(content_words(r) & topic for r in replies), (replies, sorted(topic))
