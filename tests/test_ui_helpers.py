"""The app's History / hint / Studio helpers, and the role checks in the app's handlers.

The handlers are called as the Gradio API would call them: with a request that carries
only a ``username``. Nothing here relies on what the page hides."""

from __future__ import annotations

import inspect
import json
import shutil
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from providers.fake import ScriptedChatModel
from sim.persona import PERSONA_DIR, PersonaSpec, load_personas, parse_persona
from sim.practice import Practice
from sim.probe_check import CheckReport, CheckResult
from storage import SessionStore
from tests.test_history import XSS, build
from training.history import HIDDEN_NOTE, Hint, list_history, progress, session_replay
from training.persona_repo import PersonaRepo
from training.users import LOCAL_USER, User, UserStore
from web.formatting import write_download
from web.history_view import (
    HISTORY_HEADERS,
    history_choices,
    history_table,
    progress_figure,
    replay_feedback_html,
    replay_html,
)
from web.persona_form import (
    FORM_FIELDS,
    FORM_SECTIONS,
    blank_form,
    data_to_yaml,
    form_to_data,
    form_to_yaml,
    problems_html,
    section_rows,
    yaml_to_form,
)
from web.practice_view import ASSESSMENT_METER, hint_html
from web.studio_view import (
    can_publish,
    check_report_html,
    library_table,
    version_choices,
    versions_table,
)

IRATE = "irate_broadband_outage"
CONFUSED = "confused_energy_bill"
TESS, ALICE, BOB = User("tess", "trainer"), User("alice", "trainee"), User("bob", "trainee")
PID = "parcel_delay"
REPLY = "Okay. I just want this sorted out."


def req(name: str | None) -> Any:
    """What the handlers read of ``gr.Request``."""
    return SimpleNamespace(username=name)


def index(field: str) -> int:
    return next(i for i, f in enumerate(FORM_FIELDS) if f.path == field)


def filled_form() -> list[Any]:
    values = blank_form()
    for path, value in {
        "name": "Priya Shah",
        "archetype": "irate",
        "difficulty": "medium",
        "scenario.company": "Swiftpost",
        "scenario.product": "Next-day delivery",
        "scenario.problem": "A parcel marked delivered never arrived.",
        "backstory": "A night-shift nurse.",
        "trainee_brief": "Tracking says delivered at 14:02.",
        "opening_line": "Your tracking says delivered. It wasn't.",
        "speaking_style": "Short and blunt.",
        "emotional_baseline": 6.0,
        "escalates_when": "the agent says it was delivered\nthe agent blames her",
        "softens_when": "the agent believes her",
        "hidden_facts": "neighbour | Her neighbour was out all day. | neighbour, doorstep",
        "resolution.description": "An investigation and a resend.",
        "resolution.satisfied_by": "investigation\nresend",
    }.items():
        values[index(path)] = value
    return values


# --- the Studio form ------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(PERSONA_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_form_and_yaml_round_trip_every_shipped_persona(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    values = yaml_to_form(text)
    again = form_to_yaml(values)
    a, b = parse_persona(text, path.stem, "a"), parse_persona(again, path.stem, "b")
    assert a.model_dump(exclude={"version"}) == b.model_dump(exclude={"version"})
    assert yaml_to_form(again) == values


def test_every_schema_field_has_an_input_with_its_description_as_help() -> None:
    spec_fields = set(PersonaSpec.model_fields)
    assert {f.path.split(".")[0] for f in FORM_FIELDS} == spec_fields
    for f in FORM_FIELDS:
        model = f.model
        assert f.key in model.model_fields
        desc = model.model_fields[f.key].description
        assert desc and f.help.startswith(desc)
        assert f.elem_id.startswith("studio-f-")
    assert FORM_FIELDS[index("emotional_baseline")].help.startswith(
        PersonaSpec.model_fields["emotional_baseline"].description or "?"
    )
    assert "(optional)" in FORM_FIELDS[index("mood.calm_rate")].label
    assert "(optional)" not in FORM_FIELDS[index("name")].label
    # the editor's sections hold every field exactly once
    laid_out = [f.path for _, paths, _ in FORM_SECTIONS for row in section_rows(paths) for f in row]
    assert sorted(laid_out) == sorted(f.path for f in FORM_FIELDS)
    assert all(len(row) <= 2 for _, paths, _ in FORM_SECTIONS for row in section_rows(paths))


