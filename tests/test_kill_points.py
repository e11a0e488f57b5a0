"""SIGKILL at the slow points that write: grading a stored session (and saving its feedback),
and ``rapport ingest`` of a folder of guidance. After each kill the session database opens
with every committed turn, the session resumes, and a re-run of ingest completes without
duplicating a chunk. ``tests/test_crash.py`` covers a kill mid-reply."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bootstrap
from common.settings import Settings
from providers.fake import ScriptedChatModel
from sim.persona import load_personas
from sim.practice import Practice
from storage import SessionStore
from tests.conftest import ROOT

PID = "confused_energy_bill"


def _seed_sessions(db_path: Path, n: int, agent_turns: int) -> dict[str, list[tuple[str, str]]]:
    """Sessions with distinct turns, committed; returns each one's (role, text) list."""
    store = SessionStore(db_path)
    out = {}
    for s in range(n):
        sid = store.create_session(PID, "v1", {})
        turns = []
        for i in range(agent_turns):
            turns.append(("customer", f"Session {s}: bill {i} says {100 + i} pounds. Why?"))
            turns.append(
                (
                    "agent",
                    f"I'm sorry, that must be worrying (case {s}-{i}). "
                    f"Could you read me the date on bill {i}? I'll check the meter readings.",
                )
            )
        for role, text in turns:
            store.add_turn(sid, role, text)  # type: ignore[arg-type]
        out[sid] = turns
    store.close()
    return out


def _check_sessions_survived(data_dir: Path, sessions: dict[str, list[tuple[str, str]]]) -> None:
    db_path = data_dir / "rapport.sqlite3"
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    settings = Settings(data_dir=data_dir, provider="fake")
    model = ScriptedChatModel(replies=["It says the fourteenth of March."])
    practice = Practice(
        settings, SessionStore(db_path), load_personas(), lambda s: model, **bootstrap.grading()
    )
    try:
        for sid, turns in sessions.items():
            rec = practice.store.get_session(sid)
            assert [(t.role, t.text) for t in rec.turns] == turns
            assert rec.status == "open"
        sid = next(iter(sessions))
        session = practice.resume(sid)
        list(session.respond("Thanks. What date is printed on the latest one?"))
        assert [t.role for t in session.record.turns[-2:]] == ["agent", "customer"]
        assert session.record.turns[-1].text == "It says the fourteenth of March."
    finally:
        practice.store.close()


