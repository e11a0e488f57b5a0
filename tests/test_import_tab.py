"""The Import tab's handlers, with sign-in on: anyone signed in imports their own
conversation; only trainers turn one into a draft persona, and only one they may read."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest

from rubric.grader import Grader
from sim.persona import PERSONA_DIR, Persona, load_persona_file, persona_paths
from sim.practice import Practice
from tests.conftest import ROOT
from tests.test_grading_classifier import shared_grader
from training.persona_repo import PersonaRepo
from training.users import User, UserStore, acting_user, require_trainer
from web.import_tab import ImportHandlers
from web.persona_form import FORM_FIELDS
from web.studio_handlers import EditorView, Request, StudioHandlers

SAMPLE = ROOT / "docs" / "samples" / "chat-broadband.txt"


@pytest.fixture(scope="module")
def grader(tmp_path_factory: pytest.TempPathFactory) -> Grader:
    return shared_grader(tmp_path_factory)


def req(name: str | None) -> Any:
    return SimpleNamespace(username=name)


@pytest.fixture
def tab(practice: Practice, grader: Grader, tmp_path: Path) -> SimpleNamespace:
    practice.settings.auth = True
    users = UserStore(practice.store, rounds=4)
    for name, role in (("tess", "trainer"), ("alice", "trainee"), ("bob", "trainee")):
        users.add_user(name, role, f"{name}-password")
    root = tmp_path / "personas"
    root.mkdir()
    for f in PERSONA_DIR.glob("*.yaml"):
        shutil.copy(f, root / f.name)
    repo = PersonaRepo(root)

    def who(request: Request) -> User:
        try:
            return acting_user(practice.settings, users, getattr(request, "username", None))
        except Exception as exc:
            raise gr.Error(str(exc)) from None

    def trainer(request: Request) -> User:
        user = who(request)
        try:
            require_trainer(user)
        except Exception as exc:
            raise gr.Error(str(exc)) from None
        return user

    def published() -> dict[str, Persona]:
        return {p.stem: load_persona_file(p) for p in persona_paths(root)}

    studio = StudioHandlers(practice, repo, trainer, published)
    handlers = ImportHandlers(practice, lambda: grader, who, trainer, studio)
    return SimpleNamespace(h=handlers, repo=repo, store=practice.store, studio=studio)


def upload(tmp_path: Path, data: bytes, name: str = "chat.txt") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_trainee_imports_their_conversation_after_naming_the_agent(
    tab: SimpleNamespace, tmp_path: Path
) -> None:
    f = upload(tmp_path, SAMPLE.read_bytes())
    status, card, picker, sid, practise = tab.h.import_transcript(f, [], "auto", req("alice"))
    assert "Which of these speakers is the agent?" in status
    assert picker["choices"] == ["Tom", "Sarah Jones"] and picker["visible"] is True
    assert sid == "" and tab.store.session_index(all_users=True) == []
    status, card, picker, sid, practise = tab.h.import_transcript(f, ["Tom"], "auto", req("alice"))
    assert "Imported 1 real conversation" in status and "Masked before storing" in status
    assert 'id="import-feedback-card"' in card and "Session feedback" in card
    assert "Sarah" not in card and "07700" not in card and "BB-558120" in card
    assert tab.store.get_session(sid).user_id == "alice"
    assert practise["visible"] is False  # trainees don't make personas
    with pytest.raises(gr.Error, match="Only trainers"):
        tab.h.practise_customer(sid, "", req("alice"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"Customer: hello?\nCustomer: anyone?\n", "No agent turns found"),
        (b"\x00\x01\x02\xff" * 100, "binary data"),
        ((b"Agent: hi\nCustomer: hello\n" * 202_000)[: 5 * 1024 * 1024], "The file is 5.0 MB"),
    ],
    ids=["empty", "no-agent", "binary", "5mb"],
)
def test_bad_uploads_say_why_and_store_nothing(
    tab: SimpleNamespace, tmp_path: Path, data: bytes, message: str
) -> None:
    status, card, _, sid, _ = tab.h.import_transcript(
        upload(tmp_path, data), [], "auto", req("bob")
    )
    assert "Not imported" in status and message in status
    assert card == "" and sid == ""
    assert tab.store.session_index(all_users=True) == []


def test_no_file_and_no_sign_in_are_refused(tab: SimpleNamespace) -> None:
    status, *_ = tab.h.import_transcript(None, [], "auto", req("alice"))
    assert "Choose a transcript file first" in status
    with pytest.raises(gr.Error, match="Sign in"):
        tab.h.import_transcript(None, [], "auto", req(None))


def test_a_trainer_makes_a_draft_persona_and_it_opens_in_the_studio(
    tab: SimpleNamespace, tmp_path: Path
) -> None:
    f = upload(tmp_path, SAMPLE.read_bytes())
    *_, sid, practise = tab.h.import_transcript(f, ["Tom"], "auto", req("tess"))
    assert practise["visible"] is True
    out = tab.h.practise_customer(sid, "broadband_real", req("tess"))
    assert len(out) == len(EditorView().outputs()) + 1
    assert out[0] == "broadband_real"
    yaml_text = out[2 + len(FORM_FIELDS)]
    assert "opening_line: My internet has been down since Monday" in yaml_text
    assert "Sarah" not in yaml_text and "[" not in yaml_text
    assert "Draft persona broadband_real saved" in out[-1]
    # a draft, not published: it goes through the Studio's probe check and publish flow
    versions = tab.repo.versions("broadband_real")
    assert len(versions) == 1 and not versions[0].published
    assert "broadband_real" not in {p.stem for p in persona_paths(tab.repo.root)}
    # the id must be free, and the session must be a real conversation
    again = tab.h.practise_customer(sid, "broadband_real", req("tess"))
    assert "already exists" in again[-1]


def test_another_trainees_private_session_cannot_become_a_persona(
    tab: SimpleNamespace, tmp_path: Path
) -> None:
    f = upload(tmp_path, SAMPLE.read_bytes())
    *_, sid, _ = tab.h.import_transcript(f, ["Tom"], "auto", req("alice"))
    tab.store.set_private(sid, True)
    with pytest.raises(gr.Error, match="private"):
        tab.h.practise_customer(sid, "", req("tess"))
    practice_sid = tab.store.create_session("irate_broadband_outage", "v", {}, "tess")
    out = tab.h.practise_customer(practice_sid, "", req("tess"))
    assert "Only an imported real conversation" in out[-1]
    assert "no such conversation" in tab.h.practise_customer("nope", "", req("tess"))[-1]


def test_the_opened_draft_is_checked_as_saved_though_the_page_drops_its_last_newline(
    tab: SimpleNamespace, tmp_path: Path, fake: Any
) -> None:
    """gr.Code strips trailing whitespace from the YAML it shows, so the page sends the draft
    back without its final newline: the check must still count for the saved version."""
    f = upload(tmp_path, SAMPLE.read_bytes())
    *_, sid, _ = tab.h.import_transcript(f, ["Tom"], "auto", req("tess"))
    out = tab.h.practise_customer(sid, "broadband_real", req("tess"))
    shown = out[2 + len(FORM_FIELDS)].rstrip()
    assert shown != tab.repo.get_version("broadband_real", 1)  # it did end in a newline
    fake.enqueue(["Okay. I just want to know when it will be fixed."] * 200)
    report, publish, status = tab.studio.studio_check("broadband_real", shown, 1, "", req("tess"))
    assert "rp-check-report" in report
    assert "saved yet" not in status  # the page's text is version 1
    # no override reason: Publish opens exactly when the check passed
    assert publish["interactive"] is ('rp-check-report" data-passed="true"' in report)