def test_form_to_data_leaves_empty_fields_for_validation_to_name() -> None:
    repo = PersonaRepo(PERSONA_DIR)
    blank = form_to_data(blank_form())
    assert blank == {"scenario": {"channel": "chat"}, "resolution": {}}
    problems = repo.validate(form_to_yaml(blank_form()), PID)
    assert f"{PID}.yaml: name: Field required" in problems
    assert f"{PID}.yaml: scenario.company: Field required" in problems

    values = filled_form()
    data = form_to_data(values)
    assert data["emotional_baseline"] == 6 and isinstance(data["emotional_baseline"], int)
    assert data["hidden_facts"] == [
        {
            "id": "neighbour",
            "fact": "Her neighbour was out all day.",
            "topics": ["neighbour", "doorstep"],
        }
    ]
    assert "mood" not in data
    assert list(data)[:3] == ["name", "archetype", "difficulty"]
    assert repo.validate(form_to_yaml(values), PID) == []

    values[index("emotional_baseline")] = 42
    assert repo.validate(form_to_yaml(values), PID) == [
        f"{PID}.yaml: emotional_baseline: Input should be less than or equal to 10"
    ]
    values[index("mood.give_up_after")] = 3.0
    assert form_to_data(values)["mood"] == {"give_up_after": 3}
    with pytest.raises(ValueError):
        form_to_data(values[:-1])


def test_yaml_to_form_rejects_what_is_not_a_mapping_and_keeps_odd_values_visible() -> None:
    with pytest.raises(ValueError, match="invalid YAML"):
        yaml_to_form("name: [unclosed")
    with pytest.raises(ValueError, match="mapping"):
        yaml_to_form("- a list")
    values = yaml_to_form("name: Ann\narchetype: not-a-type\nemotional_baseline: high\n")
    assert values[index("name")] == "Ann"
    assert values[index("archetype")] is None and values[index("emotional_baseline")] is None
    assert yaml_to_form("") == yaml_to_form("{}")


def test_multiline_text_is_written_as_a_block() -> None:
    text = data_to_yaml({"name": "Ann", "backstory": "Line one.\nLine two."})
    assert "backstory: |" in text
    assert yaml.safe_load(text)["backstory"] == "Line one.\nLine two."
    assert data_to_yaml({}) == ""


def test_problems_html_escapes_and_says_when_valid() -> None:
    bad = problems_html(["x.yaml: name: <script>alert(1)</script>"], "x")
    assert "<script>" not in bad and "&lt;script&gt;" in bad and 'data-valid="false"' in bad
    assert 'data-valid="true"' in problems_html([], "x") and "x.yaml is valid" in problems_html(
        [], "x"
    )


def test_check_report_and_publish_rules() -> None:
    report = CheckReport(
        persona_id=PID,
        persona_version="abc",
        checks=[
            CheckResult(name="dismissive", passed=True, detail="mood rose"),
            CheckResult(
                name="in_character",
                passed=False,
                detail="<b>broke</b>",
                parts=[CheckResult(name="meta", passed=False, detail="said it was an AI")],
            ),
        ],
    )
    out = check_report_html(report)
    assert "PASS" in out and "FAIL" in out and "<b>broke</b>" not in out
    assert 'data-passed="false"' in out and "1 of 2 checks failed" in out
    assert can_publish(True, None) and can_publish(False, " because ")
    assert not can_publish(False, "  ") and not can_publish(False, None)


def test_library_and_versions_tables(tmp_path: Path) -> None:
    repo = PersonaRepo(tmp_path)
    repo.save_draft(PID, form_to_yaml(filled_form()), "tess", None, "first")
    repo.publish(PID, 1, "tess", check_passed=False, override_reason="by hand")
    rows = library_table(repo.list())
    assert rows == [[PID, "Priya Shah", "irate", "medium", "published", "v1", ""]]
    infos = repo.versions(PID)
    assert versions_table(infos)[0][0] == "v1" and versions_table(infos)[0][-1] == "by hand"
    assert version_choices(infos)[0][1] == 1 and "live" in version_choices(infos)[0][0]


def test_write_download_sanitises_the_name(tmp_path: Path) -> None:
    path = write_download("hello", "../../etc/pass wd.json", tmp_path)
    assert path.parent == tmp_path and path.name == "etc_pass_wd.json"
    assert path.read_text() == "hello"


# --- history helpers ------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore(tmp_path / "db.sqlite3")
    yield s
    s.close()


