"""A draft persona from an imported conversation: it validates against the persona schema,
carries no personal data, and its parts come from the conversation (opening line, hidden
facts, baseline, what moved the customer). The LLM and the phrasing model are checked too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from common.settings import Settings
from providers.fake import ScriptedChatModel
from rubric.grader import Grader
from sim.director import Director, Signals
from sim.persona import PersonaSpec, parse_persona
from sim.practice import Practice
from storage import SessionStore
from tests.conftest import ROOT
from tests.test_grading_classifier import shared_grader
from training.persona_draft import (
    DraftError,
    archetype_of,
    distress,
    draft_mode,
    draft_persona,
    extract,
    personal_data_in,
    unmask_words,
    validate_draft,
)
from training.persona_repo import PersonaRepo
from training.real_import import import_file

SAMPLES = ROOT / "docs" / "samples"
SECRETS = ("Sarah", "Jones", "Tom", "40318855", "LS6", "07700", "example.com", "[")


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The broadband sample, imported: its masked turns and saved feedback."""
    grader: Grader = shared_grader(tmp_path_factory)
    store = SessionStore(tmp_path_factory.mktemp("draft") / "s.sqlite3")
    data = (SAMPLES / "chat-broadband.txt").read_bytes()
    [c] = import_file(store, grader, None, data, "chat.txt", agents=["Tom"])
    rec = store.get_session(c.session_id)
    assert rec.feedback is not None
    return [{"role": t.role, "text": t.text} for t in rec.turns], rec.feedback


