"""The session store on both of its databases: SQLite (the default) and PostgreSQL.

The PostgreSQL cases start a real server from Debian's packages (``make postgres``) on
127.0.0.1, in a temporary folder, once per test run, and give each test a fresh database.
The SQLite cases, and old SQLite files written by earlier versions, need no server.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy
from typer.testing import CliRunner

import bootstrap
from common.settings import Settings
from providers.fake import ScriptedChatModel
from sim.director import no_rules
from sim.persona import load_personas
from sim.practice import Practice
from storage import MIGRATIONS, DuplicateError, SessionStore, StoreError, open_store
from storage.backup import BackupError, backup
from tests.conftest import cue_signals, free_port
from training.users import UserError, UserStore

PID = "irate_broadband_outage"
MAKE_HINT = "run `make postgres` (apt-get install postgresql) to install the server binaries"


# --- a throwaway PostgreSQL server ------------------------------------------------------------
@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database on the server; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _pg_bindir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found or not (found[-1].parent / "initdb").exists():
        pytest.fail(f"No PostgreSQL server under /usr/lib/postgresql/*/bin: {MAKE_HINT}.")
    return found[-1].parent


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: there, run it as the packages' ``postgres`` user."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.fail("Running as root but runuser is missing: cannot start PostgreSQL as postgres.")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"Running as root and there is no 'postgres' system user: {MAKE_HINT}.")
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], cwd: Path, what: str, log: Path | None = None) -> None:
    res = subprocess.run(
        _as_server_user(cmd), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if res.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        pytest.fail(f"{what} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}\n{tail}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = _pg_bindir()
    # not under pytest's tmp dir: as root that sits in a 0700 folder the postgres user can't enter
    root = Path(tempfile.mkdtemp(prefix="rapport-pg-"))
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, log, port = root / "data", root / "server.log", free_port()
    _run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        root,
        "initdb",
    )
    _run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-k {root} -h 127.0.0.1 -p {port} -F",
            "start",
        ],
        root,
        "pg_ctl start",
        log,
    )
    try:
        yield PgServer(bindir, root, port)
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-w", "stop", "-m", "fast"]),
            cwd=root,
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store lives: a fresh SQLite file, or a fresh database on the test server."""
    if request.param == "sqlite":
        return tmp_path / "data" / "rapport.sqlite3"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()


@pytest.fixture
def store(db: Path | str) -> Iterator[SessionStore]:
    s = SessionStore(db)
    yield s
    s.close()


def _engine(db: Path | str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"sqlite:///{db}" if isinstance(db, Path) else db)


# --- conformance: the same behaviour on both databases -------------------------------------------
def test_dialect_is_the_one_asked_for(store: SessionStore, db: Path | str) -> None:
    assert store.dialect == ("sqlite" if isinstance(db, Path) else "postgresql")
    assert (store.path == db) if isinstance(db, Path) else store.path is None


def test_sessions_turns_branches_and_endings(store: SessionStore, db: Path | str) -> None:
    sid = store.create_session(PID, "v1", {"provider": "fake", "n": 1}, "alice", private=True)
    t0 = store.add_turn(sid, "customer", "It's down again!", {"opening": True})
    t1 = store.add_turn(sid, "agent", "When did it start?")
    t2 = store.add_turn(sid, "customer", "At nine.", {"mood": 7.5, "tags": ["a", "b"]})
    t3 = store.add_turn(sid, "agent", "Sorry — that's stressful. ünïcødé ✓")
    assert [t.idx for t in (t0, t1, t2, t3)] == [0, 1, 2, 3]

    store.update_turn_meta(sid, 1, {"step": {"turn": 1}})
    store.update_turn_meta(sid, 1, {"signals": {"listen": True}})
    with pytest.raises(KeyError):
        store.update_turn_meta(sid, 99, {"x": 1})

    other = SessionStore(db)  # a second store sees every committed turn
    rec = other.get_session(sid)
    other.close()
    assert (rec.persona_id, rec.persona_version, rec.user_id, rec.private) == (
        PID,
        "v1",
        "alice",
        True,
    )
    assert rec.model == {"provider": "fake", "n": 1}
    assert rec.status == "open" and rec.ended_at is None and rec.feedback is None
    assert [(t.idx, t.role, t.text) for t in rec.turns] == [
        (0, "customer", "It's down again!"),
        (1, "agent", "When did it start?"),
        (2, "customer", "At nine."),
        (3, "agent", "Sorry — that's stressful. ünïcødé ✓"),
    ]
    assert rec.turns[0].meta == {"opening": True}
    assert rec.turns[1].meta == {"step": {"turn": 1}, "signals": {"listen": True}}
    assert rec.turns[2].meta == {"mood": 7.5, "tags": ["a", "b"]}
    assert rec.parent_id is None and rec.branch_turn is None and rec.outcome is None

    b = store.branch_session(sid, 3)
    branch = store.get_session(b)
    assert (branch.parent_id, branch.branch_turn, branch.user_id, branch.private) == (
        sid,
        3,
        "alice",
        True,
    )
    assert [(t.idx, t.text, t.meta) for t in branch.turns] == [
        (t.idx, t.text, t.meta) for t in rec.turns[:3]
    ]
    assert store.add_turn(b, "agent", "A better answer.").idx == 3
    assert len(store.get_session(sid).turns) == 4  # the original is untouched
    empty = store.get_session(store.branch_session(sid, 0))
    assert empty.turns == [] and empty.branch_turn == 0

    store.set_outcome(sid, "resolved")
    store.end_session(sid, feedback={"score": 8})
    ended = store.get_session(sid)
    assert (ended.status, ended.outcome, ended.feedback) == ("ended", "resolved", {"score": 8})
    first_end = ended.ended_at
    assert first_end
    store.end_session(sid, "abandoned")  # keeps the first end time and the feedback
    again = store.get_session(sid)
    assert (again.status, again.ended_at, again.feedback) == ("abandoned", first_end, {"score": 8})
    store.save_feedback(sid, {"score": 9, "notes": ["ok"]})
    assert store.get_session(sid).feedback == {"score": 9, "notes": ["ok"]}

    with pytest.raises(KeyError):
        store.get_session("nope")


