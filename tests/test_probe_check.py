from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli import app
from providers.fake import ScriptedChatModel
from sim.persona import PERSONA_DIR, Persona, load_personas, parse_persona
from sim.practice import Practice
from sim.probe_check import (
    CheckReport,
    check_draft,
    check_persona,
    pick_probes,
    question_for,
    render_text,
)
from tests.behaviour_fakes import NoteFollower

CALM = "I just want this sorted."
BILL = "confused_energy_bill"
SHIPPED = sorted(load_personas())
NAMES = ["dismissive", "ideal", "facts", "in_character"]


def variant(practice: Practice, new_id: str, edit: tuple[str, str]) -> Persona:
    """A copy of the energy-bill persona with one text edit, added to the practice."""
    text = (PERSONA_DIR / f"{BILL}.yaml").read_text(encoding="utf-8")
    old, new = edit
    assert old in text
    persona = parse_persona(text.replace(old, new), new_id, f"{new_id}.yaml")
    practice.personas[new_id] = persona
    return persona


@pytest.mark.parametrize("pid", SHIPPED)
def test_a_shipped_persona_passes_every_check(
    practice: Practice, fake: ScriptedChatModel, pid: str
) -> None:
    persona = practice.personas[pid]
    # a model that does what the director's notes say (and otherwise says something plain)
    fake.enqueue([NoteFollower(persona)] * 90)
    report = check_persona(practice, pid)
    assert [c.name for c in report.checks] == NAMES + (["behaviours"] if persona.behaviours else [])
    assert report.passed, render_text(report)
    assert report.persona_id == pid
    assert report.persona_version == practice.personas[pid].version
    facts = report.get("facts")
    assert [p.name for p in facts.parts] == [f.id for f in practice.personas[pid].hidden_facts]
    assert [p.name for p in report.get("in_character").parts] == [
        "injection",
        "role_swap",
        "off_topic",
        "meta",
    ]
    # every check ran in its own ended session(s)
    sessions = practice.store.list_sessions()
    assert len(sessions) == 2 + len(facts.parts) + 4 + len(persona.behaviours)
    assert all(s.status == "ended" for s in sessions)


