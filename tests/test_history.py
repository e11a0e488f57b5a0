"""History, replay, progress, exports and hints over hand-built and live sessions, with the
role rules applied to every data-returning function."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from common.techniques import TECHNIQUES
from rubric.feedback import Feedback, Instance, TechniqueFeedback
from rubric.grader import TurnGrade, Verdict
from rubric.guidance import Passage
from sim.director import Cause, DirectorState, Step
from sim.persona import Persona, load_personas
from storage import SessionStore
from training.history import (
    HIDDEN_NOTE,
    HINT_TEXT,
    HintsDisabled,
    choose_hint,
    export_session_html,
    export_session_json,
    export_session_markdown,
    export_sessions_csv,
    hint_for,
    list_history,
    plot_progress,
    progress,
    session_replay,
)
from training.users import LOCAL_USER, PermissionDenied, User, UserStore, assign, start_assessment

IRATE = "irate_broadband_outage"
CONFUSED = "confused_energy_bill"
ALICE = User("alice", "trainee")
BOB = User("bob", "trainee")
TESS = User("tess", "trainer")
LABELS = {
    "listen": "Listen: ask",
    "validate": "Validate: name it",
    "cooperate": "Cooperate: fix",
    "affirm": "Affirm: restate",
}
XSS = "What happened? <script>alert(1)</script> [click](javascript:alert(1)) *bold* & &amp;"
PRIVATE_LINE = "I understand, that sounds awful."


@pytest.fixture(scope="module")
def personas() -> dict[str, Persona]:
    return load_personas()


def build(
    store: SessionStore,
    user: str | None,
    persona_id: str,
    lines: list[str],
    moods: list[float],
    used: dict[str, list[int]],
    *,
    private: bool = False,
    outcome: str | None = None,
    mode: str = "practice",
    graded: bool = True,
    ended: bool = True,
) -> str:
    """A stored session as the app leaves it: director state in the turn metadata and the
    feedback saved in ``rubric.feedback``'s shape. ``used`` maps a technique to the agent
    message numbers (1-based) that used it; ``moods`` is the start mood, then one per reply."""
    sid = store.create_session(persona_id, "v1", {}, user, private)
    state = DirectorState(mood=moods[0])
    store.add_turn(
        sid,
        "customer",
        "Opening.",
        {"opening": True, "director_state": state.model_dump(mode="json")},
    )
    grades: list[TurnGrade] = []
    instances: dict[str, list[Instance]] = {t: [] for t in TECHNIQUES}
    for n, (line, mood) in enumerate(zip(lines, moods[1:], strict=True), start=1):
        hits = [t for t in TECHNIQUES if n in used.get(t, [])]
        new = DirectorState(turn=n, mood=mood, heard=bool(hits))
        step = Step(
            turn=n,
            mood_before=state.mood,
            mood_after=mood,
            causes=[Cause(kind="technique", id=t, delta=-0.5, evidence=line) for t in hits],
            unlocked=[],
            offers=[],
            resolution_met=False,
            outcome="open",
            exit=None,
            state=new,
        )
        agent = store.add_turn(
            sid,
            "agent",
            line,
            {"step": step.model_dump(mode="json"), "signals": {t: t in hits for t in TECHNIQUES}},
        )
        store.add_turn(
            sid, "customer", f"Reply {n}.", {"director_state": new.model_dump(mode="json")}
        )
        grades.append(
            TurnGrade(
                index=agent.idx,
                techniques={
                    t: Verdict(used=t in hits, evidence=line if t in hits else None)
                    for t in TECHNIQUES
                },
            )
        )
        for t in hits:
            instances[t].append(Instance(index=agent.idx, turn=n, quote=line))
        state = new
    if graded:
        fb = Feedback(
            techniques=[
                TechniqueFeedback(
                    id=t,
                    label=LABELS[t],
                    status="used" if instances[t] else "missed",
                    instances=instances[t],
                )
                for t in TECHNIQUES
            ],
            markers=[],
            summary="Summary text.",
            grades=grades,
            rubric_version=1,
        )
        store.save_feedback(sid, fb.model_dump(mode="json"))
    if outcome:
        store.set_outcome(sid, outcome)
    if mode != "practice":
        store.set_mode(sid, mode)
    if ended:
        store.end_session(sid)
    return sid


@dataclass
class World:
    store: SessionStore
    a1: str
    a2: str
    a3: str
    a4: str
    a5: str
    b1: str


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = SessionStore(tmp_path / "db.sqlite3")
    a1 = build(
        store,
        "alice",
        IRATE,
        ["I can hear how stressful this is.", "When did it start?"],
        [8, 7, 6],
        {"validate": [1], "listen": [2]},
        outcome="resolved",
    )
    a2 = build(store, "alice", CONFUSED, ["Please hold."], [4, 4.5], {})
    a3 = build(store, "alice", IRATE, [XSS], [8, 7.4], {"listen": [1]}, mode="assessment")
    a4 = build(
        store,
        "alice",
        IRATE,
        [PRIVATE_LINE],
        [8, 7],
        {"validate": [1]},
        private=True,
        outcome="gave_up",
    )
    a5 = build(store, "alice", IRATE, ["Hello?"], [8, 8], {}, graded=False, ended=False)
    b1 = build(store, "bob", IRATE, ["What went wrong?"], [8, 7.5], {"listen": [1]})
    yield World(store, a1, a2, a3, a4, a5, b1)
    store.close()


# --- history -----------------------------------------------------------------------------
def test_history_rows_and_role_filtering(world: World, personas: dict[str, Persona]) -> None:
    rows = list_history(world.store, ALICE, personas=personas)
    assert [r.session_id for r in rows] == [world.a5, world.a4, world.a3, world.a2, world.a1]
    by = {r.session_id: r for r in rows}
    a1 = by[world.a1]
    assert (a1.outcome, a1.techniques_used, a1.mode, a1.private) == (
        "resolved",
        ["listen", "validate"],
        "practice",
        False,
    )
    assert a1.persona_name == "Gareth Pryce" and a1.archetype == "irate" and a1.final_mood == 6
    assert by[world.a2].outcome == "ended" and by[world.a2].techniques_used == []
    assert by[world.a3].mode == "assessment"
    assert by[world.a4].outcome == "gave_up" and by[world.a4].private
    assert by[world.a4].transcript_visible
    assert by[world.a5].outcome == "open" and not by[world.a5].graded
    assert all(r.user_id == "alice" for r in rows)

    assert [r.session_id for r in list_history(world.store, BOB, personas=personas)] == [world.b1]
    everyone = list_history(world.store, TESS, personas=personas)
    assert {r.session_id for r in everyone} == {*by, world.b1}
    assert not next(r for r in everyone if r.session_id == world.a4).transcript_visible
    assert len(list_history(world.store, LOCAL_USER, personas=personas)) == 6
    only_alice = list_history(world.store, TESS, personas=personas, trainee="alice")
    assert {r.session_id for r in only_alice} == set(by)
    with pytest.raises(PermissionDenied):
        list_history(world.store, BOB, personas=personas, trainee="alice")


def test_history_filters(world: World, personas: dict[str, Persona]) -> None:
    no_assessments = list_history(world.store, ALICE, include_assessments=False, personas=personas)
    assert world.a3 not in {r.session_id for r in no_assessments} and len(no_assessments) == 4
    confused = list_history(world.store, ALICE, "confused", personas=personas)
    assert [r.session_id for r in confused] == [world.a2]
    assert len(list_history(world.store, ALICE, "irate", personas=personas)) == 4


# --- replay ------------------------------------------------------------------------------
def test_replay_annotates_turns_and_trace(world: World, personas: dict[str, Persona]) -> None:
    r = session_replay(world.store, personas, ALICE, world.a1)
    assert r.transcript is not None and not r.transcript_hidden
    assert [t.role for t in r.transcript] == ["customer", "agent", "customer", "agent", "customer"]
    first, second = r.transcript[1], r.transcript[3]
    assert first.techniques == ["validate"] and first.quotes == {"validate": first.text}
    assert second.techniques == ["listen"] and first.mood == 7 and second.mood == 6
    assert r.scores == {
        "listen": "used",
        "validate": "used",
        "cooperate": "missed",
        "affirm": "missed",
    }
    assert [p["mood"] for p in r.trace] == [8, 7, 6]
    assert r.trace[1]["evidence"] == "I can hear how stressful this is."
    assert r.outcome == "resolved" and r.final_mood == 6 and r.persona_name == "Gareth Pryce"
    assert session_replay(world.store, personas, TESS, world.a1).transcript is not None


def test_replay_permissions_and_private(world: World, personas: dict[str, Persona]) -> None:
    with pytest.raises(PermissionDenied):
        session_replay(world.store, personas, BOB, world.a1)
    with pytest.raises(PermissionDenied):
        session_replay(world.store, personas, ALICE, world.b1)
    with pytest.raises(KeyError):
        session_replay(world.store, personas, TESS, "nope")
    own = session_replay(world.store, personas, ALICE, world.a4)
    assert own.transcript is not None and own.feedback is not None and "grades" in own.feedback
    seen = session_replay(world.store, personas, TESS, world.a4)
    assert seen.transcript is None and seen.transcript_hidden
    assert seen.scores["validate"] == "used"  # scores yes
    assert seen.feedback is not None and seen.feedback["redacted"]
    assert [t["count"] for t in seen.feedback["techniques"]] == [0, 1, 0, 0]
    assert [p["mood"] for p in seen.trace] == [8, 7]
    assert all(p["evidence"] is None for p in seen.trace)
    assert PRIVATE_LINE not in json.dumps(asdict(seen))  # words no


# --- progress ----------------------------------------------------------------------------
def test_progress_numbers(world: World, personas: dict[str, Persona]) -> None:
    d = progress(world.store, personas, ALICE)
    assert d.subject == "alice" and d.ungraded == 1
    assert d.techniques == list(TECHNIQUES)
    pr, asmt = d.practice, d.assessment
    assert [p.session_id for p in pr.points] == [world.a1, world.a2, world.a4]
    assert [p.x for p in pr.points] == [1, 2, 4] and [p.x for p in asmt.points] == [3]
    assert pr.share["listen"] == [1.0, 0.5, 0.3333]
    assert pr.share["validate"] == [1.0, 0.5, 0.6667]
    assert pr.share["cooperate"] == [0.0, 0.0, 0.0]
    assert asmt.share["listen"] == [1.0] and asmt.share["validate"] == [0.0]
    assert pr.moods == [6, 4.5, 7] and asmt.moods == [7.4]
    assert [p.outcome for p in pr.points] == ["resolved", "ended", "gave_up"]

    rolling = progress(world.store, personas, ALICE, window=1)
    assert rolling.practice.share["listen"] == [1.0, 0.0, 0.0]
    confused = progress(world.store, personas, ALICE, "confused")
    assert [p.session_id for p in confused.practice.points] == [
        world.a2
    ] and not confused.assessment.points


def test_progress_permissions(world: World, personas: dict[str, Persona]) -> None:
    with pytest.raises(PermissionDenied):
        progress(world.store, personas, BOB, trainee="alice")
    assert progress(world.store, personas, ALICE, trainee="alice").practice.points
    for_tess = progress(world.store, personas, TESS, trainee="alice")
    assert len(for_tess.practice.points) == 3
    assert [p.session_id for p in progress(world.store, personas, BOB).practice.points] == [
        world.b1
    ]
    assert not progress(world.store, personas, LOCAL_USER).points  # no sessions without a user


def test_plot_progress(world: World, personas: dict[str, Persona]) -> None:
    fig = plot_progress(progress(world.store, personas, ALICE))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert any(line.get_marker() == "D" for line in fig.axes[0].lines)  # assessments marked
    assert fig.axes[1].get_ylim() == (0.0, 10.0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    empty = plot_progress(progress(world.store, personas, LOCAL_USER))
    assert isinstance(empty, Figure)
    empty.savefig(io.BytesIO(), format="png")


# --- exports -----------------------------------------------------------------------------
def test_export_json_is_grade_input(world: World) -> None:
    data = export_session_json(world.store, ALICE, world.a1)
    assert data["id"] == world.a1 and data["persona"] == IRATE and data["outcome"] == "resolved"
    assert data["turns"][1] == {"role": "agent", "text": "I can hear how stressful this is."}
    assert all(
        t["role"] in ("customer", "agent") and isinstance(t["text"], str) for t in data["turns"]
    )
    assert Feedback.model_validate(data["feedback"]).techniques[0].id == "listen"
    json.dumps(data)
    with pytest.raises(PermissionDenied):
        export_session_json(world.store, BOB, world.a1)
    hidden = export_session_json(world.store, TESS, world.a4)
    assert hidden["turns"] == [] and hidden["transcript_hidden"]
    assert hidden["feedback"]["redacted"] and PRIVATE_LINE not in json.dumps(hidden)
    assert export_session_json(world.store, ALICE, world.a4)["turns"]


def test_export_markdown(world: World, personas: dict[str, Persona]) -> None:
    md = export_session_markdown(world.store, ALICE, world.a1, personas)
    assert md.startswith("# Rapport session report")
    assert "Gareth Pryce (Lumenline Broadband)" in md and "resolved" in md
    assert "### Validate: name it — used" in md and "### Cooperate: fix — missed" in md
    assert "I can hear how stressful this is." in md  # the quote and the transcript line
    assert "**Agent (2):** When did it start?" in md and "**Gareth:** Opening." in md
    with pytest.raises(PermissionDenied):
        export_session_markdown(world.store, BOB, world.a1, personas)
    hidden = export_session_markdown(world.store, TESS, world.a4, personas)
    assert HIDDEN_NOTE in hidden and PRIVATE_LINE not in hidden and "gave up" in hidden
    assert PRIVATE_LINE in export_session_markdown(world.store, ALICE, world.a4, personas)
    xss = export_session_markdown(world.store, ALICE, world.a3, personas)
    assert "<script>" not in xss and "&lt;script&gt;" in xss
    assert r"\[click\]" in xss and r"\*bold\*" in xss


def _renderers() -> list[str]:
    out = ["auto", "plain"]
    for name, module in (("markdown", "markdown"), ("markdown-it", "markdown_it")):
        try:
            __import__(module)
        except ImportError:
            continue
        out.append(name)
    return out


@pytest.mark.parametrize("renderer", _renderers())
def test_export_html_escapes_stored_text(
    world: World, personas: dict[str, Persona], renderer: str
) -> None:
    page = export_session_html(world.store, ALICE, world.a3, personas, renderer=renderer)
    assert page.startswith("<!doctype html>") and "</html>" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript' not in page and "<a " not in page
    assert "&amp;amp;" in page  # a literal "&amp;" the trainee typed stays literal
    assert "Rapport session report" in page and "Gareth Pryce" in page
    hidden = export_session_html(world.store, TESS, world.a4, personas, renderer=renderer)
    assert PRIVATE_LINE not in hidden
    with pytest.raises(PermissionDenied):
        export_session_html(world.store, BOB, world.a3, personas, renderer=renderer)


def test_export_csv(world: World) -> None:
    with pytest.raises(PermissionDenied):
        export_sessions_csv(world.store, ALICE)
    text = export_sessions_csv(world.store, TESS)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "id",
        "user",
        "persona",
        "date",
        "mode",
        "outcome",
        "final_mood",
        "listen",
        "validate",
        "cooperate",
        "affirm",
        "private",
    ]
    recs = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert len(recs) == 6
    a1 = recs[world.a1]
    assert (a1["user"], a1["persona"], a1["mode"], a1["outcome"], a1["final_mood"]) == (
        "alice",
        IRATE,
        "practice",
        "resolved",
        "6",
    )
    assert [a1[t] for t in TECHNIQUES] == ["1", "1", "0", "0"] and a1["private"] == "0"
    assert recs[world.a3]["mode"] == "assessment" and recs[world.a3]["listen"] == "1"
    assert recs[world.a4]["private"] == "1" and recs[world.a4]["validate"] == "1"
    assert [recs[world.a5][t] for t in TECHNIQUES] == ["", "", "", ""]  # not graded
    assert recs[world.b1]["user"] == "bob"
    assert PRIVATE_LINE not in text and "<script>" not in text
    assert len(export_sessions_csv(world.store, LOCAL_USER).splitlines()) == 7


# --- hints -------------------------------------------------------------------------------
class StubGuidance:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str | None, int]] = []
        self.fail = fail

    def search(self, query: str, tag: str | None = None, k: int = 3) -> list[Passage]:
        self.calls.append((query, tag, k))
        if self.fail:
            raise RuntimeError("chroma is down")
        return [
            Passage(
                f"{tag}-passage", f"About {tag}", "guidance/x.md", "Say what you see.", (tag or "",)
            )
        ]


def test_hints_follow_the_conversation_and_are_recorded(practice, fake) -> None:  # type: ignore[no-untyped-def]
    s = practice.start(IRATE, "alice")
    g = StubGuidance()
    h = hint_for(s, g)
    assert h.kind == "validate" and h.text == HINT_TEXT["validate"]
    assert "name it before offering a fix" in h.text
    assert h.guidance_id == "validate-passage" and h.guidance_title == "About validate"
    assert g.calls[0][1] == "validate" and g.calls[0][2] == 1
    hints = practice.store.session_extras(s.id)["hints"]
    assert [x["kind"] for x in hints] == ["validate"] and hints[0][
        "guidance_id"
    ] == "validate-passage"

    fake.enqueue(["Right. Fine.", "Tuesday there was a van at the cabinet."])
    list(s.respond("That sounds so stressful."))
    assert s.state().mood >= 7  # still upset, but validated: no more validate tip
    assert hint_for(s).kind == "listen"
    list(s.respond("When did it start, and what have you tried with the router?"))
    assert hint_for(s, StubGuidance(fail=True)) == hint_for(s, None, record=False)
    assert hint_for(s, None, record=False).kind == "affirm"
    kinds = [x["kind"] for x in practice.store.session_extras(s.id)["hints"]]
    assert kinds == ["validate", "listen", "affirm"]


def test_hints_are_refused_in_assessment_mode(practice) -> None:  # type: ignore[no-untyped-def]
    UserStore(practice.store, rounds=4).add_user("alice", "trainee", "alice-password")
    aid = assign(practice.store, TESS, IRATE, assigned_to="alice").id
    s = start_assessment(practice, ALICE, aid)
    with pytest.raises(HintsDisabled, match="assessment"):
        hint_for(s, StubGuidance())
    with pytest.raises(PermissionDenied):  # HintsDisabled is a PermissionDenied
        hint_for(s)
    assert practice.store.session_extras(s.id)["hints"] == []


def test_choose_hint_rules(practice, personas: dict[str, Persona]) -> None:  # type: ignore[no-untyped-def]
    p = personas[IRATE]
    s = practice.start(IRATE, "alice")
    rec = s.record
    all_facts = [f.id for f in p.hidden_facts]
    assert choose_hint(p, rec, DirectorState(mood=8)) == ("validate", "validate")
    assert choose_hint(p, rec, DirectorState(mood=5)) == ("listen", "listen")
    assert choose_hint(p, rec, DirectorState(mood=3, unlocked=all_facts)) == (
        "cooperate",
        "cooperate",
    )
    met = DirectorState(mood=3, unlocked=all_facts, cooperated=True, offers=["engineer", "today"])
    assert choose_hint(p, rec, met) == ("affirm", "affirm")
    over = DirectorState(mood=3, outcome="resolved", exit="accepted")
    assert choose_hint(p, rec, over) == ("over", None)
    s.end()
    h = hint_for(s)
    assert h.kind == "over" and practice.store.session_extras(s.id)["hints"] == []
