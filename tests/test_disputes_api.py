"""Disputes through the Gradio API (``gradio_client``), on the real app with sign-in on:
the role checks hold for callers that never load the page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.persona import PERSONA_DIR
from sim.practice import Practice
from tests.conftest import free_port
from tests.test_disputes import graded
from training.persona_repo import PersonaRepo
from training.users import UserStore, gradio_auth

pytestmark = pytest.mark.server
PW = {"tess": "tess-password", "alice": "alice-password", "bob": "bob-password"}


@pytest.fixture
def served(practice: Practice, tmp_path: Path) -> Iterator[tuple[str, Practice]]:
    from app import build_app

    practice.settings.auth = True
    users = UserStore(practice.store, rounds=4)
    for name, role in (("tess", "trainer"), ("alice", "trainee"), ("bob", "trainee")):
        users.add_user(name, role, PW[name])
    root = tmp_path / "personas"
    root.mkdir()
    for f in PERSONA_DIR.glob("*.yaml"):
        shutil.copy(f, root / f.name)

    def no_grader() -> Any:
        raise RuntimeError("no grader in this test")

    demo = build_app(practice, no_grader, users=users, repo=PersonaRepo(root))
    port = free_port()
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        auth=gradio_auth(users),
        quiet=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/", practice
    finally:
        demo.close()


def client(url: str, name: str) -> Any:
    from gradio_client import Client

    return Client(url, auth=(name, PW[name]), verbose=False)


def table_ids(table: dict[str, Any]) -> list[str]:
    return [str(row[0]) for row in table["data"]]


def test_roles_hold_through_the_gradio_api(served: tuple[str, Practice]) -> None:
    url, practice = served
    store = practice.store
    a_sid = graded(store, "alice")
    b_sid = graded(store, "bob", private=True)
    alice, bob, tess = client(url, "alice"), client(url, "bob"), client(url, "tess")

    status, _ = alice.predict(a_sid, "1:listen", "It was a question.", False, api_name="/dispute")
    assert "Disputed turn 1" in status
    bob.predict(b_sid, "3:validate", "I named it, privately.", False, api_name="/dispute")
    a_id, b_id = (str(d["id"]) for d in store.dispute_rows())

    # a trainee can't dispute someone else's verdict, read their dispute or rule at all
    with pytest.raises(Exception, match="only your own"):
        bob.predict(a_sid, "1:validate", "Not my session.", False, api_name="/dispute")
    with pytest.raises(Exception, match="another trainee"):
        bob.predict(a_id, api_name="/dispute_review")
    with pytest.raises(Exception, match="only your own"):
        bob.predict("", "alice", "", api_name="/disputes")
    for who, did in ((alice, a_id), (bob, a_id), (bob, b_id)):
        with pytest.raises(Exception, match="Only trainers"):
            who.predict(did, "overturn", "", api_name="/rule")
    assert [d["status"] for d in store.dispute_rows()] == ["open", "open"]
    # the queue through the API: a trainee's own only, a trainer's everyone's
    assert table_ids(bob.predict("", "", "", api_name="/disputes")[0]) == [b_id]
    assert table_ids(tess.predict("", "", "", api_name="/disputes")[0]) == [a_id, b_id]
    assert table_ids(tess.predict("validate", "", "", api_name="/disputes")[0]) == [b_id]
    assert "Disputed" not in bob.predict(a_sid, api_name="/session_disputes")  # Alice's

    # a private session's turn stays hidden from the trainer: it wasn't shared
    hidden = tess.predict(b_id, api_name="/dispute_review")[0]
    assert "did not share this turn" in hidden and "That sounds really stressful" not in hidden
    shown = tess.predict(a_id, api_name="/dispute_review")[0]
    assert "When did it start exactly?" in shown

    msg, _ = tess.predict(a_id, "overturn", "Counted as not used.", api_name="/rule")
    assert "Overturned by tess" in msg
    seen = alice.predict(a_sid, api_name="/session_disputes")
    assert "Overturned by tess" in seen and "Counted as not used." in seen