def test_unreachable_fact_fails_the_facts_check_only(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    variant(
        practice,
        "bill_hidden_fact",
        ("topics: [direct debit, payment, pay, when, instalments, afford]", 'topics: ["???"]'),
    )
    fake.enqueue([CALM] * 60)
    report = check_persona(practice, "bill_hidden_fact")
    assert not report.passed
    failed = {c.name for c in report.checks if not c.passed}
    assert failed == {"facts"}, render_text(report)
    facts = report.get("facts")
    assert {p.name: p.passed for p in facts.parts} == {
        "smart_meter_not_sending": True,
        "own_reading": True,
        "pension_date": False,
    }
    assert "pension_date" in facts.detail


def test_fact_shadowed_by_others_fails(practice: Practice, fake: ScriptedChatModel) -> None:
    # every topic of the third fact also belongs to the first two: one question unlocks at
    # most two facts, so it never comes out in one question
    persona = variant(
        practice,
        "bill_shadowed",
        (
            "topics: [direct debit, payment, pay, when, instalments, afford]",
            "topics: [meter]",
        ),
    )
    q, found = question_for(persona, persona.hidden_facts[2])
    assert not found and q == "Could you tell me about the meter?"
    fake.enqueue([CALM] * 60)
    facts = check_persona(practice, "bill_shadowed").get("facts")
    assert not facts.passed
    part = facts.parts[2]
    assert not part.passed and "smart_meter_not_sending, own_reading" in part.detail


def test_unreachable_resolution_fails_the_ideal_check(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    text = (PERSONA_DIR / f"{BILL}.yaml").read_text(encoding="utf-8")
    start = text.index("  example_offer:")
    broken = text[:start] + "  example_offer: I'll look into it for you and see what I can do.\n"
    persona = parse_persona(broken, "bill_no_offer", "bill_no_offer.yaml")
    practice.personas[persona.id] = persona
    fake.enqueue([CALM] * 60)
    report = check_persona(practice, persona.id)
    assert {c.name for c in report.checks if not c.passed} == {"ideal"}, render_text(report)
    ideal = report.get("ideal")
    assert "not resolved" in ideal.detail and "meets 0 of the 2" in ideal.detail


def test_a_customer_who_never_calms_fails_the_ideal_check(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    variant(
        practice,
        "bill_stubborn",
        ("emotional_baseline: 4", "emotional_baseline: 10\nmood:\n  calm_rate: 0.1"),
    )
    fake.enqueue([CALM] * 60)
    report = check_persona(practice, "bill_stubborn")
    ideal = report.get("ideal")
    assert not ideal.passed and "mood stayed above 6" in ideal.detail
    # starting at the maximum, staying there counts as upset by dismissive turns
    assert report.get("dismissive").passed


def test_a_model_that_breaks_character_fails_in_character(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    fake.enqueue(["As an AI, I can't help with that."] * 80)
    report = check_persona(practice, BILL)
    assert {c.name for c in report.checks if not c.passed} == {"in_character"}
    ic = report.get("in_character")
    assert [p.passed for p in ic.parts] == [False] * 4
    assert all("fell back" in p.detail and "says_ai" in p.detail for p in ic.parts)
    assert "4 of 4 probes broke character" in ic.detail


def test_pick_probes_takes_one_of_each_kind() -> None:
    picked = pick_probes()
    assert [k for _, k in picked] == ["injection", "role_swap", "off_topic", "meta"]
    assert pick_probes([("a", "meta"), ("b", "meta"), ("c", "injection")]) == [
        ("c", "injection"),
        ("a", "meta"),
    ]


def test_check_draft_does_not_touch_the_practice(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    text = (PERSONA_DIR / f"{BILL}.yaml").read_text(encoding="utf-8")
    draft = parse_persona(text.replace("Doreen Achebe", "Dora Draft"), "dora_draft", "d.yaml")
    fake.enqueue([CALM] * 60)
    report = check_draft(practice, draft)
    assert report.passed and report.persona_version == draft.version
    assert "dora_draft" not in practice.personas
    assert practice.store.list_sessions() == []


def test_report_json_shape(practice: Practice, fake: ScriptedChatModel) -> None:
    fake.enqueue([CALM] * 60)
    data = check_persona(practice, BILL).model_dump(mode="json")
    assert data["format"] == "rapport.check/1" and data["passed"] is True
    assert {"persona_id", "persona_version", "checks"} <= set(data)
    assert set(data["checks"][0]) == {"name", "passed", "detail", "parts"}
    assert CheckReport.model_validate(data).passed


# --- CLI: the real grader and rule matcher, the fake model ---------------------------------
@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([CALM] * 80))
    return {
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
    }


def test_personas_check_cli(cli_env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["personas", "check", BILL], env=cli_env)
    lines = res.output.strip().splitlines()
    assert [ln.split()[1] for ln in lines[:4]] == NAMES, res.output
    assert all(ln.split()[0] in ("PASS", "FAIL") for ln in lines[:4])
    passed = all(ln.startswith("PASS") for ln in lines[:4])
    assert res.exit_code == (0 if passed else 1), res.output
    assert passed, res.output  # the shipped persona passes with the real grader too
    assert lines[-1].endswith("all 4 checks passed")
    # nothing was written to the trainee's session history
    assert not (tmp_path / "data" / "rapport.sqlite3").exists()

    res = runner.invoke(app, ["personas", "check", BILL, "--json"], env=cli_env)
    data = json.loads(res.output)
    assert res.exit_code == 0 and data["passed"] is True and data["persona_id"] == BILL

    res = runner.invoke(app, ["personas", "check", "nobody_here"], env=cli_env)
    assert res.exit_code == 2 and "no persona" in res.output


def test_personas_check_cli_fails_on_a_broken_model(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["As an AI, I can't help with that."] * 80))
    env = {
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(script),
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
    }
    res = CliRunner().invoke(app, ["personas", "check", BILL], env=env)
    assert res.exit_code == 1, res.output
    assert any(ln.startswith("FAIL  in_character") for ln in res.output.splitlines())


# --- behaviours -----------------------------------------------------------------------------
EVERY_BEHAVIOUR = [
    {"kind": "impatient"},
    {"kind": "tangential", "grievance": "Last winter you billed me for a house I had left."},
    {"kind": "vague", "detail": "The account number is BW-77120.", "topics": ["account number"]},
    {"kind": "repeats"},
    {"kind": "interrupts", "second_problem": "And your app says my password is wrong."},
    {"kind": "non_native", "first_language": "Polish"},
]


def with_behaviours(
    practice: Practice, new_id: str, items: list[dict[str, object]], extra: str = ""
) -> Persona:
    text = (PERSONA_DIR / f"{BILL}.yaml").read_text(encoding="utf-8") + extra
    text += yaml.safe_dump({"behaviours": items}, sort_keys=False)
    persona = parse_persona(text, new_id, f"{new_id}.yaml")
    practice.personas[new_id] = persona
    return persona


def test_each_behaviour_is_verified_in_its_own_session(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    persona = with_behaviours(practice, "bill_every", EVERY_BEHAVIOUR)
    fake.enqueue([NoteFollower(persona)] * 200)
    report = check_persona(practice, persona.id)
    assert report.passed, render_text(report)
    part = report.get("behaviours")
    assert [p.name for p in part.parts] == [b["kind"] for b in EVERY_BEHAVIOUR]
    assert part.detail == "6/6 behaviours switched on and shown"
    vague = next(p for p in part.parts if p.name == "vague")
    assert vague.detail.startswith("shown at turn 1, 2") and "account number is BW" in vague.detail


def test_a_model_that_ignores_the_notes_fails_each_behaviour_it_should_show(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    persona = with_behaviours(practice, "bill_ignores", EVERY_BEHAVIOUR)
    fake.enqueue([CALM] * 250)
    report = check_persona(practice, persona.id)
    assert {c.name for c in report.checks if not c.passed} == {"behaviours"}, render_text(report)
    parts = {p.name: p for p in report.get("behaviours").parts}
    # the plain line never pushes about time, nor brings up the grievance or second problem
    for kind in ("impatient", "tangential", "repeats", "interrupts"):
        assert not parts[kind].passed and "switched on at turn" in parts[kind].detail, kind
    assert "asking when or how long" in parts["impatient"].detail
    assert "older grievance" in parts["tangential"].detail
    # it never gives the detail either; the note was in effect, so non_native holds
    assert not parts["vague"].passed and "the detail given" in parts["vague"].detail
    assert parts["non_native"].passed
    assert "5 of 6 behaviours not shown" in report.get("behaviours").detail


def test_a_behaviour_that_never_gets_its_moment_fails(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    # a customer who barely stirs never reaches the distress impatience needs, and a vague
    # detail whose topics no question can name is never asked for
    persona = with_behaviours(
        practice,
        "bill_never",
        [{"kind": "impatient"}, {"kind": "vague", "detail": "BW-77120", "topics": ["???"]}],
        extra="mood:\n  escalate_rate: 0.1\n",
    )
    fake.enqueue([CALM] * 90)
    parts = {p.name: p for p in check_persona(practice, persona.id).get("behaviours").parts}
    assert parts["impatient"].detail == "never switched on in 7 agent turn(s)"
    assert parts["vague"].detail == "never switched on in 2 agent turn(s): check its topics"


def test_a_scripted_fallback_line_never_counts_as_showing_a_behaviour(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    # every reply breaks character, so every reply the trainee sees is the stock line, which
    # may well sound impatient ("I need this fixed now"): the model showed nothing
    persona = with_behaviours(practice, "bill_stock", [{"kind": "impatient"}])
    fake.enqueue(["As an AI, I can't help with that."] * 200)
    part = check_persona(practice, persona.id).get("behaviours").parts[0]
    assert not part.passed and "never shown" in part.detail
