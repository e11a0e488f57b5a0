"""The stable command formats, byte for byte: ``rapport grade`` and ``rapport simulate --json``.

Evaluation outside this repo parses these outputs, so a restructuring must not change a
single byte of them. Each test runs the command on a committed input and compares its output
with a committed fixture in ``tests/data/stable/``. When a change to the output is meant (a
refitted grader, a new field announced in the CHANGELOG), rewrite the fixtures with
``RAPPORT_UPDATE_STABLE=1 pytest tests/test_stable_formats.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.test_grading_store import shared_guidance

STABLE = Path(__file__).parent / "data" / "stable"
UPDATE = os.environ.get("RAPPORT_UPDATE_STABLE") == "1"


def _same_bytes(got: bytes, fixture: Path) -> None:
    if UPDATE:
        fixture.write_bytes(got)
    want = fixture.read_bytes()
    if got != want:
        got_lines, want_lines = got.decode().splitlines(), want.decode().splitlines()
        first = next(
            (i for i, (g, w) in enumerate(zip(got_lines, want_lines, strict=False)) if g != w),
            min(len(got_lines), len(want_lines)),
        )
        pytest.fail(
            f"{fixture.name} changed at line {first + 1}; if that is meant, rerun with "
            "RAPPORT_UPDATE_STABLE=1 and announce it in the CHANGELOG"
        )


def test_rapport_grade_output_is_byte_identical(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from cli import app

    settings, _, _ = shared_guidance(tmp_path_factory)
    out = tmp_path / "out.jsonl"
    env = {"RAPPORT_DATA_DIR": str(settings.data_dir), "RAPPORT_PROVIDER": "fake"}
    res = CliRunner().invoke(
        app, ["grade", str(STABLE / "grade_in.jsonl"), "-o", str(out)], env=env
    )
    assert res.exit_code == 0, res.output
    got = out.read_bytes()
    # the fixture is not vacuous: both conversations, every agent turn, real verdicts
    lines = [json.loads(ln) for ln in got.decode().splitlines()]
    assert [ln["id"] for ln in lines] == ["gym-double-charge", "broadband-brush-off"]
    assert lines[0]["summary"]["used"] and lines[1]["summary"]["missed"]
    _same_bytes(got, STABLE / "grade_out.jsonl")


def test_rapport_simulate_json_is_byte_identical(tmp_path: Path) -> None:
    from cli import app

    env = {
        "RAPPORT_PROVIDER": "fake",
        "RAPPORT_FAKE_SCRIPT": str(STABLE / "simulate_replies.json"),
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
    }
    args = [
        "simulate",
        "--persona",
        "anxious_international_transfer",
        "--agent-script",
        str(STABLE / "simulate_script.txt"),
        "--seed",
        "3",
        "--json",
    ]
    first = CliRunner().invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(app, args, env=env)
    # seeded: the same run twice gives the same bytes, but for the session's random id
    assert _without_session_id(again.output) == _without_session_id(first.output)
    out = json.loads(first.output)
    assert out["format"] == "rapport.simulate/1" and len(out["turns"]) == 3
    assert re.fullmatch(r"[0-9a-f]{32}", out["session_id"])
    _same_bytes(_without_session_id(first.output).encode(), STABLE / "simulate_out.json")


def _without_session_id(output: str) -> str:
    """The one field that differs run to run: a fresh session's random id."""
    return re.sub(r'"session_id": "[0-9a-f]{32}"', '"session_id": "<random>"', output)