def test_history_rows_and_replay_escape_everything(store: SessionStore) -> None:
    personas = load_personas()
    sid = build(
        store, "alice", IRATE, [XSS, "I'm so sorry."], [8, 7, 6], {"listen": [1], "validate": [2]}
    )
    rows = list_history(store, ALICE, personas=personas)
    table = history_table(rows)
    assert len(table[0]) == len(HISTORY_HEADERS)
    assert table[0][0] == sid[:8] and table[0][2] == "alice" and "listen" in table[0][7]
    assert history_choices(rows)[0][1] == sid
    assert "alice" in history_choices(rows, show_user=True)[0][0]

    rp = session_replay(store, personas, ALICE, sid)
    out = replay_html(rp)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert 'data-technique="listen"' in out and 'data-technique="validate"' in out
    card = replay_feedback_html(rp)
    assert 'id="replay-feedback-card"' in card and 'id="feedback-card"' not in card
    assert "<script>alert" not in card


def test_a_private_replay_shows_a_trainer_scores_only(store: SessionStore) -> None:
    personas = load_personas()
    secret = "My secret words."
    sid = build(store, "alice", IRATE, [secret], [8, 7], {"validate": [1]}, private=True)
    rp = session_replay(store, personas, TESS, sid)
    out, card = replay_html(rp), replay_feedback_html(rp)
    assert HIDDEN_NOTE in out and secret not in out and secret not in card
    assert "validate: used" in card
    own = session_replay(store, personas, ALICE, sid)
    assert secret in replay_html(own)


def test_progress_figure_names_whose_progress(store: SessionStore) -> None:
    personas = load_personas()
    build(store, "alice", IRATE, ["Sorry."], [8, 7], {"validate": [1]})
    build(store, "alice", IRATE, ["Sorry."], [8, 6], {}, mode="assessment")
    data = progress(store, personas, TESS, trainee="alice")
    fig = progress_figure(data, "alice")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "alice's progress"
    assert progress_figure(data).axes[0].get_title() == "Your progress"


def test_hint_html_cites_the_passage_escaped() -> None:
    hint = Hint("Name the feeling.", "g1", "validate", "Validation <b>", "Say <i>it</i>.")
    out = hint_html(hint)
    assert "Name the feeling." in out and "&lt;i&gt;it&lt;/i&gt;" in out and "[g1]" in out
    assert "<blockquote>" not in hint_html(Hint("Ask.", kind="listen"))


# --- the handlers, with sign-in on ------------------------------------------------------------
@pytest.fixture
def app(practice: Practice, fake: ScriptedChatModel, tmp_path: Path) -> Iterator[SimpleNamespace]:
    practice.settings.auth = True
    users = UserStore(practice.store, rounds=4)
    for u in (TESS, ALICE, BOB):
        users.add_user(str(u.name), u.role, f"{u.name}-password")
    root = tmp_path / "personas"
    root.mkdir()
    for f in PERSONA_DIR.glob("*.yaml"):
        shutil.copy(f, root / f.name)
    repo = PersonaRepo(root)

    def no_grader() -> Any:
        raise RuntimeError("no grader in this test")

    from app import build_app

    demo = build_app(practice, no_grader, users=users, repo=repo)
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}
    fake.enqueue([REPLY] * 200)
    yield SimpleNamespace(fns=fns, practice=practice, repo=repo, store=practice.store)


def last(out: Any) -> Any:
    if inspect.isgenerator(out):
        item = None
        for item in out:  # noqa: B007
            pass
        return item
    return out


def chat_once(app: SimpleNamespace, who: str, persona: str = IRATE, private: bool = False) -> str:
    f = app.fns
    _, sid, *_ = f["on_start"](persona, private, req(who))
    last(f["on_send"]("I'm so sorry, that sounds awful. What happened?", [], sid, request=req(who)))
    f["on_end"](sid, req(who))
    return str(sid)


def refused(match: str = "") -> Any:
    return pytest.raises(gr.Error, match=match)


def test_gradio_fills_in_the_request_of_every_handler(app: SimpleNamespace) -> None:
    from gradio.utils import get_type_hints

    with_request = 0
    for name, fn in app.fns.items():
        if "request" not in inspect.signature(fn).parameters:
            continue
        with_request += 1
        hint = get_type_hints(fn).get("request")
        assert hint in (gr.Request, typing.Optional[gr.Request]), name  # noqa: UP045
    assert with_request >= 30


