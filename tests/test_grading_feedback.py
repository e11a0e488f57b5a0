"""Grading: session feedback (rubric/feedback.py) and its HTML card (rubric/render.py).

Uses the session-shared grader whose guidance store holds the shipped corpus, so citations
are real passages retrieved from Chroma.
"""

from __future__ import annotations

import json
import re

import pytest

from rubric.feedback import Feedback, build_feedback, in_agent_voice
from rubric.grader import Grader, summarise
from rubric.render import render_feedback
from rubric.techniques import CORE_TECHNIQUES
from tests.test_grading_classifier import shared_grader

TURNS = [
    {
        "role": "customer",
        "text": "My router keeps dropping the connection every evening and I work from home, "
        "it's driving me mad.",
    },
    {
        "role": "agent",
        "text": "That sounds really frustrating, especially when you rely on it for work. "
        "When did the drops start?",
    },
    {"role": "customer", "text": "About a week ago. It cuts out around 7pm every night."},
    {"role": "agent", "text": "Please restart the router and call back if it happens again."},
]
XSS = "<script>alert(1)</script>"
NASTY = [
    {"role": "customer", "text": 'My bill is wrong <img src=x onerror="alert(2)"> & late.'},
    {"role": "agent", "text": f"I'm sorry the bill is wrong. {XSS} When was it issued?"},
]


@pytest.fixture(scope="module")
def grader(tmp_path_factory: pytest.TempPathFactory) -> Grader:
    g = shared_grader(tmp_path_factory, guidance=True)
    assert g.guidance is not None and g.guidance.count() > 0
    return g


@pytest.fixture(scope="module")
def feedback(grader: Grader) -> Feedback:
    return build_feedback(grader, TURNS)


def _agent_numbers(turns: list[dict[str, str]]) -> dict[int, int]:
    agent = [i for i, t in enumerate(turns) if t["role"] == "agent"]
    return {idx: n for n, idx in enumerate(agent, 1)}


def _last_customer_before(turns: list[dict[str, str]], i: int) -> str:
    return next((t["text"] for t in reversed(turns[:i]) if t["role"] == "customer"), "")


def test_one_entry_per_technique_with_status_from_the_grades(feedback: Feedback) -> None:
    assert [t.id for t in feedback.techniques] == list(CORE_TECHNIQUES)
    summary = summarise(feedback.grades, list(CORE_TECHNIQUES))
    for t in feedback.techniques:
        assert t.status in ("used", "missed", "not_scored")
        assert t.id in getattr(summary, t.status)
        assert t.label
    statuses = {t.status for t in feedback.techniques}
    assert {"used", "missed"} <= statuses, "the transcript is built to show both"
    assert [g.index for g in feedback.grades] == [1, 3]


def test_instances_quote_the_agent_verbatim_with_turn_numbers(feedback: Feedback) -> None:
    numbers = _agent_numbers(TURNS)
    by_tid = {t.id: t for t in feedback.techniques}
    for t in feedback.techniques:
        expected = [
            (g.index, g.techniques[t.id].evidence)
            for g in feedback.grades
            if g.techniques[t.id].used and g.techniques[t.id].evidence
        ]
        assert [(i.index, i.quote) for i in t.instances] == expected
        for inst in t.instances:
            assert TURNS[inst.index]["role"] == "agent"
            assert inst.quote and inst.quote in TURNS[inst.index]["text"]
            assert inst.turn == numbers[inst.index]
        if t.status == "used":
            assert t.instances
        else:
            assert not t.instances
    assert by_tid["listen"].status == "used"
    assert by_tid["listen"].instances[0].turn == 1


def test_citations_are_real_passages(feedback: Feedback, grader: Grader) -> None:
    store = grader.guidance
    assert store is not None
    for t in feedback.techniques:
        if t.status in ("used", "missed"):
            assert t.citations, t.id
        assert len(t.citations) <= 2
        assert len({c.id for c in t.citations}) == len(t.citations)
        tag = grader.rubric.get(t.id).guidance_tags[0]
        for c in t.citations:
            assert c.id and c.title and c.source and c.excerpt
            p = store.get_passage(c.id)
            assert p is not None, c.id
            assert (c.title, c.source) == (p.title, p.source)
            assert c.excerpt == p.excerpt[:600]
            assert tag in p.tags
        cited_by_verdicts = {
            pid for g in feedback.grades for pid in g.techniques[t.id].guidance_ids
        }
        assert {c.id for c in t.citations} <= cited_by_verdicts


def test_each_missed_technique_has_a_rewrite_of_the_agents_own_turn(
    feedback: Feedback, grader: Grader
) -> None:
    numbers = _agent_numbers(TURNS)
    missed = [t for t in feedback.techniques if t.status == "missed"]
    assert missed
    for t in missed:
        rw = t.rewrite
        assert rw is not None, t.id
        assert TURNS[rw.index]["role"] == "agent"
        assert rw.turn == numbers[rw.index]
        assert rw.original == TURNS[rw.index]["text"]
        assert rw.original in rw.suggestion
        assert "$" not in rw.suggestion  # every placeholder was filled
        template = grader.rubric.get(t.id).rewrite or ""
        if "$concern" in template:
            concern = in_agent_voice(_last_customer_before(TURNS, rw.index))
            assert concern and concern in rw.suggestion
        assert rw.example in grader.rubric.get(t.id).positive
    for t in feedback.techniques:
        if t.status != "missed":
            assert t.rewrite is None