def _kill(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_while_grading_loses_nothing(tmp_path: Path) -> None:
    sessions = _seed_sessions(tmp_path / "rapport.sqlite3", n=3, agent_turns=30)
    ids = list(sessions)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.grade_worker", str(tmp_path), *ids],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != f"grading {ids[1]}":
            line = proc.stdout.readline()
            assert line, f"worker ended early: {lines}"
            lines.append(line.strip())
    finally:
        _kill(proc)  # mid-way through grading the second session
    assert lines == ["ready", f"grading {ids[0]}", f"saved {ids[0]}", f"grading {ids[1]}"]

    _check_sessions_survived(tmp_path, sessions)
    store = SessionStore(tmp_path / "rapport.sqlite3")
    first = store.get_session(ids[0]).feedback
    assert first is not None and first["id"] == ids[0]  # committed before the kill: whole
    assert len(first["turns"]) == 30
    for sid in ids[1:]:  # not yet saved, or saved whole: never half a grade
        fb = store.get_session(sid).feedback
        assert fb is None or (fb["id"] == sid and len(fb["turns"]) == 30)
    store.close()


# --- ingest -------------------------------------------------------------------------------

N_FILES = 200


def _write_guides(folder: Path) -> None:
    folder.mkdir()
    for i in range(N_FILES):
        para = (
            f"When a customer is upset about case {i}, name the feeling, say why it makes "
            "sense, and ask one open question before offering a fix."
        )
        # most files are one chunk; every 20th is long enough for several
        body = para if i % 20 else "\n\n".join([para * 4] * 3)
        (folder / f"guide-{i:03d}.md").write_text(
            f"---\ntitle: Guide {i}\ntags: [validate, listen]\n---\n# Guide {i}\n\n{body}\n",
            encoding="utf-8",
        )


def _spawn_ingest(guides: Path, data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """``rapport ingest`` with stderr on a pseudo-terminal, so tqdm shows its progress."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "RAPPORT_DATA_DIR": str(data_dir), "RAPPORT_PROVIDER": "fake"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "ingest", str(guides)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    return proc, master


def _wait_for_progress(proc: subprocess.Popen[str], master: int, files: int) -> int:
    """Read tqdm's bar until it reports at least ``files`` files; return that count."""
    seen, deadline = b"", time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"ingest ended before it was killed: {seen[-500:]!r}"
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        seen += os.read(master, 4096)
        counts = [int(n) for n in re.findall(rb"Ingesting: (\d+)file", seen)]
        if counts and counts[-1] >= files:
            return counts[-1]
    pytest.fail(f"no ingest progress: {seen[-500:]!r}")


def _collection(data_dir: Path) -> list[tuple[str, str, int]]:
    from rubric.guidance import GuidanceStore

    store = GuidanceStore(Settings(data_dir=data_dir, provider="fake"))
    got = store.collection.get(include=["metadatas"])
    return sorted(
        (i, str(m["source"]), int(m["chunk"]))
        for i, m in zip(got["ids"], got["metadatas"], strict=True)
    )


def _report(output: str) -> tuple[dict[str, int], int, int]:
    added = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^added\s+(\S+) \((\d+) chunks\)$", output, re.M)
    }
    unchanged = re.search(r"^unchanged (\d+) file\(s\)$", output, re.M)
    total = re.search(r"^store now holds (\d+) chunks$", output, re.M)
    assert total, output
    assert "replaced" not in output and "error" not in output, output
    return added, int(unchanged.group(1)) if unchanged else 0, int(total.group(1))


def test_sigkill_during_ingest_then_rerun_completes_without_duplicates(tmp_path: Path) -> None:
    from cli import app

    guides = tmp_path / "guides"
    _write_guides(guides)
    data = tmp_path / "data"
    sessions = _seed_sessions(data / "rapport.sqlite3", n=1, agent_turns=3)

    proc, master = _spawn_ingest(guides, data)
    try:
        at = _wait_for_progress(proc, master, files=20)
    finally:
        _kill(proc)
        os.close(master)
    assert at < N_FILES  # killed mid-way

    _check_sessions_survived(data, sessions)  # the session DB beside Chroma is untouched

    runner = CliRunner()
    env = {"RAPPORT_DATA_DIR": str(data), "RAPPORT_PROVIDER": "fake"}
    res = runner.invoke(app, ["ingest", str(guides)], env=env)
    assert res.exit_code == 0, res.output
    added, unchanged, total = _report(res.output)
    assert len(added) + unchanged == N_FILES  # every file accounted for, once
    assert unchanged >= 1  # files committed before the kill were kept, not re-added

    clean_dir = tmp_path / "clean"
    res = runner.invoke(
        app, ["ingest", str(guides)], env={**env, "RAPPORT_DATA_DIR": str(clean_dir)}
    )
    assert res.exit_code == 0, res.output
    clean_added, clean_unchanged, clean_total = _report(res.output)
    assert len(clean_added) == N_FILES and clean_unchanged == 0
    assert total == clean_total == sum(clean_added.values())

    after_kill, clean = _collection(data), _collection(clean_dir)
    assert after_kill == clean  # the same chunk ids, sources and chunk numbers
    assert len({(s, n) for _, s, n in after_kill}) == len(after_kill)  # no duplicates

    # and a third run finds nothing to do
    res = runner.invoke(app, ["ingest", str(guides)], env=env)
    assert res.exit_code == 0 and f"unchanged {N_FILES} file(s)" in res.output, res.output