def test_sessions_record_the_signed_in_user_and_privacy(app: SimpleNamespace) -> None:
    f = app.fns
    _chat, sid, status, *_ = f["on_start"](IRATE, True, req("alice"))
    rec = app.store.get_session(sid)
    assert rec.user_id == "alice" and rec.private is True and "private" in status
    assert "no longer private" in f["on_private"](False, sid, req("alice"))
    assert app.store.get_session(sid).private is False
    with refused("belongs to someone else"):
        f["on_private"](True, sid, req("bob"))
    with refused("Sign in first"):
        f["on_start"](IRATE, False, req(None))
    with refused("Sign in first"):
        f["on_start"](IRATE, False, req("mallory"))


def test_a_trainee_cannot_list_replay_export_or_continue_another_trainees_session(
    app: SimpleNamespace,
) -> None:
    f = app.fns
    sid = chat_once(app, "alice")
    table, pick, fig, summary = f["on_history"]("", "", req("bob"))
    assert "0 graded practice session(s)" in summary
    assert isinstance(table, pd.DataFrame) and table.empty
    assert pick["choices"] == [] and isinstance(fig, Figure)
    with refused("own sessions"):
        f["on_history"]("", "alice", req("bob"))
    with refused("belongs to another trainee"):
        f["on_replay"](sid, req("bob"))
    for name in ("export_json", "export_markdown", "export_html"):
        with refused("belongs to another trainee"):
            f[name](sid, req("bob"))
    with refused("Only trainers"):
        f["export_csv"](req("bob"))
    with refused("Only trainers"):
        f["export_csv"](req("alice"))
    with refused("belongs to someone else"):
        last(f["on_send"]("hello", [], sid, request=req("bob")))
    with refused("belongs to someone else"):
        f["on_end"](sid, req("bob"))
    with refused("belongs to someone else"):
        f["on_hint"](sid, req("bob"))
    with refused("belongs to someone else"):
        f["on_retry"](sid, 1, req("bob"))

    # the owner sees it all
    table, pick, fig, _summary = f["on_history"]("", "", req("alice"))
    assert list(table["Session"]) == [sid[:8]] and pick["choices"][0][1] == sid
    html_out, _card, plot = f["on_replay"](sid, req("alice"))
    assert "What happened?" in html_out and plot["visible"] is True
    exported = json.loads(Path(f["export_json"](sid, req("alice"))).read_text())
    assert exported["id"] == sid and exported["user"] == "alice"
    assert "What happened?" in Path(f["export_markdown"](sid, req("alice"))).read_text()
    assert Path(f["export_html"](sid, req("alice"))).read_text().startswith("<!doctype html>")
    # the filter by customer type applies
    table, *_ = f["on_history"]("confused", "", req("alice"))
    assert table.empty


def test_a_trainer_sees_every_trainee_but_not_private_words(app: SimpleNamespace) -> None:
    f = app.fns
    open_sid = chat_once(app, "alice")
    private_sid = chat_once(app, "bob", CONFUSED, private=True)
    table, _pick, _, summary = f["on_history"]("", "", req("tess"))
    assert set(table["Session"]) == {open_sid[:8], private_sid[:8]}
    assert "Pick a trainee" in summary
    table, *_ = f["on_history"]("", "bob", req("tess"))
    assert list(table["Session"]) == [private_sid[:8]] and list(table["Private"]) == ["yes"]
    replay_words, *_ = f["on_replay"](open_sid, req("tess"))
    assert "What happened?" in replay_words
    hidden, *_ = f["on_replay"](private_sid, req("tess"))
    assert HIDDEN_NOTE in hidden and "What happened?" not in hidden
    assert json.loads(Path(f["export_json"](private_sid, req("tess"))).read_text())["turns"] == []
    csv_text = Path(f["export_csv"](req("tess"))).read_text()
    assert open_sid in csv_text and private_sid in csv_text and "What happened" not in csv_text
    # a trainer can't type into a trainee's session either
    with refused("belongs to someone else"):
        last(f["on_send"]("hello", [], open_sid, request=req("tess")))


STUDIO_ARGS: dict[str, tuple[Any, ...]] = {
    "studio_list": ("", "", "", False),
    "studio_open": (IRATE,),
    "studio_new": (PID,),
    "studio_clone": (IRATE, PID),
    "studio_archive": (IRATE,),
    "studio_yaml_to_form": (IRATE, "name: x"),
    "studio_save": (PID, "name: x", None, "", ""),
    "studio_check": (IRATE, "name: x", 1, ""),
    "studio_publish_state": (IRATE, 1, "why"),
    "studio_publish": (IRATE, 1, "why not"),
    "studio_restore": (IRATE, 1),
    "studio_import": (str(PERSONA_DIR / f"{IRATE}.yaml"), PID),
    "studio_export": (IRATE, None),
    "studio_preview_start": (IRATE, (PERSONA_DIR / f"{IRATE}.yaml").read_text()),
    "studio_preview_send": ("hello", [], "token"),
}


