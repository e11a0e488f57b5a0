"""Backup and restore of the session database (``storage/backup.py``, ``rapport backup/restore``)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storage import SessionStore
from storage.backup import BackupError, backup, check_database, restore


def _turns(db_path: Path, session_id: str) -> list[tuple[int, str, str]]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return db.execute(
            "SELECT idx, role, text FROM turns WHERE session_id = ? ORDER BY idx", (session_id,)
        ).fetchall()


def _integrity(db_path: Path) -> str:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def _digest(*paths: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def _db_files(db_path: Path) -> list[Path]:
    return [db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")]


def test_backup_while_another_connection_writes(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "rapport.sqlite3"
    store = SessionStore(db_path)
    sid = store.create_session("confused_energy_bill", "v1", {})
    # enough rows that the copy takes a moment, so the writer really runs during it
    for i in range(300):
        store.add_turn(sid, "agent" if i % 2 else "customer", f"turn {i} " + "x" * 2000)

    (tmp_path / "backups").mkdir()
    writer = SessionStore(db_path)  # a second connection, as the running app would hold
    committed = [300]
    stop = threading.Event()
    started = threading.Event()

    def write() -> None:
        while not stop.is_set():
            writer.add_turn(sid, "agent", f"turn {committed[0]} " + "y" * 2000)
            committed[0] += 1  # only after add_turn returned: this turn is committed
            started.set()

    t = threading.Thread(target=write)
    t.start()
    try:
        assert started.wait(10)
        before = committed[0]  # every turn up to here was committed before the backup began
        out = backup(db_path, tmp_path / "backups")
        during = committed[0]
    finally:
        stop.set()
        t.join(10)
    writer.close()
    store.close()

    assert out.parent == tmp_path / "backups" and out.suffix == ".sqlite3"
    assert _integrity(out) == "ok"
    assert check_database(out) == 1
    rows = _turns(out, sid)
    assert len(rows) >= before
    assert [r[0] for r in rows] == list(range(len(rows)))  # a consistent prefix, no gaps
    assert rows[:before] == _turns(db_path, sid)[:before]
    assert during > before  # the writer was not blocked by the backup
    # a single self-contained file, with no leftovers from the temp-then-rename
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]
    with closing(sqlite3.connect(out)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_backup_to_a_file_replaces_it_atomically(tmp_path: Path) -> None:
    db_path = tmp_path / "rapport.sqlite3"
    store = SessionStore(db_path)
    store.create_session("p", "v", {})
    dest = tmp_path / "nightly.sqlite3"
    dest.write_text("yesterday's backup")
    assert backup(db_path, dest) == dest
    assert check_database(dest) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    store.close()


def test_restore_round_trip(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "rapport.sqlite3"
    store = SessionStore(db_path)
    a = store.create_session("confused_energy_bill", "v1", {})
    store.add_turn(a, "customer", "Hello?")
    store.add_turn(a, "agent", "Hi, how can I help?")
    saved = backup(db_path, tmp_path / "backup.sqlite3")
    # later work that the restore will roll back
    store.add_turn(a, "customer", "Added after the backup.")
    b = store.create_session("confused_energy_bill", "v1", {})
    store.close()

    kept = restore(saved, db_path)
    assert kept is not None and kept.name.startswith("rapport.sqlite3.before-restore-")
    reopened = SessionStore(db_path)
    assert [t.text for t in reopened.get_session(a).turns] == ["Hello?", "Hi, how can I help?"]
    with pytest.raises(KeyError):
        reopened.get_session(b)
    reopened.add_turn(a, "customer", "Still writable.")
    reopened.close()
    # the database from before the restore is kept, whole
    before = SessionStore(kept)
    assert before.get_session(b).id == b
    assert before.get_session(a).turns[-1].text == "Added after the backup."
    before.close()


def test_restore_into_an_empty_data_dir(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "old" / "rapport.sqlite3")
    sid = store.create_session("p", "v", {})
    store.close()
    saved = backup(tmp_path / "old" / "rapport.sqlite3", tmp_path / "b.sqlite3")
    db_path = tmp_path / "new" / "rapport.sqlite3"
    assert restore(saved, db_path) is None  # nothing to keep aside
    assert SessionStore(db_path).get_session(sid).id == sid


def _truncated(good: Path, dest: Path) -> Path:
    data = good.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _scribbled(good: Path, dest: Path) -> Path:
    data = bytearray(good.read_bytes())
    page = 4096
    for off in range(page, len(data), page):  # wreck every page but the header page
        data[off + 8 : off + 200] = b"\xff" * 192
    dest.write_bytes(bytes(data))
    return dest


def _other_db(good: Path, dest: Path) -> Path:
    with closing(sqlite3.connect(dest)) as db:
        db.execute("CREATE TABLE notes (x TEXT)")
        db.commit()
    return dest


def _garbage(good: Path, dest: Path) -> Path:
    dest.write_bytes(b"this is not a database\n" * 100)
    return dest


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_garbage, "not a usable SQLite database"),
        (_truncated, "integrity check failed|not a usable"),
        (_scribbled, "integrity check failed|not a usable"),
        (_other_db, "not a Rapport session database"),
        (lambda good, dest: dest, "no such file"),
    ],
    ids=["garbage", "truncated", "scribbled", "other-db", "missing"],
)
def test_restoring_a_bad_backup_refuses_and_changes_nothing(
    tmp_path: Path, make: object, why: str
) -> None:
    db_path = tmp_path / "data" / "rapport.sqlite3"
    store = SessionStore(db_path)
    sid = store.create_session("confused_energy_bill", "v1", {})
    for i in range(40):
        store.add_turn(sid, "customer", f"turn {i} " + "z" * 500)
    good = backup(db_path, tmp_path / "good.sqlite3")
    store.add_turn(sid, "agent", "Newer than any backup.")
    bad = make(good, tmp_path / "bad.sqlite3")  # type: ignore[operator]
    files_before = sorted(p.name for p in db_path.parent.iterdir())
    digest_before = _digest(*_db_files(db_path))

    with pytest.raises(BackupError, match=why) as info:
        restore(bad, db_path)
    assert str(bad) in str(info.value)  # names the file it refused
    assert sorted(p.name for p in db_path.parent.iterdir()) == files_before  # nothing kept aside
    assert _digest(*_db_files(db_path)) == digest_before
    assert store.get_session(sid).turns[-1].text == "Newer than any backup."
    store.close()


def test_restore_replaces_a_corrupt_database_and_keeps_its_bytes(tmp_path: Path) -> None:
    db_path = tmp_path / "rapport.sqlite3"
    store = SessionStore(db_path)
    sid = store.create_session("p", "v", {})
    store.close()
    saved = backup(db_path, tmp_path / "b.sqlite3")
    db_path.write_bytes(b"\x00corrupted by a disk fault" * 50)
    kept = restore(saved, db_path)
    assert kept is not None and kept.read_bytes() == b"\x00corrupted by a disk fault" * 50
    assert SessionStore(db_path).get_session(sid).id == sid


def test_backup_of_a_corrupt_database_fails_cleanly(tmp_path: Path) -> None:
    db_path = tmp_path / "rapport.sqlite3"
    db_path.write_bytes(b"garbage" * 1000)
    with pytest.raises(BackupError, match=r"rapport\.sqlite3"):
        backup(db_path, tmp_path / "out.sqlite3")
    assert not (tmp_path / "out.sqlite3").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rapport.sqlite3"]  # no temp left behind


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    from cli import app

    data = tmp_path / "data"
    env = {"RAPPORT_DATA_DIR": str(data), "RAPPORT_PROVIDER": "fake"}
    store = SessionStore(data / "rapport.sqlite3")
    sid = store.create_session("confused_energy_bill", "v1", {})
    store.add_turn(sid, "customer", "Before the backup.")
    runner = CliRunner()

    res = runner.invoke(app, ["backup", str(tmp_path / "b.sqlite3")], env=env)
    assert res.exit_code == 0, res.output
    assert "backed up 1 session(s)" in res.output and "b.sqlite3" in res.output

    store.add_turn(sid, "agent", "After the backup.")
    store.close()
    res = runner.invoke(app, ["restore", str(tmp_path / "b.sqlite3")], env=env)
    assert res.exit_code == 0, res.output
    assert "restored 1 session(s)" in res.output and "before-restore-" in res.output
    assert [t[2] for t in _turns(data / "rapport.sqlite3", sid)] == ["Before the backup."]

    (tmp_path / "junk.sqlite3").write_text("junk")
    res = runner.invoke(app, ["restore", str(tmp_path / "junk.sqlite3")], env=env)
    assert res.exit_code == 1
    assert "error:" in res.output and "junk.sqlite3" in res.output
    assert [t[2] for t in _turns(data / "rapport.sqlite3", sid)] == ["Before the backup."]

    res = runner.invoke(
        app,
        ["backup", str(tmp_path / "x.sqlite3")],
        env={**env, "RAPPORT_DATA_DIR": str(tmp_path / "none")},
    )
    assert res.exit_code == 1 and "no session database" in res.output
