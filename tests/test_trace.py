"""The mood meter, the emotion trace and "Retry from here", without a real model."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from matplotlib.figure import Figure

from providers.fake import ScriptedChatModel
from sim.director import Director, Signals, Step, feeling
from sim.persona import Persona, load_personas
from sim.practice import InputRejected, Practice
from sim.trace import mood_meter_html, plot_trace, retry_choices, trace_list_html, trace_points

PERSONAS = load_personas()
PID = "irate_broadband_outage"
VALIDATE = Signals(
    listen=False,
    validate=True,
    cooperate=False,
    affirm=False,
    evidence={"validate": "that sounds <really> maddening"},
)
LISTEN = Signals(listen=True, validate=False, cooperate=False, affirm=False)
DISMISS = Signals(
    listen=False,
    validate=False,
    cooperate=False,
    affirm=False,
    dismissive=True,
    evidence={"dismissive": "calm down"},
)
NOTHING = Signals(listen=False, validate=False, cooperate=False, affirm=False)


def run_director(persona: Persona, signals: list[Signals]) -> list[tuple[int, Step]]:
    """Agent turns at idx 1, 3, 5…, as in a stored session."""
    d = Director(persona)
    state = d.start()
    out = []
    for i, s in enumerate(signals):
        step = d.step(state, f"agent message {i + 1}", s)
        out.append((2 * i + 1, step))
        state = step.state
    return out


def mood(html_text: str) -> float:
    m = re.search(r'class="rp-mood" data-mood="([0-9.]+)"', html_text)
    assert m, html_text
    return float(m.group(1))


def test_trace_points_follow_the_steps() -> None:
    p = PERSONAS[PID]
    steps = run_director(p, [VALIDATE, DISMISS, LISTEN, NOTHING])
    points = trace_points(p.emotional_baseline, steps, {3: "agent message 2", 7: "agent four"})
    assert [pt["turn"] for pt in points] == [0, 1, 2, 3, 4]
    assert points[0]["mood"] == p.emotional_baseline and points[0]["agent_idx"] is None
    assert [pt["mood"] for pt in points[1:]] == [s.mood_after for _, s in steps]
    assert [pt["delta"] for pt in points[1:]] == [s.delta for _, s in steps]
    assert [pt["agent_idx"] for pt in points[1:]] == [1, 3, 5, 7]
    assert [pt["cause"] for pt in points[1:]] == [
        "validate",
        "dismissive",
        "listen",
        "no_technique",
    ]
    assert [pt["kind"] for pt in points[1:]] == ["technique", "marker", "technique", "idle"]
    assert (
        points[1]["delta"] < 0 < points[2]["delta"] and points[3]["delta"] < 0 < points[4]["delta"]
    )
    # the grader's quote where there is one; the agent's own message for an idle turn
    assert points[1]["evidence"] == "that sounds <really> maddening"
    assert points[2]["evidence"] == "calm down"
    assert points[3]["evidence"] is None  # no quote and no text given for idx 5
    assert points[4]["evidence"] == "agent four" and points[4]["label"] == "no technique"


def test_plot_trace_draws_one_line_of_moods_with_an_annotation_per_move() -> None:
    p = PERSONAS[PID]
    steps = run_director(p, [VALIDATE, DISMISS, LISTEN])
    points = trace_points(p.emotional_baseline, steps)
    fig = plot_trace(p.name, points)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert len(ax.lines) == 1
    assert list(ax.lines[0].get_ydata()) == [pt["mood"] for pt in points]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2, 3]
    assert ax.get_ylim() == (0.0, 10.0)
    assert ax.get_xlabel() == "Your message #"
    assert ax.get_title() == "How Gareth felt"
    notes = [t.get_text() for t in ax.texts]
    assert notes == ["↓ validate", "↑ dismissive", "↓ listen"]
    colours = [t.get_color() for t in ax.texts]
    assert colours[0] == colours[2] != colours[1]
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders headless


def test_plot_skips_turns_that_did_not_move_the_mood() -> None:
    p = PERSONAS[PID]
    d = Director(p)
    state = d.start().model_copy(update={"mood": 10.0})
    step = d.step(state, "calm down", DISMISS)  # already at the top: no move
    assert step.delta == 0
    points = trace_points(10.0, [(1, step)])
    assert len(plot_trace(p.name, points).axes[0].texts) == 0
    assert "did not change" in trace_list_html(points)


def test_a_move_lists_every_cause_that_pushed_its_way() -> None:
    p = PERSONAS["grieving_cloud_photos"]  # validation then blame: the blame wins
    both = Signals(listen=True, validate=True, cooperate=False, affirm=False, dismissive=True)
    (pt,) = trace_points(p.emotional_baseline, run_director(p, [both]))[1:]
    assert pt["delta"] > 0 and pt["label"] == "dismissive"
    assert pt["labels"] == ["dismissive"]  # not the calming moves that pushed the other way
    assert "(dismissive)" in trace_list_html([{**pt, "turn": 0}, pt])


def test_trace_list_escapes_the_quotes() -> None:
    p = PERSONAS[PID]
    points = trace_points(p.emotional_baseline, run_director(p, [VALIDATE, DISMISS]))
    text = trace_list_html(points)
    assert "&lt;really&gt;" in text and "<really>" not in text
    assert "Message 1: distress fell" in text and "Message 2: distress rose" in text
    assert "(validate)" in text and "(dismissive)" in text


def test_meter_shows_mood_feeling_and_trend_escaped() -> None:
    p = PERSONAS[PID].model_copy(update={"name": "<b>Gareth</b> Pryce"})
    baseline = mood_meter_html(p, 8.0)
    assert mood(baseline) == 8.0
    assert "&lt;b&gt;Gareth&lt;/b&gt;" in baseline and "<b>Gareth" not in baseline
    assert feeling(p, 8.0) in baseline
    assert "rp-trend" not in baseline.replace(".rp-trend", "")
    (_, step), (_, step2) = run_director(p, [VALIDATE, DISMISS])
    down = mood_meter_html(p, step.mood_after, step, step.state)
    assert mood(down) == step.mood_after < 8.0
    assert "↓ validate" in down and 'style="width:' in down
    up = mood_meter_html(p, step2.mood_after, step2)
    assert "↑ dismissive" in up


def test_meter_says_when_the_conversation_is_over() -> None:
    p = PERSONAS[PID]
    d = Director(p)
    state = d.start().model_copy(update={"mood": 10.0, "turns_at_max": 5})
    step = d.step(state, "calm down", DISMISS)
    assert step.outcome == "gave_up"
    assert "asked for a manager" in mood_meter_html(p, step.mood_after, step, step.state)


# --- the app's flow on the fake model -------------------------------------------------------


@pytest.fixture
def handlers(practice: Practice) -> dict[str, Callable[..., Any]]:
    from app import build_app

    def no_grader() -> Any:
        raise RuntimeError("no grader in this test")

    demo = build_app(practice, no_grader)
    return {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}


def last(gen: Iterator[tuple[Any, ...]]) -> tuple[Any, ...]:
    out = None
    for out in gen:  # noqa: B007
        pass
    assert out is not None
    return out


def test_app_meter_trace_and_retry(
    practice: Practice, fake: ScriptedChatModel, handlers: dict[str, Callable[..., Any]]
) -> None:
    fake.enqueue(["It's been down since nine!", "Fine, I'll wait.", "It drops out every evening."])
    chat, sid, status, box, meter, *_ = handlers["on_start"](PID)
    baseline = mood(meter)
    assert baseline == PERSONAS[PID].emotional_baseline
    assert len(chat) == 1 and "Gareth" in status

    chat, box, status, meter, _sid = last(
        handlers["on_send"](
            "I'm so sorry, that must be really frustrating. Can you tell me what happened?",
            chat,
            sid,
        )
    )
    assert mood(meter) < baseline and status == ""
    assert chat[-1] == {"role": "assistant", "content": "It's been down since nine!"}
    chat, box, status, meter, _sid = last(handlers["on_send"]("That is not my problem.", chat, sid))
    assert chat[-1]["content"] == "Fine, I'll wait."

    original = [(t.idx, t.role, t.text) for t in practice.store.get_session(sid).turns]
    status, box, feedback, plot, trace_text, dropdown, button = handlers["on_end"](sid)
    assert "grading failed" in status and box["interactive"] is False
    assert isinstance(plot["value"], Figure) and plot["visible"] is True
    assert "Message 1: distress fell" in trace_text
    assert dropdown["choices"] == [
        ("#1: I'm so sorry, that must be really frustrating. Can you tell…", 1),
        ("#2: That is not my problem.", 3),
    ]
    assert dropdown["value"] == 1 and button["visible"] is True

    # retry from the second message: the state is the one after the first reply
    before = practice.resume(sid)
    expected_state = before.steps()[0][1].state
    out = handlers["on_retry"](sid, 3)
    chat, new_sid, status, box, meter, feedback, plot, *_ = out
    assert new_sid != sid
    assert status == "Rewound to before your message #2. Your original attempt is saved."
    assert box["interactive"] is True and feedback == "" and plot["visible"] is False
    new = practice.resume(new_sid)
    assert [(t.idx, t.role, t.text) for t in new.record.turns] == original[:3]
    assert new.state() == expected_state
    assert mood(meter) == expected_state.mood
    assert new.record.parent_id == sid
    assert [(t.idx, t.role, t.text) for t in practice.store.get_session(sid).turns] == original
    assert practice.store.get_session(sid).status == "ended"
    assert len(chat) == 3

    # sending continues the new session
    chat, box, status, meter, _sid = last(
        handlers["on_send"]("What can I do to help?", chat, new_sid)
    )
    assert chat[-1]["content"] == "It drops out every evening."
    assert len(practice.store.get_session(new_sid).turns) == 5


def test_app_reports_the_outcome_and_blocks_more_messages(
    practice: Practice, fake: ScriptedChatModel, handlers: dict[str, Callable[..., Any]]
) -> None:
    fake.enqueue(["Right, I want your manager."] * 6)
    chat, sid, *_ = handlers["on_start"](PID)
    status = ""
    for _ in range(6):
        chat, box, status, meter, _sid = last(
            handlers["on_send"]("Calm down, not my problem.", chat, sid)
        )
        if status:
            break
    session = practice.resume(sid)
    assert session.state().outcome == "gave_up"
    assert "manager" in status
    assert "asked for a manager" in meter
    _chat, box, status, _meter, _sid = last(handlers["on_send"]("Sorry, let me help.", chat, sid))
    assert status.startswith("⚠️") and "manager" in status and box == "Sorry, let me help."
    with pytest.raises(InputRejected):
        session.check_message("again")


def test_retry_choices_number_only_agent_messages(practice: Practice) -> None:
    s = practice.start(PID)
    assert retry_choices(s.record.turns) == []