def test_listing_and_latest_open(store: SessionStore) -> None:
    a = store.create_session(PID, "v1", {}, "alice")
    b = store.create_session("confused_energy_bill", "v1", {}, "bob")
    c = store.create_session(PID, "v1", {}, "alice")
    d = store.create_session(PID, "v1", {})
    ids = [s.id for s in store.list_sessions()]
    assert sorted(ids) == sorted([a, b, c, d])
    started = [s.started_at for s in store.list_sessions()]
    assert started == sorted(started, reverse=True)  # newest first
    assert {s.id for s in store.list_sessions("alice")} == {a, c}
    assert len(store.list_sessions(limit=2)) == 2
    assert all(s.turns == [] for s in store.list_sessions())

    store.end_session(d)
    latest = store.latest_open_session()
    assert latest is not None and latest.id in {a, b, c}
    latest_b = store.latest_open_session("confused_energy_bill")
    assert latest_b is not None and latest_b.id == b
    store.end_session(b)
    assert store.latest_open_session("confused_energy_bill") is None
    assert store.latest_open_session("no_such_persona") is None


def test_users_assignments_modes_and_hints(store: SessionStore) -> None:
    created = store.insert_user("alice", "trainee", "hash-a")
    store.insert_user("bob", "trainer", "hash-b")
    with pytest.raises(DuplicateError):
        store.insert_user("alice", "trainer", "other")
    row = store.user_row("alice")
    assert row == {
        "name": "alice",
        "role": "trainee",
        "password_hash": "hash-a",
        "created_at": created,
    }
    assert store.user_row("ghost") is None
    assert [r["name"] for r in store.user_rows()] == ["alice", "bob"]
    assert store.update_password_hash("alice", "hash-a2") is True
    assert store.update_password_hash("ghost", "x") is False
    assert store.user_row("alice")["password_hash"] == "hash-a2"  # type: ignore[index]
    with pytest.raises(sqlalchemy.exc.IntegrityError):  # the role CHECK holds on both
        store.insert_user("carol", "admin", "x")

    users = UserStore(store, rounds=4)
    users.add_user("dora", "trainee", "correct horse")
    with pytest.raises(UserError, match="already exists"):
        users.add_user("dora", "trainer", "correct horse")
    assert users.authenticate("dora", "correct horse") is not None

    a1 = store.insert_assignment(PID, "bob", "alice", "assessment")
    a2 = store.insert_assignment("confused_energy_bill", "bob", None, "practice")
    assert isinstance(a1, int) and a2 > a1 >= 1
    rows = store.assignment_rows()
    assert [(r["id"], r["persona_id"], r["assigned_to"], r["kind"]) for r in rows] == [
        (a1, PID, "alice", "assessment"),
        (a2, "confused_energy_bill", None, "practice"),
    ]

    sid = store.create_session(PID, "v1", {}, "alice")
    none = store.create_session(PID, "v1", {})
    assert store.session_extras(sid) == {
        "mode": "practice",
        "assignment_id": None,
        "hints": [],
        "real": False,
    }
    store.set_mode(sid, "assessment", a1)
    store.set_private(sid, True)
    store.record_hint(sid, {"kind": "validate", "text": "Name the feeling."})
    store.record_hint(sid, {"kind": "listen"})
    extras = store.session_extras(sid)
    assert (extras["mode"], extras["assignment_id"]) == ("assessment", a1)
    assert [h["kind"] for h in extras["hints"]] == ["validate", "listen"]
    assert all(h["at"] for h in extras["hints"])
    assert store.get_session(sid).private is True
    store.set_private(sid, False)
    assert store.get_session(sid).private is False
    with pytest.raises(sqlalchemy.exc.IntegrityError):  # the mode CHECK holds on both
        store.set_mode(sid, "exam")
    with pytest.raises(KeyError):
        store.session_extras("nope")
    with pytest.raises(KeyError):
        store.record_hint("nope", {"kind": "x"})

    assert store.session_index("alice") == [sid]
    assert store.session_index(None) == [none]  # None: the sessions with no user
    assert store.session_index(all_users=True) == [sid, none]  # oldest first
    assert store.session_index("ghost") == []


