"""The dispute panel and the review queue's handlers, called as the page and the Gradio API
call them: trainee vs trainer, other trainees, private sessions, and bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd
import pytest

from common.settings import Settings
from storage import SessionStore
from tests.test_disputes import TURNS, graded
from training.users import UserStore, acting_user
from web.dispute_handlers import DisputeHandlers

PW = "a-long-password"


def req(name: str | None) -> Any:
    return SimpleNamespace(username=name)


@pytest.fixture
def handlers(tmp_path: Path) -> Iterator[DisputeHandlers]:
    store = SessionStore(tmp_path / "rapport.sqlite3")
    users = UserStore(store, rounds=4)
    for name, role in (("tess", "trainer"), ("alice", "trainee"), ("bob", "trainee")):
        users.add_user(name, role, PW)
    settings = Settings(data_dir=tmp_path, provider="fake", auth=True)

    def who(request: Any) -> Any:
        try:
            return acting_user(settings, users, getattr(request, "username", None))
        except PermissionError as exc:
            raise gr.Error(str(exc)) from None

    yield DisputeHandlers(store, who, lambda: ["alice", "bob"])
    store.close()


def refused(match: str) -> Any:
    return pytest.raises(gr.Error, match=match)


def ids(table: pd.DataFrame) -> list[int]:
    return [int(x) for x in table["#"]]


def test_the_panel_offers_the_owners_scored_verdicts_only(handlers: DisputeHandlers) -> None:
    sid = graded(handlers.store, "alice", private=True)
    shown, box, verdict, share, status, listing = handlers.panel(sid, req("alice"))
    assert (
        shown == sid and box["visible"] is True and share["visible"] is True
    )  # private: offer to share
    assert status == "" and listing == ""  # no disputes yet
    keys = [v for _, v in verdict["choices"]]
    assert keys == ["1:listen", "1:validate", "3:listen", "3:validate"]  # "not scored" left out
    assert "the grader said used (93% sure)" in verdict["choices"][0][0]
    # not the owner: the panel stays hidden, for another trainee and for a trainer
    for other in ("bob", "tess"):
        assert handlers.panel(sid, req(other))[:2] == ("", {"visible": False, "__type__": "update"})
    assert handlers.panel("", req("alice"))[1]["visible"] is False
    unended = handlers.store.create_session("p", "v", {}, "alice")
    assert handlers.panel(unended, req("alice"))[1]["visible"] is False


def test_a_trainee_disputes_a_trainer_rules_and_the_trainee_sees_it(
    handlers: DisputeHandlers,
) -> None:
    sid = graded(handlers.store, "alice")
    status, listing = handlers.dispute(
        sid, "3:validate", "I named her stress.", False, req("alice")
    )
    assert "Disputed turn 2" in status and "Waiting for a trainer" in listing
    # the disputed verdict is no longer offered
    _, _, verdict, *_ = handlers.panel(sid, req("alice"))
    assert "3:validate" not in [v for _, v in verdict["choices"]]

    table, pick = handlers.queue("", "", "open", req("tess"))
    assert len(table) == 1 and table.iloc[0]["trainee"] == "alice"
    did = pick["choices"][0][1]
    detail, _, _ = handlers.open_review(did, req("tess"))
    assert "That sounds really stressful" in detail and "I named her stress." in detail
    assert "<mark>That sounds really stressful</mark>" in detail
    assert "Name the feeling" in detail  # the cited guidance

    msg, detail = handlers.rule(did, "overturn", "Yes: you named it.", req("tess"))
    assert "Overturned by tess" in msg and 'data-status="overturned"' in detail
    seen = handlers.session_disputes(sid, req("alice"))
    assert "Overturned by tess" in seen and "Yes: you named it." in seen
    assert handlers.panel(sid, req("alice"))[5] == seen  # and under the feedback card
    assert len(handlers.queue("", "", "open", req("tess"))[0]) == 0
    assert len(handlers.queue("", "", "overturned", req("tess"))[0]) == 1

    again, _ = handlers.rule(did, "uphold", "", req("tess"))
    assert "ruled on already" in again


def test_roles_hold_for_every_handler(handlers: DisputeHandlers) -> None:
    a_sid = graded(handlers.store, "alice")
    b_sid = graded(handlers.store, "bob")
    handlers.dispute(a_sid, "1:listen", "It was a question.", False, req("alice"))
    handlers.dispute(b_sid, "3:validate", "Bob disagrees.", False, req("bob"))
    a_id, b_id = (str(d["id"]) for d in handlers.store.dispute_rows())

    # a trainee can't rule, on someone else's or their own
    for did in (a_id, b_id):
        with refused("Only trainers"):
            handlers.rule(did, "overturn", "", req("alice"))
    # nor dispute another trainee's verdict, nor read another trainee's disputes
    with refused("only your own"):
        handlers.dispute(b_sid, "1:listen", "Not mine.", False, req("alice"))
    with refused("another trainee"):
        handlers.open_review(b_id, req("alice"))
    with refused("only your own"):
        handlers.queue("", "bob", "", req("alice"))
    assert "Bob disagrees" not in handlers.session_disputes(b_sid, req("alice"))
    # the queue through the API gives a trainee their own disputes and nothing else
    table, _ = handlers.queue("", "", "", req("alice"))
    assert ids(table) == [int(a_id)]
    # a trainer sees both, filtered by technique and by trainee
    assert ids(handlers.queue("", "", "", req("tess"))[0]) == [int(a_id), int(b_id)]
    assert ids(handlers.queue("validate", "", "", req("tess"))[0]) == [int(b_id)]
    assert ids(handlers.queue("", "alice", "", req("tess"))[0]) == [int(a_id)]
    # no sign-in, no access
    with refused("Sign in"):
        handlers.queue("", "", "", req(None))
    assert [d["status"] for d in handlers.store.dispute_rows()] == ["open", "open"]


def test_a_private_turn_reaches_trainers_only_when_shared(handlers: DisputeHandlers) -> None:
    sid = graded(handlers.store, "alice", private=True)
    handlers.dispute(sid, "3:validate", "Kept to myself.", False, req("alice"))
    handlers.dispute(sid, "1:listen", "Shared on purpose.", True, req("alice"))
    kept, shared = (str(d["id"]) for d in handlers.store.dispute_rows())
    hidden, _, _ = handlers.open_review(kept, req("tess"))
    assert "did not share this turn" in hidden
    for _, words in TURNS:
        assert words not in hidden
    assert "Kept to myself." in hidden and "not used (58% sure" in hidden
    # ruling on it is still possible: the trainer has the verdict and the reason
    assert "Upheld by tess" in handlers.rule(kept, "uphold", "", req("tess"))[0]
    visible, _, _ = handlers.open_review(shared, req("tess"))
    assert "When did it start exactly?" in visible and "did not share" not in visible
    own, _, _ = handlers.open_review(kept, req("alice"))
    assert "That sounds really stressful" in own


def test_bad_input_gets_a_message_and_stores_nothing(handlers: DisputeHandlers) -> None:
    sid = graded(handlers.store, "alice")
    for key, reason, match in (
        ("", "A reason.", "Pick the verdict"),
        ("x:listen", "A reason.", "Pick the verdict"),
        ("1:listen", "", "at least 3"),
        ("1:affirm", "A reason.", "not scored"),
        ("2:listen", "A reason.", "no verdict"),
    ):
        status, _ = handlers.dispute(sid, key, reason, False, req("alice"))
        assert match in status and "rp-error" in status, (key, status)
    assert "End a session" in handlers.dispute("", "1:listen", "Why.", False, req("alice"))[0]
    assert handlers.store.dispute_rows() == []
    assert "Choose uphold or overturn" in handlers.rule("1", "", "", req("tess"))[0]
    assert "no dispute #1" in handlers.rule("1", "uphold", "", req("tess"))[0]
    assert "no dispute &#x27;abc" in handlers.open_review("abc", req("tess"))[0]
    with refused("Unknown status"):
        handlers.queue("", "", "pending", req("tess"))