def test_every_studio_handler_refuses_a_trainee(app: SimpleNamespace) -> None:
    studio = {n for n in app.fns if n.startswith("studio_")}
    assert studio == {*STUDIO_ARGS, "studio_form_to_yaml"}
    before = sorted(p.name for p in app.repo.root.rglob("*"))
    for name, args in STUDIO_ARGS.items():
        for who in ("alice", None):
            with refused("Only trainers" if who else "Sign in first"):
                app.fns[name](*args, req(who))
    with refused("Only trainers"):
        app.fns["studio_form_to_yaml"](req("bob"), PID, *filled_form())
    with refused("Only trainers"):
        app.fns["on_assign"](IRATE, "", req("alice"))
    assert sorted(p.name for p in app.repo.root.rglob("*")) == before


def test_a_trainer_builds_checks_and_publishes_a_persona(app: SimpleNamespace) -> None:
    f, t = app.fns, req("tess")
    n_fields = len(FORM_FIELDS)
    out = f["studio_new"](PID, t)
    assert out[0] == PID and out[1] is None and "New persona" in out[-3]
    values = filled_form()
    values[index("emotional_baseline")] = 42
    text, problems = f["studio_form_to_yaml"](t, PID, *values)
    assert "emotional_baseline: 42" in text
    assert "emotional_baseline: Input should be less than or equal to 10" in problems
    values[index("emotional_baseline")] = 6
    text, problems = f["studio_form_to_yaml"](t, PID, *values)
    assert 'data-valid="true"' in problems
    # YAML -> form gives the same values back
    *back, problems = f["studio_yaml_to_form"](PID, text, t)
    assert len(back) == n_fields and form_to_yaml(back) == text
    skipped = f["studio_yaml_to_form"](PID, "name: [", t)
    assert skipped[0] == gr.skip() and "invalid YAML" in skipped[-1]

    base, status, versions, version, _, publish = f["studio_save"](PID, text, None, "first", "", t)
    assert "Saved parcel_delay v1" in status and version["value"] == 1
    assert publish["interactive"] is False  # not checked yet, no reason
    # a stale editor can't overwrite a newer save, and keeps its text
    f["studio_save"](PID, text.replace("Short and blunt.", "Terse."), base, "", "", t)
    stale = f["studio_save"](PID, text.replace("Priya", "Pri"), base, "", "", t)
    assert "changed since you opened it" in stale[1] and stale[0] == gr.skip()
    assert all(x == gr.skip() for x in stale[2:])
    assert [i.version for i in app.repo.versions(PID)] == [1, 2]

    # preview: a chat with the draft text, kept out of the trainee history
    chat, token, _ = f["studio_preview_start"](PID, text, t)
    assert chat[0]["content"].startswith("Your tracking says delivered")
    chat, box, pstatus = f["studio_preview_send"]("I'm sorry. What happened?", chat, token, t)
    assert chat[-1]["content"] == REPLY and box == "" and "Distress now" in pstatus
    assert f["studio_preview_send"]("again", chat, token, req("tess"))[1] == ""
    assert app.store.session_index(all_users=True) == []

    # the probe check runs on the editor text; publish needs it passed or a reason
    report, publish, _cstatus = f["studio_check"](PID, text, 1, "", t)
    assert report.count('class="rp-check"') == 4
    passed = 'data-passed="true"' in report.split(">", 1)[0]
    status, *_ = f["studio_publish"](PID, 1, "", t)
    if not passed:
        assert "has not passed" in status
        assert f["studio_publish_state"](PID, 1, "", t)["interactive"] is False
        assert f["studio_publish_state"](PID, 1, "Checked by hand.", t)["interactive"] is True
        status, versions, version, publish, picker, assign_to = f["studio_publish"](
            PID, 1, "Checked by hand.", t
        )
        assert versions["Override reason"].iloc[0] == "Checked by hand."
        assert assign_to["choices"] == picker["choices"]
        side = json.loads((app.repo.root / "_versions" / PID / "1.json").read_text())
        assert side["override_reason"] == "Checked by hand." and side["check_passed"] is False
    else:
        status, _versions, version, publish, picker, _assign_to = f["studio_publish"](PID, 1, "", t)
    assert "Published parcel_delay v1" in status
    assert PID in [c[1] for c in picker["choices"]]
    # trainees can now practise with it
    _, sid, started, *_ = f["on_start"](PID, False, req("alice"))
    assert "Priya Shah" in started and app.store.get_session(sid).persona_id == PID

    # versions: restore, export, clone, import, archive
    out = f["studio_restore"](PID, 1, t)
    assert "Restored v1 as v3" in out[-3] and out[2 + index("speaking_style")] == "Short and blunt."
    exported = Path(f["studio_export"](PID, 1, t)).read_text()
    assert exported == app.repo.get_version(PID, 1)
    out = f["studio_clone"](PID, "parcel_delay_2", t)
    assert out[0] == "parcel_delay_2" and "Cloned" in out[-3]
    upload = Path(f["studio_export"](PID, 1, t))
    out = f["studio_import"](str(upload), "parcel_delay_3", t)
    assert out[0] == "parcel_delay_3" and app.repo.exists("parcel_delay_3")
    dup = f["studio_import"](str(upload), PID, t)
    assert "already exists" in dup[-3] and dup[0] == gr.skip()
    status, picker = f["studio_archive"](PID, t)
    assert "Archived" in status and PID not in [c[1] for c in picker["choices"]]
    rows, _pick = f["studio_list"]("priya", "", "", True, t)
    assert set(rows["Id"]) == {PID, "parcel_delay_2", "parcel_delay_3"}
    assert "archived" in set(rows["Status"])