def test_summary_mentions_the_counts(feedback: Feedback, grader: Grader) -> None:
    used = [t.id for t in feedback.techniques if t.status == "used"]
    missed = [t.id for t in feedback.techniques if t.status == "missed"]
    s = feedback.summary
    assert s.startswith(f"Across 2 of your turns you used {len(used)} of 4 techniques")
    for tid in used:
        n = next(len(t.instances) for t in feedback.techniques if t.id == tid)
        assert f"{tid} ({n}×)" in s
    if missed:
        assert "Missed: " + ", ".join(missed) in s
    assert feedback.rubric_version == grader.rubric.version


def test_markers_entry_is_consistent_with_the_grades(feedback: Feedback) -> None:
    assert [m.id for m in feedback.markers] == ["dismissive"]
    m = feedback.markers[0]
    flagged = [g.index for g in feedback.grades if g.markers["dismissive"].used]
    assert [i.index for i in m.instances] == flagged
    assert m.status == ("used" if flagged else "missed")
    for inst in m.instances:
        assert inst.quote in TURNS[inst.index]["text"]
    if m.instances:
        turns = ", ".join(str(i.turn) for i in m.instances)
        assert f"Watch for {m.label.lower()}: turn {turns}." in feedback.summary
    else:
        assert "Watch for" not in feedback.summary


def test_feedback_round_trips_through_json(feedback: Feedback) -> None:
    dumped = feedback.model_dump(mode="json")
    again = Feedback.model_validate(json.loads(json.dumps(dumped)))
    assert again == feedback
    assert again.model_dump(mode="json") == dumped


def test_no_agent_turns(grader: Grader) -> None:
    fb = build_feedback(grader, TURNS[:1])
    assert fb.summary.startswith("You ended the session before replying")
    assert all(t.status == "not_scored" and t.rewrite is None for t in fb.techniques)
    assert fb.grades == []


def test_precomputed_grades_are_used_as_given(grader: Grader, feedback: Feedback) -> None:
    grades = [g.model_copy(deep=True) for g in feedback.grades]
    for g in grades:
        for v in g.techniques.values():
            v.used, v.evidence = False, None
    fb = build_feedback(grader, TURNS, grades=grades)
    assert all(t.status == "missed" and t.rewrite is not None for t in fb.techniques)
    assert fb.summary.startswith("Across 2 of your turns you used 0 of 4 techniques.")
    # where each rewrite goes: cooperate on the last agent turn, affirm after the longest
    # customer turn, the others on the first agent turn
    where = {t.id: t.rewrite.index for t in fb.techniques if t.rewrite}
    assert where == {"listen": 1, "validate": 1, "cooperate": 3, "affirm": 1}
    longer_second = [*TURNS[:2], {"role": "customer", "text": TURNS[0]["text"] * 2}, TURNS[3]]
    fb2 = build_feedback(grader, longer_second, grades=grades)
    affirm = next(t for t in fb2.techniques if t.id == "affirm")
    assert affirm.rewrite is not None and affirm.rewrite.index == 3 and affirm.rewrite.turn == 2


# --- the HTML card ----------------------------------------------------------------------


def test_render_escapes_trainee_and_customer_text(grader: Grader) -> None:
    fb = build_feedback(grader, NASTY)
    html = render_feedback(fb, NASTY)
    assert XSS not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; late." in html
    # the agent's own quote is highlighted, still escaped
    assert "<mark>" in html
    for m in re.findall(r"<mark>(.*?)</mark>", html):
        assert "<" not in m


def test_render_has_one_chip_per_technique(feedback: Feedback) -> None:
    html = render_feedback(feedback, TURNS, about="<p id='about'>about</p>")
    chips = re.findall(r'<span class="rp-chip rp-(\w+)" data-technique="(\w+)">', html)
    assert [tid for _, tid in chips] == list(CORE_TECHNIQUES)
    assert [status for status, _ in chips] == [t.status for t in feedback.techniques]
    assert html.count('class="rp-chip ') == 4
    assert "<p id='about'>about</p>" in html  # trusted app HTML is passed through
    assert "You (1):" in html and "You (2):" in html
    for t in feedback.techniques:
        for c in t.citations:
            assert f"[{c.id} · {c.source}]" in html


# --- in_agent_voice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("customer", "expected"),
    [
        ("My router keeps dropping", "your router keeps dropping"),
        ("My router keeps dropping.", "your router keeps dropping"),
        ("I'm locked out of my account!", "you're locked out of your account"),
        ("We have been waiting for our refund", "you have been waiting for your refund"),
        ("Your engineer never turned up.", "my engineer never turned up"),
        (
            "Hi. The app deletes my notes whenever it updates. Fix it.",
            "the app deletes your notes whenever it updates",
        ),
        ("", ""),
    ],
)
def test_in_agent_voice_swaps_pronouns(customer: str, expected: str) -> None:
    assert in_agent_voice(customer) == expected


def test_in_agent_voice_is_bounded() -> None:
    long = "My " + " ".join(["very"] * 60) + " long complaint"
    assert len(in_agent_voice(long).split()) == 22


def test_in_agent_voice_keeps_grammar() -> None:
    assert in_agent_voice("I was charged twice for my order.") == (
        "you were charged twice for your order"
    )
    assert in_agent_voice("I told you already, it is broken!") == (
        "you told me already, it is broken"
    )
