"""bench/realism_cost.py: the realism checks timed alone, on and off, per turn."""

from __future__ import annotations

import pytest

from bench.realism_cost import check_cost
from sim.persona import load_personas


def test_check_cost_times_each_turns_first_sentence_on_and_off() -> None:
    persona = load_personas()["irate_broadband_outage"]
    agents = ["What happened?", "When did it start?"]
    replies = ["It stopped this morning. Nothing works", "Seven. I need it today. Please."]
    rows = check_cost(persona, agents, replies, reps=3)
    assert [r["turn"] for r in rows] == [1, 2]
    # the first piece released, as the stream releases it: the first complete sentence
    assert [r["first_sentence"] for r in rows] == ["It stopped this morning.", "Seven."]
    for r in rows:
        assert r["first_on_s"] > 0 and r["first_off_s"] > 0
        assert r["first_extra_s"] == r["first_on_s"] - r["first_off_s"]


def test_check_cost_refuses_replies_that_do_not_match_the_turns() -> None:
    persona = load_personas()["irate_broadband_outage"]
    with pytest.raises(ValueError):
        check_cost(persona, ["What happened?"], [], reps=1)