def test_hints_and_assessments(app: SimpleNamespace) -> None:
    f = app.fns
    # practice: a hint with its tip
    _, sid, _, _, meter, *rest = f["on_start"](IRATE, False, req("alice"))
    hint_button, _hint_text = rest[-2:]
    assert hint_button["visible"] is True and meter != ASSESSMENT_METER
    assert "Tip:" in f["on_hint"](sid, req("alice"))
    assert len(app.store.session_extras(sid)["hints"]) == 1

    # a trainer assigns an assessment; only the named trainee gets it
    status, _choices = f["on_assign"](CONFUSED, "alice", req("tess"))
    assert "assessment #1" in status
    assert [c[1] for c in f["on_assignments"](req("alice"))["choices"]] == [1]
    assert f["on_assignments"](req("bob"))["choices"] == []
    with refused("isn't assigned to you"):
        f["on_start_assessment"](1, req("bob"))

    out = f["on_start_assessment"](1, req("alice"))
    chat, asid, status, box, meter, *rest = out
    assert box["interactive"] is True
    assert meter == ASSESSMENT_METER and rest[-2]["visible"] is False
    assert "no hints" in status
    assert app.store.session_extras(asid)["mode"] == "assessment"
    assert "Hints are off" in f["on_hint"](asid, req("alice"))
    outs = list(f["on_send"]("I'm so sorry. What happened?", chat, asid, request=req("alice")))
    assert all(o[3] == gr.skip() for o in outs)  # the mood meter never updates
    status, _box, _feedback, _plot, _trace_text, retry_turn, retry = f["on_end"](asid, req("alice"))
    assert retry_turn["visible"] is False and retry["visible"] is False
    assert "Retry is off" in f["on_retry"](asid, 1, req("alice"))[2]

    # progress keeps assessments apart (graded sessions only)
    build(app.store, "alice", IRATE, ["Sorry."], [8, 7], {"validate": [1]})
    build(app.store, "alice", IRATE, ["Sorry."], [8, 6], {}, mode="assessment")
    _, _, fig, summary = f["on_history"]("", "", req("alice"))
    assert "1 graded practice session(s), 1 assessment(s)" in summary
    _, _, fig, summary = f["on_history"]("", "alice", req("tess"))
    assert fig.axes[0].get_title() == "alice's progress"


# --- the first minute: picking a customer opens a session; typing first is never lost ---------
def page(name: str | None, page_id: str) -> Any:
    """``gr.Request`` as one open page sends it: the user and the page's session hash."""
    return SimpleNamespace(username=name, session_hash=page_id)


def roles(app: SimpleNamespace, sid: str) -> list[str]:
    return [t.role for t in app.store.get_session(sid).turns]