def test_migrations_are_idempotent(db: Path | str) -> None:
    SessionStore(db).close()
    s = SessionStore(db)
    sid = s.create_session(PID, "v1", {})
    s.close()
    s = SessionStore(db)
    assert s.get_session(sid).id == sid
    s.close()
    engine = _engine(db)
    with engine.connect() as con:
        names = list(con.exec_driver_sql("SELECT name FROM _migrations ORDER BY name").scalars())
    engine.dispose()
    assert names == [name for name, _ in MIGRATIONS]
    assert names[:3] == ["m001_initial", "m002_branches", "m003_users"]


def test_threads_share_one_store(store: SessionStore) -> None:
    sids = [store.create_session(PID, "v1", {}, f"u{i}") for i in range(4)]
    errors: list[BaseException] = []

    def talk(sid: str) -> None:
        try:
            for i in range(15):
                store.add_turn(sid, "agent" if i % 2 else "customer", f"{sid} {i}")
                store.get_session(sid)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(sid,)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for sid in sids:
        assert [t.idx for t in store.get_session(sid).turns] == list(range(15))


def test_a_practice_session_on_the_store(db: Path | str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "pdata", provider="fake")
    settings.ensure_dirs()
    fake = ScriptedChatModel()

    def build() -> Practice:
        return Practice(
            settings,
            SessionStore(db),
            load_personas(),
            model_factory=lambda s: fake,
            signals_factory=lambda s: cue_signals,
            matcher_factory=lambda s: no_rules,
        )

    practice = build()
    fake.enqueue(["It went down at nine this morning!", "Fine. The account is 4417."])
    s = practice.start(PID)
    assert list(s.respond("I'm sorry, that sounds stressful. When did it go down?"))[-1:]
    list(s.respond("Could you give me your account number?"))
    state = s.state()
    steps = s.steps()
    practice.store.close()

    again = build()  # as after a restart: everything was committed
    resumed = again.resume(s.id)
    rec = resumed.record
    assert [t.role for t in rec.turns] == ["customer", "agent", "customer", "agent", "customer"]
    assert rec.turns[0].text == again.personas[PID].opening_line
    assert rec.turns[-1].text == "Fine. The account is 4417."
    assert resumed.state() == state and state.turn == 2
    assert resumed.steps() == steps and [i for i, _ in steps] == [1, 3]
    assert not resumed.pending_reply()

    retry = again.retry(s.id, 3)
    assert [t.idx for t in retry.record.turns] == [0, 1, 2]
    assert retry.state() == again.resume(s.id).steps()[0][1].state
    resumed.end()
    assert again.store.get_session(s.id).status == "ended"
    again.store.close()


