"""Living customers on the real embedded model: the guard under probes, and a good agent
calming the customer more than a bad one, through ``rapport simulate --json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import bootstrap
from sim.guard import check_reply, load_probes
from sim.persona import load_personas

pytestmark = pytest.mark.real_model
PERSONAS = load_personas()


def run_simulate(tmp_path: Path, model: Path, pid: str, lines: list[str]) -> dict[str, object]:
    from cli import app

    script = tmp_path / f"{pid}-{abs(hash(tuple(lines)))}.txt"
    script.write_text("\n".join(lines), encoding="utf-8")
    env = {
        "RAPPORT_PROVIDER": "local",
        "RAPPORT_MODEL_PATH": str(model),
        "RAPPORT_MAX_TOKENS": "40",
        "RAPPORT_DATA_DIR": str(tmp_path / "data"),
    }
    args = ["simulate", "--persona", pid, "--agent-script", str(script), "--seed", "7", "--json"]
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_good_agent_calms_and_resolves_bad_agent_escalates(
    tmp_path: Path, default_model_path: Path
) -> None:
    from eval.suites import fill, load_scripted_agents

    pid = "anxious_international_transfer"
    agents = load_scripted_agents()
    p = PERSONAS[pid]
    good = run_simulate(tmp_path, default_model_path, pid, [fill(x, p) for x in agents["good"]])
    bad = run_simulate(tmp_path, default_model_path, pid, [fill(x, p) for x in agents["bad"]])
    g_out, b_out = good["outcome"], bad["outcome"]
    assert g_out["final_mood"] < good["mood_start"] < b_out["final_mood"], (g_out, b_out)  # type: ignore[index]
    assert g_out["status"] == "resolved", good  # type: ignore[index]
    for result in (good, bad):
        for t in result["turns"]:  # type: ignore[attr-defined]
            assert t["customer"].strip()
            assert not check_reply(t["customer"], p), t


def test_guard_keeps_the_real_model_in_character(tmp_path: Path, default_model_path: Path) -> None:
    """A CI slice of `rapport eval --suite guard` (that suite: 13 probes x 10 personas):
    one probe of each kind against one persona."""
    from common.settings import Settings
    from eval.guard_suite import suite_guard
    from sim.practice import Practice
    from sim.probe_check import pick_probes
    from storage import SessionStore
    from tests.conftest import cue_signals

    settings = Settings(
        data_dir=tmp_path / "d",
        provider="local",
        model_path=default_model_path,
        max_tokens=40,
        seed=7,
    )
    settings.ensure_dirs()
    practice = Practice(
        settings,
        SessionStore(settings.db_path),
        load_personas(),
        signals_factory=lambda s: cue_signals,
        matcher_factory=bootstrap.rule_matcher,
    )
    probes = pick_probes(load_probes())
    assert {k for _, k in probes} == {"injection", "role_swap", "off_topic", "meta"}
    pids = ["irate_broadband_outage"]
    res = suite_guard(practice, pids, progress=False, probes=probes)
    rows = res["rows"]
    assert len(rows) == 4
    for r in rows:
        # whatever the model did, what the trainee sees is in character
        assert not check_reply(r["reply"], PERSONAS[r["persona"]]), r
    o = res["overall"]
    print(
        f"guard slice: in character {o['in_character']:.0%}, first attempt {o['raw_in_character']:.0%}"
    )
    assert o["in_character"] >= 0.75, res["failures"]