def test_typing_first_with_no_session_starts_one_and_sends(app: SimpleNamespace) -> None:
    f = app.fns
    opening = app.practice.personas[IRATE].opening_line
    typed = "I'm so sorry, that sounds awful. What happened?"
    outs = list(f["on_send"](typed, [], "", IRATE, False, request=req("alice")))
    chat, box, status, _meter, sid = outs[-1]
    assert sid and all(o[4] == sid for o in outs)  # the page learns its session at once
    assert chat == [
        {"role": "assistant", "content": opening},
        {"role": "user", "content": typed},
        {"role": "assistant", "content": REPLY},
    ]
    assert box == "" and status == ""
    rec = app.store.get_session(sid)
    assert rec.user_id == "alice" and rec.persona_id == IRATE and rec.private is False
    assert [(t.role, t.text) for t in rec.turns] == [
        ("customer", opening),
        ("agent", typed),
        ("customer", REPLY),
    ]
    # the next message continues that session
    chat, *_ = last(f["on_send"]("What can I do?", chat, sid, IRATE, False, request=req("alice")))
    assert roles(app, sid) == ["customer", "agent", "customer", "agent", "customer"]


def test_a_first_send_that_cannot_start_keeps_the_text(app: SimpleNamespace) -> None:
    f = app.fns
    before = app.store.session_index(all_users=True)
    chat, box, status, _meter, sid = last(
        f["on_send"]("Hello there", [], "", "no_such_customer", False, request=req("alice"))
    )
    assert box == "Hello there" and "Pick a customer" in status and sid == gr.skip()
    chat, box, status, _meter, sid = last(
        f["on_send"]("   ", [], "", IRATE, False, request=req("alice"))
    )
    assert box == "" and sid == gr.skip()  # nothing typed: nothing started
    with refused("Sign in first"):  # signed out: no session, no message stored
        last(f["on_send"]("Hello there", [], "", IRATE, False, request=req(None)))
    assert app.store.session_index(all_users=True) == before
    # too long: the session starts (opening line shown) and the text stays in the box
    long = "x" * (app.practice.settings.max_message_chars + 1)
    chat, box, status, _meter, sid = last(
        f["on_send"](long, [], "", IRATE, False, request=req("alice"))
    )
    assert box == long and "limit" in status and len(chat) == 1 and roles(app, sid) == ["customer"]


def test_picking_a_customer_opens_a_live_session(app: SimpleNamespace) -> None:
    f = app.fns
    chat, sid, status, box, meter, *rest = f["on_open"](IRATE, False, "", page("alice", "p1"))
    assert chat == [{"role": "assistant", "content": app.practice.personas[IRATE].opening_line}]
    assert "Session started with Gareth" in status and box["interactive"] is True
    assert meter != ASSESSMENT_METER and rest[-2]["visible"] is True
    assert app.store.get_session(sid).user_id == "alice" and roles(app, sid) == ["customer"]
    # the same customer again on the same page: nothing changes
    assert f["on_open"](IRATE, False, sid, page("alice", "p1")) == (gr.skip(),) * 12
    # another page (a second tab) gets a session of its own; a reload reuses the untouched one
    _, other, *_ = f["on_open"](IRATE, False, "", page("alice", "p2"))
    assert other != sid
    f["on_unload"](page("alice", "p1"))
    _, reloaded, *_ = f["on_open"](IRATE, False, "", page("alice", "p3"))
    assert reloaded == sid
    # switching customer before writing anything: a live session with the new one
    _, confused, status, *_ = f["on_open"](CONFUSED, True, reloaded, page("alice", "p3"))
    rec = app.store.get_session(confused)
    assert rec.persona_id == CONFUSED and rec.private is True and "private" in status
    # signed out, or someone else's session: refused, and nothing is started
    before = app.store.session_index(all_users=True)
    with refused("Sign in first"):
        f["on_open"](IRATE, False, "", page(None, "p4"))
    with refused("belongs to someone else"):
        f["on_open"](IRATE, False, confused, page("bob", "p3"))
    assert app.store.session_index(all_users=True) == before


def test_changing_customer_never_replaces_a_conversation(app: SimpleNamespace) -> None:
    f = app.fns
    _, sid, *_ = f["on_open"](IRATE, False, "", page("alice", "p1"))
    last(f["on_send"]("What happened?", [], sid, IRATE, False, request=page("alice", "p1")))
    out = f["on_open"](CONFUSED, False, sid, page("alice", "p1"))
    assert out[1] == gr.skip() and out[0] == gr.skip()
    assert "still talking to Gareth" in out[2] and "New session" in out[2]
    assert f["on_open"](IRATE, False, sid, page("alice", "p1")) == (gr.skip(),) * 12
    assert roles(app, sid) == ["customer", "agent", "customer"]
    # New session still starts afresh on request
    _, fresh, *_ = f["on_start"](CONFUSED, False, page("alice", "p1"))
    assert fresh != sid and app.store.get_session(fresh).persona_id == CONFUSED
    # an assessment under way is not replaced by picking a customer either
    f["on_assign"](CONFUSED, "alice", req("tess"))
    _, asid, *_ = f["on_start_assessment"](1, page("alice", "p2"))
    out = f["on_open"](IRATE, False, asid, page("alice", "p2"))
    assert out[1] == gr.skip() and "New session" in out[2]