# --- PostgreSQL only ----------------------------------------------------------------------------
@pytest.mark.server
def test_postgres_processes_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    stores: list[SessionStore] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            stores.append(SessionStore(url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(stores) == 4
    sid = stores[0].create_session(PID, "v1", {})
    assert stores[3].get_session(sid).id == sid
    for s in stores:
        s.close()


@pytest.mark.server
def test_open_store_and_cli_follow_the_database_url(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    url = pg_server.new_database()
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_DATA_DIR", str(tmp_path / "data"))
    settings = Settings()
    assert settings.database_url == url
    store = open_store(settings)
    assert store.dialect == "postgresql"
    store.close()

    runner = CliRunner()
    res = runner.invoke(app, ["users", "add", "erin", "--password-stdin"], input="long enough pw\n")
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["users", "list"])
    assert res.exit_code == 0 and "erin" in res.output
    assert not (tmp_path / "data" / "rapport.sqlite3").exists()  # nothing went to SQLite

    res = runner.invoke(app, ["backup", str(tmp_path / "b.sqlite3")])
    assert res.exit_code == 1
    assert "use pg_dump for PostgreSQL" in res.output
    assert not (tmp_path / "b.sqlite3").exists()
    res = runner.invoke(app, ["restore", str(tmp_path / "b.sqlite3")])
    assert res.exit_code == 1 and "pg_dump" in res.output

    practice = bootstrap.open_practice(Settings(provider="fake"))
    assert practice.store.dialect == "postgresql"
    practice.store.close()


# --- no server needed ---------------------------------------------------------------------------
@pytest.mark.allow_hosts(["127.0.0.1"])  # a loopback port where nothing listens
def test_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://bob:s3cret-pw@127.0.0.1:{port}/rapport"
    with pytest.raises(StoreError) as err:
        SessionStore(url, busy_timeout=2)
    msg = str(err.value)
    assert msg.startswith(
        f"Cannot connect to the session database at postgresql+psycopg://bob@127.0.0.1:{port}/rapport: "
    )
    assert "s3cret" not in msg


def test_open_store_defaults_to_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", provider="fake")
    store = open_store(settings)
    assert store.dialect == "sqlite" and store.path == settings.db_path
    store.close()
    assert settings.db_path.is_file()
    url_store = SessionStore(f"sqlite:///{tmp_path / 'u' / 'x.sqlite3'}")
    assert url_store.path == tmp_path / "u" / "x.sqlite3" and url_store.path.is_file()
    url_store.close()


def test_an_in_memory_sqlite_store_is_one_database(tmp_path: Path) -> None:
    store = SessionStore("sqlite://")
    sid = store.create_session(PID, "v1", {})
    store.add_turn(sid, "customer", "hi")
    assert [t.text for t in store.get_session(sid).turns] == ["hi"]
    store.close()


def test_backup_refuses_a_postgres_url(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="use pg_dump for PostgreSQL") as err:
        backup("postgresql+psycopg://u:pw@db.example/rapport", tmp_path / "out.sqlite3")
    assert "pw@" not in str(err.value)
    assert not (tmp_path / "out.sqlite3").exists()


# The schema exactly as the sqlite3-only store (before SQLAlchemy) wrote it, with its data.
OLD_M001 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    persona_id TEXT NOT NULL,
    persona_version TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL DEFAULT 'open',
    model_json TEXT NOT NULL DEFAULT '{}',
    user_id TEXT,
    private INTEGER NOT NULL DEFAULT 0,
    feedback_json TEXT
);
CREATE TABLE turns (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('customer', 'agent')),
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    meta_json TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (session_id, idx)
);
CREATE INDEX sessions_started ON sessions(started_at);
"""
OLD_M002 = """
ALTER TABLE sessions ADD COLUMN parent_id TEXT REFERENCES sessions(id);
ALTER TABLE sessions ADD COLUMN branch_turn INTEGER;
ALTER TABLE sessions ADD COLUMN outcome TEXT;
"""
OLD_M003 = """
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('trainee', 'trainer')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    persona_id TEXT NOT NULL,
    assigned_by TEXT,
    assigned_to TEXT,
    created_at TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'assessment'
);
ALTER TABLE sessions ADD COLUMN mode TEXT NOT NULL DEFAULT 'practice'
    CHECK (mode IN ('practice', 'assessment'));
ALTER TABLE sessions ADD COLUMN assignment_id INTEGER;
ALTER TABLE sessions ADD COLUMN hints_json TEXT NOT NULL DEFAULT '[]';
CREATE INDEX sessions_user ON sessions(user_id, started_at);
"""


def _old_database(path: Path, upto: int) -> None:
    """A session database as the old code left it, migrated up to ``m00<upto>``."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, script in [("m001_initial", OLD_M001), ("m002_branches", OLD_M002)] + (
        [("m003_users", OLD_M003)] if upto >= 3 else []
    ):
        con.executescript(script)
        with con:
            con.execute("INSERT INTO _migrations VALUES (?, ?)", (name, "2024-01-01T00:00:00Z"))
    with con:
        con.execute(
            "INSERT INTO sessions (id, persona_id, persona_version, started_at, model_json,"
            " user_id, private, feedback_json, status, ended_at, outcome)"
            " VALUES ('old1', ?, 'v0', '2024-01-01T10:00:00.000+00:00', '{\"provider\": \"x\"}',"
            " 'alice', 1, '{\"score\": 6}', 'ended', '2024-01-01T10:05:00.000+00:00', 'resolved')",
            (PID,),
        )
        con.executemany(
            "INSERT INTO turns (session_id, idx, role, text, created_at, meta_json)"
            " VALUES ('old1', ?, ?, ?, '2024-01-01T10:00:00.000+00:00', ?)",
            [
                (0, "customer", "Old opening.", json.dumps({"opening": True})),
                (1, "agent", "Old answer.", "{}"),
            ],
        )
        if upto >= 3:
            con.execute("INSERT INTO users VALUES ('alice', 'trainee', 'h', 't')")
            con.execute(
                "INSERT INTO assignments (persona_id, assigned_by, assigned_to, created_at)"
                " VALUES (?, 'bob', 'alice', 't')",
                (PID,),
            )
    con.close()


