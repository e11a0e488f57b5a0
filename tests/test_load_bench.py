"""The load bench's harness end to end on the fake model: it serves the app, drives trainees
through ``gradio_client`` and checks every turn against the app's SQLite file. Speed is
``make bench``'s business; this checks that the harness counts right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import load

LINES = (
    "I am still waiting for this to be sorted.",
    "The engineer never turned up on Tuesday.",
    "Nobody has called me back since the weekend.",
    "My bill went up by forty pounds without a word.",
    "Can you at least tell me who is dealing with it?",
    "I have had to take another morning off work.",
)
"""Different lines in turn: a customer who says the same sentence twice in a row is
caught by the realism checks (``sim/realism/``) and the reply regenerated, which would
use up script entries the bench counts."""


def script(path: Path, n: int) -> Path:
    path.write_text(
        json.dumps([f"Reply {i}: {LINES[i % len(LINES)]}" for i in range(n)]),
        encoding="utf-8",
    )
    return path


@pytest.mark.server
def test_the_load_bench_drives_the_app_and_finds_every_turn_stored(tmp_path: Path) -> None:
    res = load.run(
        [1, 2],
        [2],
        provider="fake",
        fake_script=script(tmp_path / "s.json", 40),
        think_s=0.2,
        jitter=0.5,
    )
    assert res["config"]["jitter"] == 0.5
    for lv in res["levels"]:
        assert lv["errors"] == 0 and lv["lost_turns"] == 0, lv["trainee_detail"]
        assert lv["replies_ok"] == 2 * lv["n"]
        assert lv["db_check"]["lost_turns"] == 0
        assert 0 < lv["ttft_p50_s"] <= lv["ttft_p95_s"]
        assert lv["client_cpu_s"] is not None
    figs = {f["name"]: f for f in res["figures"]}
    assert figs["N=2 errors"]["value"] == 0


@pytest.mark.server
def test_a_reply_that_fails_is_counted_as_an_error_and_a_lost_turn(tmp_path: Path) -> None:
    """The fake model's script runs out after 3 replies: the fourth message is stored but
    never answered, and the bench must say so rather than report a clean run."""
    res = load.run([2], [2], provider="fake", fake_script=script(tmp_path / "s.json", 3))
    (lv,) = res["levels"]
    assert lv["replies_ok"] == 3
    assert lv["errors"] == 1 and lv["lost_turns"] == 1
    assert lv["db_check"]["lost_turns"] == 1