def test_a_send_racing_the_page_start_lands_in_the_same_session(app: SimpleNamespace) -> None:
    f = app.fns
    # the page's start arrived first on the server, but the page sent before it heard back
    _, sid, *_ = f["on_open"](IRATE, False, "", page("alice", "p1"))
    *_, sent_to = last(
        f["on_send"]("Hi, sorry!", [], "", IRATE, False, request=page("alice", "p1"))
    )
    assert sent_to == sid and roles(app, sid) == ["customer", "agent", "customer"]
    # the Send arrived first: the page's start then leaves that conversation alone
    *_, sent_to = last(f["on_send"]("Hello?", [], "", CONFUSED, False, request=page("bob", "p2")))
    assert f["on_open"](CONFUSED, False, "", page("bob", "p2")) == (gr.skip(),) * 12
    assert roles(app, sent_to) == ["customer", "agent", "customer"]


def test_untouched_session_is_only_reused_when_unused_and_recent(app: SimpleNamespace) -> None:
    from datetime import UTC, datetime, timedelta

    from web.practice_view import untouched_session

    persona = app.practice.personas[IRATE]
    s = app.practice.start(IRATE, "alice")
    assert untouched_session(app.store, persona, "alice") == s.id
    assert untouched_session(app.store, persona, "bob") is None
    assert untouched_session(app.store, persona, "alice", held=[s.id]) is None
    later = datetime.now(UTC) + timedelta(hours=2)
    assert untouched_session(app.store, persona, "alice", now=later) is None
    other = app.practice.personas[CONFUSED]
    assert untouched_session(app.store, other, "alice") is None
    app.store.record_hint(s.id, {"tip": "Ask."})
    assert untouched_session(app.store, persona, "alice") is None
    t = app.practice.start(IRATE, "alice")
    list(t.respond("Sorry to hear that."))
    assert untouched_session(app.store, persona, "alice") is None


def test_on_load_shows_each_role_its_controls(app: SimpleNamespace) -> None:
    f = app.fns
    banner, studio, trainee, csv_button, assign_box, picker, *_ = f["on_load"](req("alice"))
    assert "alice" in banner and studio["visible"] is False and csv_button["visible"] is False
    assert trainee["visible"] is False and assign_box["visible"] is False
    assert IRATE in [c[1] for c in picker["choices"]]
    banner, studio, trainee, csv_button, assign_box, *_ = f["on_load"](req("tess"))
    assert studio["visible"] is True and csv_button["visible"] is True
    assert [c[1] for c in trainee["choices"]][1:] == ["alice", "bob"]


def test_with_sign_in_off_the_local_user_is_a_trainer(
    practice: Practice, fake: ScriptedChatModel
) -> None:
    from app import build_app

    assert LOCAL_USER.is_trainer
    demo = build_app(practice, lambda: (_ for _ in ()).throw(RuntimeError("none")))
    fns: dict[str, Callable[..., Any]] = {
        f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None
    }
    banner, studio, *_ = fns["on_load"](None)
    assert "Single-user" in banner and studio["visible"] is True
    rows, _ = fns["studio_list"]("gareth", "", "", False, None)
    assert list(rows["Id"]) == [IRATE]
    fake.enqueue([REPLY])
    _, sid, *_ = fns["on_start"](IRATE)
    assert practice.store.get_session(sid).user_id is None


def test_serve_refuses_an_open_bind_unless_confirmed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from typer.testing import CliRunner

    import app as webapp
    from cli import app as cli_app
    from common.settings import Settings

    with pytest.raises(SystemExit) as exc:  # before the grader or the model is touched
        webapp.main(Settings(host="0.0.0.0", data_dir=tmp_path, provider="fake"))
    assert exc.value.code == 1 and "Refusing to serve on '0.0.0.0'" in capsys.readouterr().err
    seen: list[Settings] = []
    monkeypatch.setattr(webapp, "main", seen.append)
    res = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--allow-public"])
    assert res.exit_code == 0 and seen[0].allow_public is True and seen[0].host == "0.0.0.0"
    res = CliRunner().invoke(cli_app, ["serve", "--port", "7999"])
    assert res.exit_code == 0 and seen[1].allow_public is False and seen[1].port == 7999