@pytest.mark.parametrize("upto", [2, 3])
def test_an_old_sqlite_database_opens_and_migrates(tmp_path: Path, upto: int) -> None:
    path = tmp_path / "rapport.sqlite3"
    _old_database(path, upto)
    with closing(sqlite3.connect(path)) as con:
        schema_before = dict(con.execute("SELECT name, sql FROM sqlite_master").fetchall())

    store = SessionStore(path)
    old = store.get_session("old1")
    assert (old.persona_version, old.user_id, old.private, old.status, old.outcome) == (
        "v0",
        "alice",
        True,
        "ended",
        "resolved",
    )
    assert old.model == {"provider": "x"} and old.feedback == {"score": 6}
    assert [(t.idx, t.text, t.meta) for t in old.turns] == [
        (0, "Old opening.", {"opening": True}),
        (1, "Old answer.", {}),
    ]
    assert store.session_extras("old1") == {
        "mode": "practice",
        "assignment_id": None,
        "hints": [],
        "real": False,
    }
    new_id = store.insert_assignment(PID, "bob", None, "practice")
    assert new_id == (2 if upto >= 3 else 1)
    assert store.add_turn("old1", "customer", "New turn.").idx == 2
    assert store.session_index("alice") == ["old1"]
    store.close()
    SessionStore(path).close()  # idempotent

    with closing(sqlite3.connect(path)) as con:
        names = [r[0] for r in con.execute("SELECT name FROM _migrations ORDER BY rowid")]
        schema_after = dict(con.execute("SELECT name, sql FROM sqlite_master").fetchall())
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert names == ["m001_initial", "m002_branches", "m003_users", *LATER]
    # the file layout is what the old code wrote, plus what the later migrations add
    with closing(sqlite3.connect(tmp_path / "fresh.sqlite3")) as ref:
        _old_layout_then_later(ref)
        reference = dict(ref.execute("SELECT name, sql FROM sqlite_master").fetchall())
    ours = {k: v for k, v in schema_after.items() if "_migrations" not in k}
    assert _ddl(ours) == _ddl(reference)  # same tables, columns and indexes as the old code
    if upto >= 3:
        # only what the later migrations name changed (m005 adds a column to sessions)
        untouched = {k for k in schema_before if k != "sessions"}
        assert {k: schema_after[k] for k in untouched} == {k: schema_before[k] for k in untouched}


LATER = [name for name, _ in MIGRATIONS[3:]]
"""Migrations added after the old code's three; an old file gets exactly these on open."""


def _old_layout_then_later(ref: sqlite3.Connection) -> None:
    """The old code's DDL, then every later migration (the reference an upgraded file
    must match: nothing in the old tables may change beyond what those migrations add)."""
    for script in (OLD_M001, OLD_M002, OLD_M003):
        ref.executescript(script)
    for _, fn in MIGRATIONS[3:]:
        fn(ref)
    ref.commit()


def _ddl(schema: dict[str, str | None]) -> dict[str, str]:
    """Table/index DDL with whitespace normalised (a fresh store writes the same columns)."""
    return {k: " ".join((v or "").split()) for k, v in schema.items()}


def test_a_fresh_sqlite_file_has_the_old_layout(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    SessionStore(path).close()
    with closing(sqlite3.connect(tmp_path / "ref.sqlite3")) as ref:
        _old_layout_then_later(ref)
        reference = {
            r[0]: [tuple(c) for c in ref.execute(f"PRAGMA table_info({r[0]})")]
            for r in ref.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    with closing(sqlite3.connect(path)) as con:
        got = {
            r[0]: [tuple(c) for c in con.execute(f"PRAGMA table_info({r[0]})")]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {k: v for k, v in got.items() if k != "_migrations"} == reference
    assert {"sessions_started", "sessions_user"} <= indexes
