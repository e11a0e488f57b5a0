"""The director without any LLM: mood, facts, exit doors and exact state round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.director import (
    DIFFICULTY_RULES,
    Director,
    DirectorState,
    Signals,
    directive,
    listening_clauses,
    mentions,
    rules_for,
)
from sim.persona import MoodRules, Persona, load_personas

PERSONAS = load_personas()
DIFFICULTIES = ("easy", "medium", "hard")

VALIDATE = Signals(validate=True, listen=False, cooperate=False, affirm=False)
LISTEN = Signals(listen=True, validate=False, cooperate=False, affirm=False)
DISMISS = Signals(listen=False, validate=False, cooperate=False, affirm=False, dismissive=True)
NOTHING = Signals(listen=False, validate=False, cooperate=False, affirm=False)
GOOD = Signals(listen=True, validate=True, cooperate=True, affirm=True)


def with_difficulty(p: Persona, difficulty: str) -> Persona:
    return p.model_copy(update={"difficulty": difficulty})


def mid_state(d: Director) -> DirectorState:
    """A state with room to move both ways."""
    return d.start().model_copy(update={"mood": 6.0})


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("pid", sorted(PERSONAS))
def test_mood_falls_after_validate_and_listen_and_rises_after_dismissive(
    pid: str, difficulty: str
) -> None:
    d = Director(with_difficulty(PERSONAS[pid], difficulty))
    s = mid_state(d)
    for signals in (VALIDATE, LISTEN):
        step = d.step(s, "Some agent words.", signals)
        assert step.mood_after < step.mood_before, (pid, difficulty, signals)
    step = d.step(s, "Some agent words.", DISMISS)
    assert step.mood_after > step.mood_before
    assert step.main_cause() is not None and step.main_cause().id == "dismissive"  # type: ignore[union-attr]


def test_difficulty_changes_step_sizes() -> None:
    p = PERSONAS["irate_broadband_outage"]
    drops, rises = {}, {}
    for diff in DIFFICULTIES:
        d = Director(with_difficulty(p, diff))
        s = mid_state(d)
        drops[diff] = d.step(s, "x", VALIDATE).delta
        rises[diff] = d.step(s, "x", DISMISS).delta
    assert drops["easy"] < drops["medium"] < drops["hard"] < 0
    assert rises["hard"] > rises["medium"] > rises["easy"] > 0


def test_persona_mood_block_overrides_difficulty() -> None:
    p = PERSONAS["irate_broadband_outage"].model_copy(
        update={"difficulty": "medium", "mood": MoodRules(calm_rate=2.0, give_up_after=7)}
    )
    rules = rules_for(p)
    assert rules.calm_rate == 2.0 and rules.give_up_after == 7
    assert rules.escalate_rate == DIFFICULTY_RULES["medium"].escalate_rate


def test_a_turn_with_no_technique_makes_the_customer_impatient() -> None:
    d = Director(PERSONAS["irate_broadband_outage"])
    step = d.step(mid_state(d), "Okay.", NOTHING)
    assert step.delta > 0 and step.causes[0].kind == "idle"
    # a question the grader didn't credit is not held against them
    assert d.step(mid_state(d), "Which account was it?", NOTHING).delta == 0


def test_mood_stays_in_range() -> None:
    d = Director(PERSONAS["irate_broadband_outage"])
    s = d.start().model_copy(update={"mood": 9.5})
    assert d.step(s, "x", DISMISS).mood_after == 10.0
    s = d.start().model_copy(update={"mood": 0.5})
    assert d.step(s, "x", GOOD).mood_after == 0.0


def test_fix_before_feeling_lands_half() -> None:
    d = Director(PERSONAS["irate_broadband_outage"])
    fix = Signals(cooperate=True, listen=False, validate=False, affirm=False)
    cold = d.step(mid_state(d), "I'll send an engineer.", fix)
    warm = d.step(mid_state(d).model_copy(update={"heard": True}), "I'll send an engineer.", fix)
    assert warm.delta < cold.delta < 0


def test_facts_unlock_only_after_a_question_on_their_topic() -> None:
    p = PERSONAS["anxious_international_transfer"]
    d = Director(p)
    s = d.start()
    fact = next(f for f in p.hidden_facts if f.id == "confirmation_email")
    # a statement on the topic does not unlock it
    stmt = d.step(s, "We will send a confirmation email later today.", LISTEN)
    assert "confirmation_email" not in stmt.unlocked
    # a question on another topic does not unlock it
    other = d.step(s, "Is this your first time sending money abroad?", LISTEN)
    assert "confirmation_email" not in other.unlocked
    # a question on its topic does
    asked = d.step(s, "Do you have the confirmation email from us?", LISTEN)
    assert asked.unlocked == ["confirmation_email"]
    assert "confirmation_email" in asked.state.unlocked
    # an invitation to explain counts as listening too
    invite = d.step(s, "Tell me about the reference on your receipt.", NOTHING)
    assert "confirmation_email" in invite.unlocked
    # once unlocked it is not unlocked again, and it stays unlocked
    again = d.step(asked.state, "And the confirmation email, is it there?", LISTEN)
    assert again.unlocked == [] and "confirmation_email" in again.state.unlocked
    assert mentions("Could you check the email?", "email") and fact.topics


@pytest.mark.parametrize("pid", sorted(PERSONAS))
def test_every_fact_can_be_unlocked_by_asking_about_its_first_topic(pid: str) -> None:
    p = PERSONAS[pid]
    d = Director(p)
    for fact in p.hidden_facts:
        step = d.step(d.start(), f"Can you tell me about the {fact.topics[0]}?", LISTEN)
        assert fact.id in step.state.unlocked, (pid, fact.id)


def test_listening_clauses() -> None:
    assert listening_clauses("I see. When did it start? Thanks.") == ["When did it start?"]
    assert listening_clauses("Walk me through the order.") == ["Walk me through the order."]
    assert listening_clauses("I have reset it.") == []


def test_resolution_door_needs_offers_and_low_enough_mood() -> None:
    p = PERSONAS["anxious_international_transfer"]  # medium, accept at <= 5
    d = Director(p)
    offer = "I'm raising a trace today and you'll get an update by 5pm with a reference."
    calm = d.start().model_copy(update={"mood": 4.0, "heard": True})
    step = d.step(calm, offer, GOOD)
    assert step.resolution_met and step.outcome == "resolved" and step.exit == "accepted"
    assert {"trace", "reference", "update by"} <= set(step.offers)
    upset = d.start().model_copy(update={"mood": 10.0})
    step = d.step(upset, offer, Signals(cooperate=True))
    assert step.resolution_met and step.outcome == "open"
    assert "still too upset" in directive(p, step, {})
    with pytest.raises(ValueError):
        d.step(d.step(calm, offer, GOOD).state, "Anything else?", NOTHING)


def test_offers_accumulate_across_turns() -> None:
    p = PERSONAS["anxious_international_transfer"]
    d = Director(p)
    s = d.start().model_copy(update={"mood": 3.0, "heard": True})
    first = d.step(s, "I'll start a trace on the payment now.", GOOD)
    assert first.outcome == "open" and first.offers == ["trace"]
    second = d.step(first.state, "Your reference is NGB-1 for that.", GOOD)
    assert second.outcome == "resolved"


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_give_up_door_after_n_turns_at_max(difficulty: str) -> None:
    for pid in ("irate_broadband_outage", "grieving_cloud_photos"):
        p = with_difficulty(PERSONAS[pid], difficulty)
        d = Director(p)
        n = rules_for(p).give_up_after
        s = d.start().model_copy(update={"mood": 10.0})
        for i in range(1, n + 1):
            step = d.step(s, "That's our policy.", DISMISS)
            s = step.state
            if i < n:
                assert step.outcome == "open", (pid, difficulty, i)
        assert step.outcome == "gave_up"
        assert step.exit == ("manager" if p.archetype == "irate" else "left")
        assert "had enough" in directive(p, step, {})
    assert (
        rules_for(with_difficulty(p, "hard")).give_up_after
        < rules_for(with_difficulty(p, "easy")).give_up_after
    )


def test_a_calming_turn_resets_the_give_up_count() -> None:
    d = Director(PERSONAS["irate_broadband_outage"])
    s = d.start().model_copy(update={"mood": 10.0, "turns_at_max": 1})
    step = d.step(s, "That sounds awful, what happened?", GOOD)
    assert step.state.turns_at_max == 0


def test_state_round_trips_and_steps_are_deterministic() -> None:
    p = PERSONAS["anxious_international_transfer"]
    d = Director(p)
    s = d.start()
    script = [
        ("Hi Aisha, that sounds frightening. What details did you type in?", LISTEN),
        ("Read the terms.", DISMISS),
        ("Do you have the confirmation email?", GOOD),
    ]
    states = [s]
    for text, sig in script:
        states.append(d.step(states[-1], text, sig).state)
    # a stored state restores exactly and replays to the same steps
    restored = DirectorState.model_validate_json(states[1].model_dump_json())
    assert restored == states[1]
    replay = d.step(restored, *script[1])
    assert replay.state == states[2]
    assert d.step(states[2], *script[2]) == d.step(states[2], *script[2])


def test_rule_matcher_moves_mood() -> None:
    p = PERSONAS["irate_broadband_outage"]

    def match_first(text: str, rules: object) -> list[int]:
        return [0] if "policy" in text else []

    d = Director(p, matcher=match_first)
    step = d.step(mid_state(d), "It's policy.", NOTHING)
    kinds = {c.id for c in step.causes}
    assert "softens:0" in kinds and "escalates:0" in kinds


def test_directive_carries_unlocked_fact_and_probe_line() -> None:
    p = PERSONAS["anxious_international_transfer"]
    d = Director(p)
    step = d.step(d.start(), "Do you have the confirmation email?", LISTEN)
    fact = {f.id: f.fact for f in p.hidden_facts}
    text = directive(p, step, {fid: fact[fid] for fid in step.unlocked}, "Don't write poems.")
    assert "NGB-INTL-88231645" in text and "Don't write poems." in text
    assert "Aisha" in text and "calmer" in text


def test_signals_from_grade() -> None:
    from rubric.grader import TurnGrade, Verdict

    g = TurnGrade(
        index=1,
        techniques={
            "listen": Verdict(used=True, evidence="What happened?"),
            "validate": Verdict(used=None),
            "cooperate": Verdict(used=False),
            "affirm": Verdict(used=False),
        },
        markers={"dismissive": Verdict(used=True, evidence="Calm down.")},
    )
    s = Signals.from_grade(g)
    assert s.as_dict() == {
        "listen": True,
        "validate": None,
        "cooperate": False,
        "affirm": False,
        "dismissive": True,
    }
    assert s.evidence == {"listen": "What happened?", "dismissive": "Calm down."}


def test_a_technique_added_to_the_rubric_reaches_the_director(tmp_path: Path) -> None:
    """A technique added to a copy of techniques.yaml is graded, passed to the director and
    recorded as a cause, with no code change; its mood effect is the neutral default."""
    import yaml

    from common.techniques import CORE_TECHNIQUES, RUBRIC_PATH, technique_ids
    from rubric.grader import TurnGrade, Verdict
    from rubric.techniques import load_rubric
    from sim.director import EFFECTS, NEUTRAL_EFFECT, Cause

    data = yaml.safe_load(RUBRIC_PATH.read_text(encoding="utf-8"))
    summarise = {
        **data["techniques"][0],
        "id": "summarise",
        "label": "Summarise: say back what the customer said",
        "definition": "The agent sums up the customer's problem in their own words.",
        "cues": ["so to sum up"],
    }
    data["techniques"].insert(len(CORE_TECHNIQUES), summarise)
    path = tmp_path / "techniques.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    ids = technique_ids(path)
    assert ids == (*CORE_TECHNIQUES, "summarise")
    assert load_rubric(path).technique_ids == list(ids)  # the rubric accepts it as it is
    assert "summarise" not in EFFECTS

    quote = "So to sum up, you were charged twice."
    grade = TurnGrade(
        index=1,
        techniques={t: Verdict(used=t == "summarise", evidence=quote) for t in ids},
    )
    signals = Signals.from_grade(grade)
    assert signals.used("summarise")
    assert signals.as_dict() == {
        "listen": False,
        "validate": False,
        "cooperate": False,
        "affirm": False,
        "summarise": True,
        "dismissive": False,
    }
    d = Director(PERSONAS["irate_broadband_outage"])
    step = d.step(mid_state(d), quote, signals)
    assert step.causes == [
        Cause(kind="technique", id="summarise", delta=NEUTRAL_EFFECT, evidence=quote)
    ]
    assert step.mood_after == step.mood_before  # neutral, and not an idle turn
