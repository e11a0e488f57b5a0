"""Accounts, password hashing, role checks, the bind check, settings and `rapport users`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cli import app
from common.settings import Settings
from storage import MIGRATIONS, Session, SessionStore, m001_initial, m002_branches
from training.users import (
    LOCAL_USER,
    PermissionDenied,
    UnsafeBind,
    User,
    UserError,
    UserStore,
    acting_user,
    assign,
    assignments_for,
    can_view_session,
    check_bind,
    gradio_auth,
    hash_password,
    require_trainer,
    require_view,
    start_assessment,
    verify_password,
    visible_transcript,
)

runner = CliRunner()
FAST = 4  # bcrypt rounds for tests
PW = "correct horse battery"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore(tmp_path / "db.sqlite3")
    yield s
    s.close()


@pytest.fixture
def users(store: SessionStore) -> UserStore:
    return UserStore(store, rounds=FAST)


# --- passwords -------------------------------------------------------------------------------
def test_password_hash_is_salted_and_verifies() -> None:
    h1, h2 = hash_password(PW, rounds=FAST), hash_password(PW, rounds=FAST)
    assert PW not in h1 and h1.startswith("$2")
    assert h1 != h2  # a fresh salt each time
    assert verify_password(h1, PW) and verify_password(h2, PW)
    assert not verify_password(h1, PW + "!")
    assert not verify_password(h1, "")
    assert not verify_password("not a hash", PW)
    assert not verify_password(h1, "x" * 100)  # longer than bcrypt takes: never matches


@pytest.mark.parametrize("bad", ["short", "é" * 40, "with\x00nul-byte"])
def test_unacceptable_passwords_are_refused(bad: str) -> None:
    with pytest.raises(UserError):
        hash_password(bad, rounds=FAST)


# --- accounts --------------------------------------------------------------------------------
def test_add_authenticate_and_list(users: UserStore, store: SessionStore) -> None:
    t = users.add_user("Trainer.Tess", "trainer", PW)
    assert t == User("trainer.tess", "trainer", t.created_at) and t.created_at
    users.add_user("alice", "trainee", "alice-password")
    assert users.authenticate("trainer.tess", PW) == t
    assert users.authenticate(" TRAINER.TESS ", PW) == t  # names are case-insensitive
    assert users.authenticate("trainer.tess", "wrong password") is None
    assert users.authenticate("nobody", PW) is None
    assert users.authenticate("not a valid name!", PW) is None
    assert [(u.name, u.role) for u in users.list_users()] == [
        ("alice", "trainee"),
        ("trainer.tess", "trainer"),
    ]
    stored = store.user_row("alice")
    assert stored is not None and "alice-password" not in str(stored)
    assert verify_password(stored["password_hash"], "alice-password")


def test_duplicate_bad_name_and_bad_role(users: UserStore) -> None:
    users.add_user("alice", "trainee", PW)
    with pytest.raises(UserError, match="already exists"):
        users.add_user("ALICE", "trainer", PW)
    for bad in ["", "-dash-first", "has space", "x" * 65, "semi;colon"]:
        with pytest.raises(UserError, match="Invalid user name"):
            users.add_user(bad, "trainee", PW)
    with pytest.raises(UserError, match="role"):
        users.add_user("bob", "admin", PW)
    assert users.add_user("x" * 64, "trainee", PW).name == "x" * 64


def test_set_password(users: UserStore) -> None:
    users.add_user("alice", "trainee", PW)
    users.set_password("alice", "a brand new one")
    assert users.authenticate("alice", PW) is None
    assert users.authenticate("alice", "a brand new one") is not None
    with pytest.raises(UserError, match="No user"):
        users.set_password("ghost", "whatever-long")


def test_gradio_auth_and_acting_user(users: UserStore, settings: Settings) -> None:
    users.add_user("alice", "trainee", PW)
    check = gradio_auth(users)
    assert check("alice", PW) and not check("alice", "nope-nope")
    assert acting_user(settings, users, None) is LOCAL_USER  # auth off
    on = settings.model_copy(update={"auth": True})
    assert acting_user(on, users, "alice") == users.get("alice")
    with pytest.raises(PermissionDenied):
        acting_user(on, users, None)
    with pytest.raises(PermissionDenied):
        acting_user(on, users, "ghost")


def test_migration_m003_upgrades_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        m001_initial(con)
        m002_branches(con)
        con.executemany(
            "INSERT INTO _migrations VALUES (?, 'x')", [("m001_initial",), ("m002_branches",)]
        )
        con.execute(
            "INSERT INTO sessions (id, persona_id, persona_version, started_at) VALUES ('s1', 'p', 'v', 't')"
        )
    con.close()
    store = SessionStore(db)
    assert store.session_extras("s1") == {
        "mode": "practice",
        "assignment_id": None,
        "hints": [],
        "real": False,
    }
    store.close()
    SessionStore(db).close()  # idempotent
    with sqlite3.connect(db) as c:
        names = [r[0] for r in c.execute("SELECT name FROM _migrations")]
        assert names[:3] == ["m001_initial", "m002_branches", "m003_users"]
        assert names == [name for name, _ in MIGRATIONS]  # and every later one
        with pytest.raises(sqlite3.IntegrityError):
            c.execute("UPDATE sessions SET mode = 'exam' WHERE id = 's1'")


# --- role checks -----------------------------------------------------------------------------
def _session(user_id: str | None, private: bool = False) -> Session:
    return Session("s", "p", "v", "t", None, "ended", {}, user_id=user_id, private=private)


ALICE = User("alice", "trainee")
BOB = User("bob", "trainee")
TESS = User("tess", "trainer")


def test_role_checks() -> None:
    mine, private = _session("alice"), _session("alice", private=True)
    assert can_view_session(ALICE, mine) and visible_transcript(ALICE, mine)
    assert can_view_session(ALICE, private) and visible_transcript(ALICE, private)
    assert not can_view_session(BOB, mine) and not visible_transcript(BOB, mine)
    assert can_view_session(TESS, mine) and visible_transcript(TESS, mine)
    assert can_view_session(TESS, private) and not visible_transcript(TESS, private)
    # a trainee never sees the sessions stored without a user (single-user mode)
    assert not can_view_session(ALICE, _session(None))
    # the local user owns those, private ones included; sees others' scores only if private
    assert visible_transcript(LOCAL_USER, _session(None, private=True))
    assert not visible_transcript(LOCAL_USER, private)
    assert LOCAL_USER.id is None and LOCAL_USER.role == "trainer"
    with pytest.raises(PermissionDenied):
        require_view(BOB, mine)
    require_view(TESS, mine)
    with pytest.raises(PermissionDenied):
        require_trainer(ALICE)
    require_trainer(TESS)
    require_trainer(LOCAL_USER)


# --- binding and settings --------------------------------------------------------------------
@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST", "127.0.0.2"]
)
def test_check_bind_allows_loopback(host: str, settings: Settings) -> None:
    check_bind(settings.model_copy(update={"host": host}))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "rapport.example.org", ""])
def test_check_bind_refuses_open_hosts_without_auth(host: str, settings: Settings) -> None:
    s = settings.model_copy(update={"host": host})
    with pytest.raises(UnsafeBind, match="RAPPORT_AUTH=on"):
        check_bind(s)
    check_bind(s.model_copy(update={"auth": True}))
    check_bind(s.model_copy(update={"allow_public": True}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", True),
        ("ON ", True),
        ("true", True),
        ("1", True),
        ("off", False),
        ("false", False),
        ("0", False),
    ],
)
def test_settings_parse_auth_on_off(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("RAPPORT_AUTH", value)
    monkeypatch.setenv("RAPPORT_ALLOW_PUBLIC", value)
    s = Settings()
    assert s.auth is expected and s.allow_public is expected


def test_settings_defaults_and_bad_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAPPORT_AUTH", raising=False)
    monkeypatch.delenv("RAPPORT_ALLOW_PUBLIC", raising=False)
    s = Settings()
    assert s.auth is False and s.allow_public is False and s.host == "127.0.0.1"
    monkeypatch.setenv("RAPPORT_AUTH", "maybe")
    with pytest.raises(ValidationError, match="on or off"):
        Settings()


# --- assessments -----------------------------------------------------------------------------
def test_assignments(users: UserStore, store: SessionStore, practice) -> None:  # type: ignore[no-untyped-def]
    users.add_user("alice", "trainee", PW)
    users.add_user("bob", "trainee", PW)
    with pytest.raises(PermissionDenied):
        assign(store, ALICE, "confused_energy_bill")
    everyone = assign(store, TESS, "confused_energy_bill")
    for_bob = assign(store, TESS, "irate_broadband_outage", assigned_to="bob")
    assert everyone.assigned_to is None and everyone.assigned_by == "tess"
    assert for_bob.assigned_to == "bob" and for_bob.kind == "assessment"
    with pytest.raises(UserError):
        assign(store, TESS, "confused_energy_bill", assigned_to="tess")  # not a trainee
    assert [a.id for a in assignments_for(store, ALICE)] == [everyone.id]
    assert [a.id for a in assignments_for(store, BOB)] == [everyone.id, for_bob.id]
    assert len(assignments_for(store, TESS)) == 2

    # start_assessment goes through the practice's own store
    pa = practice.store
    aid = assign(pa, TESS, "confused_energy_bill", assigned_to=None).id
    s = start_assessment(practice, ALICE, aid)
    assert s.record.user_id == "alice"
    assert pa.session_extras(s.id)["mode"] == "assessment"
    assert pa.session_extras(s.id)["assignment_id"] == aid
    UserStore(pa, rounds=FAST).add_user("bob", "trainee", PW)
    only_bob = assign(pa, TESS, "irate_broadband_outage", assigned_to="bob").id
    with pytest.raises(PermissionDenied):
        start_assessment(practice, ALICE, only_bob)


# --- CLI -------------------------------------------------------------------------------------
def test_cli_users_add_list_and_passwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    res = runner.invoke(
        app, ["users", "add", "Tess", "--role", "trainer", "--password-stdin"], input=PW + "\n"
    )
    assert res.exit_code == 0, res.output
    assert "added trainer tess" in res.output
    # the interactive prompt asks twice and hides the input
    res = runner.invoke(app, ["users", "add", "alice"], input="alice-password\nalice-password\n")
    assert res.exit_code == 0, res.output
    assert "alice-password" not in res.output
    res = runner.invoke(app, ["users", "list"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert [ln.split()[:2] for ln in lines] == [["alice", "trainee"], ["tess", "trainer"]]

    store = SessionStore(tmp_path / "data" / "rapport.sqlite3")
    try:
        us = UserStore(store)
        tess = us.authenticate("tess", PW)
        assert tess is not None and tess.role == "trainer"
        assert us.authenticate("alice", "alice-password") is not None
    finally:
        store.close()

    res = runner.invoke(app, ["users", "add", "tess", "--password-stdin"], input=PW)
    assert res.exit_code == 1 and "already exists" in res.output
    res = runner.invoke(
        app, ["users", "add", "carol", "--role", "admin", "--password-stdin"], input=PW
    )
    assert res.exit_code == 2 and "--role" in res.output
    res = runner.invoke(app, ["users", "add", "carol", "--password-stdin"], input="short\n")
    assert res.exit_code == 2 and "at least" in res.output
    res = runner.invoke(app, ["users", "add", "bad name", "--password-stdin"], input=PW)
    assert res.exit_code == 2 and "Invalid user name" in res.output
    res = runner.invoke(
        app, ["users", "passwd", "alice", "--password-stdin"], input="changed-password\n"
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["users", "passwd", "ghost", "--password-stdin"], input=PW)
    assert res.exit_code == 1 and "No user" in res.output
    store = SessionStore(tmp_path / "data" / "rapport.sqlite3")
    try:
        assert UserStore(store).authenticate("alice", "changed-password") is not None
        assert len(UserStore(store).list_users()) == 2
    finally:
        store.close()


def test_cli_users_list_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    res = runner.invoke(app, ["users", "list"])
    assert res.exit_code == 0 and "no users yet" in res.output
