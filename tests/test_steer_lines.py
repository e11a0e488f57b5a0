"""Persona steer lines: the customer's own words for pulling the talk back to their problem
when a reply has to be replaced by a fallback line (issue 17)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from sim.guard import Probe, check_reply, fallback_lines, in_character_line
from sim.persona import (
    PERSONA_DIR,
    Persona,
    PersonaError,
    json_schema,
    load_personas,
    parse_persona,
)
from sim.postprocess import sentence_key
from web.persona_form import FORM_FIELDS, FORM_SECTIONS, form_to_yaml, yaml_to_form

PERSONAS = load_personas()
GARETH = PERSONAS["irate_broadband_outage"]
NATALIE = PERSONAS["irate_gym_cancellation"]
# a shipped persona that has no steer lines (its file is pinned by the stable formats)
AISHA_ID = "anxious_international_transfer"
AISHA_TEXT = (PERSONA_DIR / f"{AISHA_ID}.yaml").read_text(encoding="utf-8")
PROBES: list[Probe | None] = [None, Probe("injection", "ignore_instructions"), Probe("meta", "x")]


def with_steers(lines: Any, text: str = AISHA_TEXT) -> Persona:
    return parse_persona(text + yaml.safe_dump({"steer_lines": lines}), "aisha_s", "aisha_s.yaml")


def problems(lines: Any) -> str:
    with pytest.raises(PersonaError) as err:
        with_steers(lines)
    return str(err.value)


def steer_of(line: str, persona: Persona) -> str:
    """The steer part of a fallback line: what follows the opener."""
    return next(s for s in [*persona.steer_lines, line] if line.endswith(s))


# --- in the fallback lines --------------------------------------------------------------------
def test_two_irate_customers_in_the_same_mood_no_longer_say_the_same_steer() -> None:
    for probe in PROBES:
        for mood in (2.0, 6.0, 9.5):
            gareth = fallback_lines(GARETH, probe, mood)
            natalie = fallback_lines(NATALIE, probe, mood)
            assert not set(gareth) & set(natalie)
            # the first line each says is their own, with the product masked out too
            g = in_character_line(GARETH, probe, mood).replace(
                "Fibre 150 home broadband", "<product>"
            )
            n = in_character_line(NATALIE, probe, mood).replace(
                "FlexForm 12-month flexible membership, £42.99 per month", "<product>"
            )
            assert g != n
            assert g.endswith(
                GARETH.steer_lines[0].replace("Fibre 150 home broadband", "<product>")
            )


def test_steer_lines_come_first_whatever_the_mood_and_are_said_as_written() -> None:
    p = with_steers(["Honestly, where has my rent money gone?", "Sorry, is my money lost??"])
    for probe in PROBES:
        for mood in (1.0, 5.0, 9.5):
            lines = fallback_lines(p, probe, mood)
            openers = len(lines) // (len(p.steer_lines) + 6)
            assert all(ln.endswith(" " + p.steer_lines[0]) for ln in lines[:openers])
            assert all(ln.endswith(" " + p.steer_lines[1]) for ln in lines[openers : 2 * openers])
            # the generic steers follow, as before
            assert not any(ln.endswith(tuple(p.steer_lines)) for ln in lines[2 * openers :])
            assert in_character_line(p, probe, mood).endswith(p.steer_lines[0])


def test_a_session_moves_on_from_a_steer_line_already_said() -> None:
    p = with_steers(["Honestly, where has my rent money gone?", "Sorry, is my money lost??"])
    earlier = [p.opening_line]
    for seed in range(3):
        earlier.append(in_character_line(p, None, 6.0, seed, earlier))
    steers = [steer_of(ln, p) for ln in earlier[1:]]
    assert steers[:2] == p.steer_lines and steers[2] not in p.steer_lines
    keys = [sentence_key(s) for s in steers]
    assert len(set(keys)) == 3


@pytest.mark.parametrize("pid", sorted(p for p in PERSONAS if PERSONAS[p].steer_lines))
def test_shipped_steer_lines_are_short_public_and_in_character(pid: str) -> None:
    p = PERSONAS[pid]
    assert 3 <= len(p.steer_lines) <= 4
    for line in p.steer_lines:
        assert 6 <= len(line.split()) <= 20, line
        assert check_reply(line, p, p.hidden_facts) == [], line
    assert len({sentence_key(s) for s in p.steer_lines}) == len(p.steer_lines)


def test_every_shipped_persona_but_the_pinned_one_has_steer_lines() -> None:
    assert [pid for pid, p in PERSONAS.items() if not p.steer_lines] == [AISHA_ID]


# --- without steer lines, as before -----------------------------------------------------------
def test_a_persona_without_steer_lines_falls_back_exactly_as_before() -> None:
    aisha = PERSONAS[AISHA_ID]
    assert aisha.steer_lines == [] and "steer_lines" not in AISHA_TEXT
    lines = fallback_lines(aisha, None, 2.0)
    product = "Everyday current account, international payment"
    assert len(lines) == 30
    assert lines[0] == (
        "Sorry, I'm not quite sure what you mean. "
        f"Could we get back to the problem with the {product}, please?"
    )
    assert lines[5] == (
        f"Sorry, I'm not quite sure what you mean. I'd really just like some help with the {product}."
    )
    assert lines[-1] == (
        f"I don't really know what to say to that. I only got in touch about the {product}."
    )
    # an empty list is the same as leaving the field out
    same = with_steers([])
    for probe in PROBES:
        for mood in (2.0, 6.0, 9.5):
            for seed in (0, 7):
                assert fallback_lines(same, probe, mood, seed) == fallback_lines(
                    aisha, probe, mood, seed
                )


# --- validation -------------------------------------------------------------------------------
def test_steer_lines_load_and_are_stripped() -> None:
    p = with_steers(["  Sorry, is my money lost??  "])
    assert p.steer_lines == ["Sorry, is my money lost??"]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            ["Sorry, " + "really " * 29 + "lost?"],
            "aisha_s.yaml: steer_lines.0: Value error, has 31 words; a steer line has at most 30",
        ),
        (
            ["Sorry, is it lost?", "Where is the {product}?"],
            "aisha_s.yaml: steer_lines.1: Value error, must not contain '{' or '}': "
            "a steer line is said exactly as written",
        ),
        (["   "], "aisha_s.yaml: steer_lines.0: String should have at least 1 character"),
        (["Is it lost?"] * 9, "aisha_s.yaml: steer_lines: List should have at most 8 items"),
        ("Is it lost?", "aisha_s.yaml: steer_lines: Input should be a valid list"),
    ],
)
def test_bad_steer_lines_are_named(lines: Any, problem: str) -> None:
    assert problem in problems(lines)


def test_a_steer_line_that_gives_away_a_hidden_fact_is_refused() -> None:
    text = problems(["Sorry, is it lost?", "My reference is NGB-INTL-88231645, is it lost??"])
    assert "aisha_s.yaml: steer_lines: Value error," in text
    assert "gives away hidden fact confirmation_email" in text
    assert "NGB-INTL-88231645" in text  # the line is quoted
    # words of the public problem are fine
    assert with_steers(["Sorry, where is the money I sent abroad on Monday??"]).steer_lines


def test_json_schema_knows_steer_lines() -> None:
    schema = json_schema()
    data = yaml.safe_load(AISHA_TEXT)
    jsonschema.validate({**data, "steer_lines": ["Sorry, is it lost?"]}, schema)
    for bad in (["Is it lost?"] * 9, [""], "Is it lost?"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**data, "steer_lines": bad}, schema)


# --- the Studio form --------------------------------------------------------------------------
def test_the_studio_form_edits_steer_lines_one_per_line() -> None:
    field = next(f for f in FORM_FIELDS if f.path == "steer_lines")
    assert field.kind == "lines" and "(optional)" in field.label
    assert field.help.endswith("One per line.")
    character = next(paths for title, paths, _ in FORM_SECTIONS if title == "Character")
    assert character.index("steer_lines") == character.index("speaking_style") + 1
    i = FORM_FIELDS.index(field)
    text = (PERSONA_DIR / "irate_broadband_outage.yaml").read_text(encoding="utf-8")
    values = yaml_to_form(text)
    assert values[i].splitlines() == GARETH.steer_lines
    values[i] = values[i] + "\n\n  Now in a minute, fix the Fibre 150 home broadband.  \n"
    again = parse_persona(form_to_yaml(values), "gareth_form", "gareth_form.yaml")
    assert again.steer_lines == [
        *GARETH.steer_lines,
        "Now in a minute, fix the Fibre 150 home broadband.",
    ]
    # left empty, the field stays out of the file
    values[i] = ""
    assert "steer_lines" not in form_to_yaml(values)
    assert parse_persona(form_to_yaml(values), "gareth_form", "g.yaml").steer_lines == []
