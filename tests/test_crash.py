from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import bootstrap
from storage import SessionStore
from tests.conftest import ROOT


def test_sigkill_mid_reply_loses_no_committed_turn(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    session_id = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "streaming"  # the third reply is mid-stream
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    store = SessionStore(tmp_path / "rapport.sqlite3")
    rec = store.get_session(session_id)
    assert [(t.role, t.text) for t in rec.turns[1:]] == [
        ("agent", "Hello, how can I help?"),
        ("customer", "First reply."),
        ("agent", "Could you tell me the bill amount?"),
        ("customer", "Second reply."),
        ("agent", "And when did it arrive?"),  # committed before the reply started
    ]
    assert rec.status == "open"  # resumable
    store.close()


def test_crashed_session_resumes_and_answers_the_pending_message(tmp_path: Path) -> None:
    from common.settings import Settings
    from providers.fake import ScriptedChatModel
    from sim.persona import load_personas
    from sim.practice import Practice

    settings = Settings(data_dir=tmp_path, provider="fake")
    store = SessionStore(settings.db_path)
    sid = store.create_session("confused_energy_bill", "v", {})
    store.add_turn(sid, "customer", "Hello?")
    store.add_turn(sid, "agent", "And when did it arrive?")  # the reply was lost in a crash
    model = ScriptedChatModel(replies=["On Monday."])
    practice = Practice(settings, store, load_personas(), lambda s: model, **bootstrap.grading())
    session = practice.resume(sid)
    assert session.pending_reply()
    list(session.respond("And when did it arrive?"))
    assert [t.text for t in session.record.turns] == [
        "Hello?",
        "And when did it arrive?",
        "On Monday.",
    ]