def fake(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


def test_the_draft_validates_against_the_persona_schema_and_the_studio(
    imported: tuple[list[dict[str, str]], dict[str, Any]], tmp_path: Path
) -> None:
    turns, feedback = imported
    draft = draft_persona(turns, feedback, seed="s1")
    assert draft.source == "extracted"
    spec = PersonaSpec.model_validate(json.loads(json.dumps(draft.spec.model_dump(mode="json"))))
    assert spec == draft.spec
    repo = PersonaRepo(tmp_path / "personas")
    (tmp_path / "personas").mkdir()
    assert repo.validate(draft.yaml_text, draft.suggested_id) == []
    persona = parse_persona(draft.yaml_text, draft.suggested_id, "draft.yaml")
    assert persona.name == draft.spec.name
    for secret in SECRETS:
        assert secret not in draft.yaml_text, secret
    # the same conversation always gives the same draft
    assert draft_persona(turns, feedback, seed="s1").yaml_text == draft.yaml_text


def test_the_draft_is_made_from_the_conversation(
    imported: tuple[list[dict[str, str]], dict[str, Any]],
) -> None:
    turns, feedback = imported
    d = draft_persona(turns, feedback, seed="s1").spec
    assert d.scenario.company == "Brightline Broadband"
    assert d.scenario.product in ("internet", "broadband")
    assert d.opening_line.startswith("My internet has been down since Monday")
    assert d.scenario.problem.startswith("Their internet has been down since Monday")
    assert d.archetype.value == "irate" and d.emotional_baseline >= 6
    # what the customer said only when asked, with the asking words as topics
    facts = {f.id: f for f in d.hidden_facts}
    assert any("flashing red" in f.fact for f in facts.values())
    lights = next(f for f in facts.values() if "flashing red" in f.fact)
    assert {"lights", "router"} <= set(lights.topics)
    assert any("BB-558120" in f.fact for f in facts.values())  # the order number is kept
    # the validation and the engineer visit calmed her down
    assert any("names how they feel" in s for s in d.softens_when)
    assert any("engineer" in s for s in [*d.softens_when, d.resolution.example_offer or ""])
    assert {"engineer", "credit"} <= set(d.resolution.satisfied_by)


def test_a_drafted_fact_unlocks_when_the_agent_asks_the_same_question(
    imported: tuple[list[dict[str, str]], dict[str, Any]],
) -> None:
    turns, feedback = imported
    draft = draft_persona(turns, feedback, seed="s1")
    persona = parse_persona(draft.yaml_text, draft.suggested_id, "d.yaml")
    director = Director(persona)
    state = director.start()
    step = director.step(
        state, "Can you tell me what the lights on your router are doing?", Signals(listen=True)
    )
    assert step.unlocked and "flashing red" in next(
        f.fact for f in persona.hidden_facts if f.id == step.unlocked[0]
    )


def test_a_drafted_persona_runs_through_the_probe_check(
    practice: Practice,
    fake: ScriptedChatModel,
    imported: tuple[list[dict[str, str]], dict[str, Any]],
) -> None:
    from sim.probe_check import check_draft

    turns, feedback = imported
    draft = draft_persona(turns, feedback, seed="s1")
    persona = parse_persona(draft.yaml_text, draft.suggested_id, "d.yaml")
    fake.enqueue(["I just want my internet back."] * 80)
    report = check_draft(practice, persona)
    assert [c.name for c in report.checks] == ["dismissive", "ideal", "facts", "in_character"]
    assert report.get("facts").passed, report.get("facts").detail


def test_masked_data_in_the_opening_line_is_rewritten() -> None:
    turns = [
        {
            "role": "customer",
            "text": "Hi, I'm [NAME], my number is [PHONE]. My parcel never arrived!",
        },
        {"role": "agent", "text": "Sorry to hear that. What's the order number?"},
        {"role": "customer", "text": "It's 55-1234, it was a birthday present for Saturday."},
    ]
    d = draft_persona(turns, None, seed="x")
    first = d.spec.name.split()[0]
    assert d.spec.opening_line == f"Hi, I'm {first}. My parcel never arrived!"
    assert "[" not in d.yaml_text
    assert "order" in d.spec.hidden_facts[0].topics  # asked about by its order number
    assert unmask_words("email me at [EMAIL] or call [PHONE]", "Jo") == (
        "email me at my email address or call my phone number"
    )
    assert unmask_words("Thanks [NAME], my name is [NAME]", "Jo") == "Thanks, my name is Jo"
    assert unmask_words("My card [CARD] was charged twice.", "Jo") == "My card was charged twice."


def test_the_baseline_follows_the_customers_language() -> None:
    calm = "Hi, I think my bill might be a little high this month, could you check it?"
    angry = "This is RIDICULOUS! Third time my broadband has gone down, absolutely useless!!"
    assert distress(angry) >= 8 > 5 > distress(calm)
    assert archetype_of([angry]).value == "irate"
    assert (
        archetype_of(["My mum passed away last week and I can't get into her photos."]).value
        == "grieving"
    )
    assert (
        archetype_of(["I'm so worried, is my money lost? I really need it by Friday."]).value
        == "anxious"
    )
    high = extract([{"role": "customer", "text": angry}, {"role": "agent", "text": "ok"}])
    low = extract([{"role": "customer", "text": calm}, {"role": "agent", "text": "ok"}])
    assert high["emotional_baseline"] > low["emotional_baseline"]


def test_what_moved_the_customer_becomes_their_rules() -> None:
    turns = [
        {"role": "customer", "text": "I was charged twice. This is unacceptable!"},
        {"role": "agent", "text": "That's not our problem, the bank must have done it."},
        {"role": "customer", "text": "Are you serious?! This is ridiculous, absolutely useless!"},
        {"role": "agent", "text": "I'm sorry, you're right to be annoyed. I'll refund it today."},
        {"role": "customer", "text": "Ok, thank you, that helps."},
    ]
    feedback = {
        "grades": [
            {
                "index": 1,
                "techniques": {"validate": {"used": False}},
                "markers": {"dismissive": {"used": True}},
            },
            {
                "index": 3,
                "techniques": {"validate": {"used": True}, "cooperate": {"used": True}},
                "markers": {},
            },
        ]
    }
    d = draft_persona(turns, feedback, seed="m").spec
    assert (
        d.escalates_when[0]
        == "the agent brushes the problem off, as in “That's not our problem, the bank must have done it.”"
    )
    assert d.softens_when[0].startswith(
        "the agent names how they feel and says it makes sense: “I'm sorry"
    )
    assert "refund" in d.resolution.satisfied_by and "today" in d.resolution.satisfied_by


def test_no_customer_turns_is_a_draft_error() -> None:
    with pytest.raises(DraftError, match="no customer turns"):
        extract([{"role": "agent", "text": "Hello?"}])


def test_personal_data_left_in_a_draft_is_refused() -> None:
    data = extract(
        [{"role": "customer", "text": "My bill is wrong."}, {"role": "agent", "text": "Ok."}]
    )
    validate_draft(data)
    leaky = {**data, "backstory": "Call her on 020 7946 0018."}
    assert personal_data_in(leaky) == ["Call her on 020 7946 0018."]
    with pytest.raises(DraftError, match="personal data"):
        validate_draft(leaky)
    with pytest.raises(DraftError, match="emotional_baseline"):
        validate_draft({**data, "emotional_baseline": 42})


# --- the models -----------------------------------------------------------------------------------
def test_a_capable_model_fills_the_draft_in_with_the_same_validation(
    imported: tuple[list[dict[str, str]], dict[str, Any]],
) -> None:
    turns, feedback = imported
    base = extract(turns, feedback, "s1")
    better = {
        **base,
        "backstory": "Dana works from home as a translator and needs the line for deadlines.",
    }
    d = draft_persona(
        turns,
        feedback,
        seed="s1",
        mode="llm",
        model=fake("```json\n" + json.dumps(better) + "\n```"),
    )
    assert d.source == "llm" and d.spec.backstory.startswith("Dana works from home")
    # an answer that isn't a valid persona, or leaks personal data, is not used
    for reply in (
        "Sorry, I can't do that.",
        json.dumps({**better, "difficulty": "brutal"}),
        json.dumps({**better, "backstory": "Her email is sarah.jones@example.com"}),
        json.dumps({**better, "opening_line": "Hi, I'm [NAME]"}),
    ):
        d = draft_persona(turns, feedback, seed="s1", mode="llm", model=fake(reply))
        assert d.source == "extracted", reply
        assert any("was not used" in n for n in d.notes)
        assert "sarah" not in d.yaml_text.lower()


def test_the_embedded_model_only_rewords_and_is_checked(
    imported: tuple[list[dict[str, str]], dict[str, Any]],
) -> None:
    turns, feedback = imported
    extracted = draft_persona(turns, feedback, seed="s1").spec
    good = fake(
        "Their broadband has been down since Monday, for the third time this month.",
        "My internet's been down since Monday and nobody's fixed it, third time this month!",
    )
    d = draft_persona(turns, feedback, seed="s1", mode="phrase", model=good)
    assert d.source == "extracted+phrased"
    assert d.spec.scenario.problem.startswith("Their broadband has been down since Monday, for")
    assert d.spec.opening_line.startswith("My internet's been down")
    # the facts are the extraction's, whatever the wording
    assert (
        d.spec.hidden_facts == extracted.hidden_facts
        and d.spec.softens_when == extracted.softens_when
    )
    bad = fake("Sure! Here is the rewrite: ...", "Call me on 020 7946 0018, it's been down 9 days")
    d = draft_persona(turns, feedback, seed="s1", mode="phrase", model=bad)
    assert d.source == "extracted"
    assert d.spec.opening_line == extracted.opening_line and d.spec.scenario == extracted.scenario


def test_the_draft_mode_follows_the_settings(tmp_path: Path) -> None:
    assert draft_mode(Settings(data_dir=tmp_path, provider="fake")) == "extract"
    assert draft_mode(Settings(data_dir=tmp_path, provider="local")) == "phrase"
    assert draft_mode(Settings(data_dir=tmp_path, provider="openai", judge=True)) == "llm"
    assert draft_mode(Settings(data_dir=tmp_path, provider="openai", judge=False)) == "extract"
